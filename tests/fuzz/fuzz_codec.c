/*
 * fuzz_codec: libFuzzer driver for codec_inspect, the relay's parser of
 * host-supplied video and audio payloads.
 *
 * The first input byte picks the target (H.264, HEVC, Opus), the rest is
 * the payload.  One inspector per codec lives across inputs, so the
 * remembered-SPS path is fuzzed too.  On success the driver checks the
 * facts are sane: a positive size whenever a codec string was produced,
 * and a NUL-terminated codec string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_inspect.h"
#include "protocol/proto_media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_video(int codec, const uint8_t *p, size_t len)
{
	static struct codec_video_inspector vi[2];
	static int ready;
	struct codec_video_info info;
	char why[128];

	if (!ready) {
		codec_video_inspector_init(&vi[0]);
		codec_video_inspector_init(&vi[1]);
		ready = 1;
	}
	if (codec_video_inspect(&vi[codec == PROTO_CODEC_HEVC], codec, p, len,
				&info, why, sizeof(why)) != 0)
		return;
	if (memchr(info.codec_string, 0, sizeof(info.codec_string)) == NULL)
		abort();
	if (info.codec_string[0] && (info.width <= 0 || info.height <= 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_audio_info ai;
	char why[128];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		check_video(PROTO_CODEC_H264, data + 1, size - 1);
		break;
	case 1:
		check_video(PROTO_CODEC_HEVC, data + 1, size - 1);
		break;
	default:
		if (codec_opus_inspect(data + 1, size - 1, &ai, why,
				       sizeof(why)) == 0 &&
		    (ai.duration_us <= 0 || ai.duration_us > 120000))
			abort();
		break;
	}
	return 0;
}
