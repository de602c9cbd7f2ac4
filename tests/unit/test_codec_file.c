/*
 * test_codec_file: a recording streamed back without re-encoding.
 *
 * The test writes a real MP4 (video from codec_synth plus its Opus track)
 * with libavformat, then plays it through codec_file: every message must
 * be a valid media message, keyframes must carry their parameter sets in
 * Annex-B (the mp4toannexb filter's job), timestamps must follow the
 * file, and the stream must decode with zero errors.  Looping must keep
 * timestamps rising.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec_decode.h"
#include "codec/codec_file.h"
#include "codec/codec_inspect.h"
#include "codec/codec_synth.h"
#include "protocol/proto_error.h"

#define W 320
#define H 180
#define FPS 10
#define FRAMES 25

/* RFC 7845 identification header: 2 channels, 312 samples pre-skip. */
static const uint8_t opus_head[19] = { 'O', 'p', 'u', 's', 'H', 'e', 'a',
				       'd', 1, 2, 0x38, 0x01, 0x80, 0xBB,
				       0, 0, 0, 0, 0 };

static AVStream *add_stream(AVFormatContext *oc, int codec)
{
	AVStream *st = avformat_new_stream(oc, NULL);
	AVCodecParameters *par;

	assert_non_null(st);
	par = st->codecpar;
	st->time_base = (AVRational){ 1, 1000000 };
	if (codec == PROTO_CODEC_OPUS) {
		par->codec_type = AVMEDIA_TYPE_AUDIO;
		par->codec_id = AV_CODEC_ID_OPUS;
		par->sample_rate = 48000;
		av_channel_layout_default(&par->ch_layout, 2);
		par->extradata = av_mallocz(sizeof(opus_head) +
					    AV_INPUT_BUFFER_PADDING_SIZE);
		assert_non_null(par->extradata);
		memcpy(par->extradata, opus_head, sizeof(opus_head));
		par->extradata_size = sizeof(opus_head);
	} else {
		par->codec_type = AVMEDIA_TYPE_VIDEO;
		par->codec_id = codec == PROTO_CODEC_HEVC ? AV_CODEC_ID_HEVC
							  : AV_CODEC_ID_H264;
		par->width = W;
		par->height = H;
	}
	return st;
}

static void write_packet(AVFormatContext *oc, AVStream *st,
			 const struct codec_msg *m, int64_t dur)
{
	AVPacket *pkt = av_packet_alloc();

	assert_non_null(pkt);
	assert_int_equal(av_new_packet(pkt, (int)m->hdr.length), 0);
	memcpy(pkt->data, m->data + PROTO_MEDIA_HDR_LEN, m->hdr.length);
	pkt->stream_index = st->index;
	pkt->pts = pkt->dts = av_rescale_q((int64_t)m->hdr.pts_us,
					   (AVRational){ 1, 1000000 },
					   st->time_base);
	pkt->duration = av_rescale_q(dur, (AVRational){ 1, 1000000 },
				     st->time_base);
	if (m->hdr.flags & PROTO_F_KEYFRAME)
		pkt->flags |= AV_PKT_FLAG_KEY;
	assert_int_equal(av_interleaved_write_frame(oc, pkt), 0);
	av_packet_free(&pkt);
}

/* Writes FRAMES frames and their audio to path; returns the number of
 * audio packets. */
static int write_mp4(const char *path, int codec)
{
	struct codec_synth_config cfg = { .width = W, .height = H,
		.fps = FPS, .keyint_s = 1, .codec = codec,
		.with_audio = true };
	AVFormatContext *oc = NULL;
	struct codec_synth *s;
	struct codec_batch b;
	char why[256] = "";
	int naudio = 0;

	if (codec_synth_create(&s, &cfg, why, sizeof(why)))
		fail_msg("codec_synth_create: %s", why);
	assert_true(avformat_alloc_output_context2(&oc, NULL, "mp4", path) >= 0);
	/* Opus in MP4 was long marked experimental; say we accept that. */
	oc->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;
	AVStream *vs = add_stream(oc, codec), *as = add_stream(oc,
							       PROTO_CODEC_OPUS);

	assert_true(avio_open(&oc->pb, path, AVIO_FLAG_WRITE) >= 0);
	assert_true(avformat_write_header(oc, NULL) >= 0);
	for (int i = 0; i < FRAMES; i++) {
		assert_int_equal(codec_synth_next(s, &b, why, sizeof(why)), 0);
		for (size_t j = 0; j < b.count; j++) {
			bool video = b.msg[j].hdr.kind == PROTO_KIND_VIDEO;

			write_packet(oc, video ? vs : as, &b.msg[j],
				     video ? 1000000 / FPS : 20000);
			naudio += !video;
		}
	}
	assert_int_equal(av_write_trailer(oc), 0);
	avio_closep(&oc->pb);
	avformat_free_context(oc);
	codec_synth_destroy(s);
	return naudio;
}

