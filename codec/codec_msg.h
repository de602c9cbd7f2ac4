/*
 * codec_msg: media messages as the codec sources hand them out.
 *
 * A source (codec_synth, codec_file) turns each frame time into a small
 * batch of complete media messages: the 32-byte header followed by the
 * payload, contiguous, ready to send as one binary WebSocket message.
 * Each message is built in a buffer the source owns and reuses; the
 * caller asked for `headroom` writable bytes in front of it (LWS_PRE for
 * a libwebsockets client) so it can send without copying.
 */
#ifndef ASP_CODEC_MSG_H
#define ASP_CODEC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_media.h"

#define CODEC_BATCH_MAX 8

/* Stream ids the sources use. */
enum codec_stream {
	CODEC_STREAM_VIDEO = 0,
	CODEC_STREAM_AUDIO = 1,
	CODEC_STREAM_CURSOR = 2,
};

struct codec_msg {
	struct proto_media_hdr hdr; /* what data's header says */
	uint8_t *data;              /* header + payload; `headroom` bytes
				     * before it are the caller's to use */
	size_t len;                 /* PROTO_MEDIA_HDR_LEN + hdr.length */
};

/* What one call to a source's next() returns.  The messages stay valid
 * until the next call to the same source or its destruction. */
struct codec_batch {
	int64_t pts_us; /* when to send the batch, relative to the first */
	size_t count;
	struct codec_msg msg[CODEC_BATCH_MAX];
};

/* One reusable, growing message buffer. */
struct codec_msgbuf {
	uint8_t *mem;
	size_t cap;
};

/* Builds header + payload into b (growing it), with headroom bytes in
 * front; h->length is set from len.  Fills *out (pointing into b).
 * 0, or -PROTO_E_TOO_LARGE (payload over 4 GiB) / -PROTO_E_INTERNAL
 * (out of memory); b is unchanged on failure. */
int codec_msg_build(struct codec_msgbuf *b, size_t headroom,
		    const struct proto_media_hdr *h, const uint8_t *payload,
		    size_t len, struct codec_msg *out);

void codec_msgbuf_free(struct codec_msgbuf *b);

/* Wall clock, microseconds since the Unix epoch (the capture field). */
uint64_t codec_now_us(void);

/* Lowers libav's log level to errors only, so encoders do not chatter on
 * stderr.  Process-wide: call it once from main() or a test. */
void codec_log_quiet(void);

#endif
