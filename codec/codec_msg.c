/*
 * codec_msg: building media messages into reusable buffers, and the two
 * small process-wide helpers the sources share (wall clock, log level).
 */
#include "codec/codec_msg.h"

#include <libavutil/log.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/proto_error.h"

static int msgbuf_reserve(struct codec_msgbuf *b, size_t need)
{
	uint8_t *mem;

	if (need <= b->cap)
		return 0;
	/* Grow by half again so a slowly rising bitrate does not realloc
	 * on every keyframe. */
	size_t cap = need + need / 2;

	if (cap < need)
		cap = need;
	mem = realloc(b->mem, cap);
	if (mem == NULL)
		return -PROTO_E_INTERNAL;
	b->mem = mem;
	b->cap = cap;
	return 0;
}

int codec_msg_build(struct codec_msgbuf *b, size_t headroom,
		    const struct proto_media_hdr *h, const uint8_t *payload,
		    size_t len, struct codec_msg *out)
{
	size_t need;
	int err;

	if (len > UINT32_MAX || headroom > SIZE_MAX / 2 ||
	    len > SIZE_MAX / 2 - headroom - PROTO_MEDIA_HDR_LEN)
		return -PROTO_E_TOO_LARGE;
	need = headroom + PROTO_MEDIA_HDR_LEN + len;
	err = msgbuf_reserve(b, need);
	if (err)
		return err;
	out->hdr = *h;
	out->hdr.length = (uint32_t)len;
	out->data = b->mem + headroom;
	out->len = PROTO_MEDIA_HDR_LEN + len;
	proto_media_encode(&out->hdr, out->data);
	if (len)
		memcpy(out->data + PROTO_MEDIA_HDR_LEN, payload, len);
	return 0;
}

void codec_msgbuf_free(struct codec_msgbuf *b)
{
	free(b->mem);
	b->mem = NULL;
	b->cap = 0;
}

uint64_t codec_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void codec_log_quiet(void)
{
	av_log_set_level(AV_LOG_ERROR);
}