static void check_message(const struct codec_msg *m, int codec, int frame)
{
	struct proto_media_hdr h;
	struct codec_video_info vi;
	char why[256];
	bool key = frame % FPS == 0;

	if (proto_media_decode(m->data, m->len, &h, why, sizeof(why)))
		fail_msg("invalid message: %s", why);
	if (h.kind != PROTO_KIND_VIDEO)
		return;
	if (codec_video_inspect(NULL, codec, m->data + PROTO_MEDIA_HDR_LEN,
				h.length, &vi, why, sizeof(why)))
		fail_msg("frame %d does not inspect: %s", frame, why);
	assert_int_equal(h.pts_us, (uint64_t)frame * 1000000 / FPS);
	if (vi.keyframe != key || vi.has_config != key)
		fail_msg("frame %d: keyframe %d config %d, expected %d", frame,
			 vi.keyframe, vi.has_config, key);
	/* Non-key frames may be references: never marked discardable. */
	assert_int_equal(h.flags, key ? PROTO_F_KEYFRAME | PROTO_F_CONFIG : 0);
}

static void play(int codec)
{
	char path[64], why[256] = "";
	struct codec_file *f;
	struct codec_file_info info;
	struct codec_decoder *d;
	struct codec_decode_stats st;
	struct codec_batch b;
	int naudio, video = 0, audio = 0, err;

	snprintf(path, sizeof(path), "/tmp/test_codec_file.%d.mp4", getpid());
	naudio = write_mp4(path, codec);
	if (codec_file_open(&f, path, false, 16, why, sizeof(why)))
		fail_msg("codec_file_open: %s", why);
	codec_file_get_info(f, &info);
	assert_int_equal(info.video_codec, codec);
	assert_int_equal(info.width, W);
	assert_true(info.has_audio);
	assert_int_equal(codec_decoder_create(&d, why, sizeof(why)), 0);
	while ((err = codec_file_next(f, &b, why, sizeof(why))) == 0) {
		const struct codec_msg *m = &b.msg[0];

		assert_int_equal(b.count, 1);
		check_message(m, codec, video);
		video += m->hdr.kind == PROTO_KIND_VIDEO;
		audio += m->hdr.kind == PROTO_KIND_AUDIO;
		codec_decoder_feed(d, &m->hdr, m->data + PROTO_MEDIA_HDR_LEN,
				   m->hdr.length, why, sizeof(why));
	}
	if (err != CODEC_FILE_EOF)
		fail_msg("codec_file_next: %d %s", err, why);
	codec_decoder_stats(d, &st);
	print_message("  %s: %d video, %d audio messages, %llu frames "
		      "decoded, %llu errors\n", proto_codec_name(codec), video,
		      audio, (unsigned long long)st.video_frames,
		      (unsigned long long)st.errors);
	assert_int_equal(video, FRAMES);
	assert_int_equal(audio, naudio);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.video_frames, FRAMES);
	assert_true(st.first_video_ok);
	codec_decoder_destroy(d);
	codec_file_close(f);
	unlink(path);
}

/* Runs once per codec; state points at the codec. */
static const int h264 = PROTO_CODEC_H264, hevc = PROTO_CODEC_HEVC;

static void test_file(void **state)
{
	play(*(const int *)*state);
}

static void test_loop(void **state)
{
	char path[64], why[256] = "";
	struct codec_file *f;
	struct codec_batch b;
	int64_t last = -1;
	int video = 0;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/test_codec_file.%d.mp4", getpid());
	write_mp4(path, PROTO_CODEC_H264);
	assert_int_equal(codec_file_open(&f, path, true, 0, why, sizeof(why)),
			 0);
	while (video < 3 * FRAMES) {
		assert_int_equal(codec_file_next(f, &b, why, sizeof(why)), 0);
		if (b.msg[0].hdr.kind != PROTO_KIND_VIDEO)
			continue;
		if (b.pts_us <= last)
			fail_msg("video %d: pts %lld after %lld", video,
				 (long long)b.pts_us, (long long)last);
		last = b.pts_us;
		video++;
	}
	/* Three passes of 2.5 s, give or take the last frame's length. */
	assert_true(last >= 7000000 && last < 7600000);
	codec_file_close(f);
	unlink(path);
}

static void test_missing(void **state)
{
	struct codec_file *f = (void *)1;
	char why[256] = "";

	(void)state;
	assert_int_equal(codec_file_open(&f, "/nonexistent/x.mp4", false, 0,
					 why, sizeof(why)),
			 -PROTO_E_NOT_FOUND);
	assert_null(f);
	assert_true(why[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_file_h264", test_file, NULL, NULL, (void *)&h264 },
		{ "test_file_hevc", test_file, NULL, NULL, (void *)&hevc },
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_missing),
	};

	codec_log_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
