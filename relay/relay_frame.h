/*
 * relay_frame: one message, allocated once and shared by reference.
 *
 * A frame holds a whole WebSocket message (a binary media message or a
 * JSON text message) with LWS_PRE bytes of headroom in front, so that
 * lws can write the WebSocket header in place and send header and payload
 * in one send().  Every holder (a viewer's queue, the keyframe cache, the
 * frame being assembled) owns one reference; the last relay_frame_unref()
 * frees it.  Nothing ever copies a frame's bytes after they are received.
 *
 * The LWS_PRE bytes before any write position may be overwritten by lws
 * while a write is in progress (see relay_conn.c for how fragmented writes
 * of a shared frame save and restore them); otherwise the bytes are
 * immutable once the frame is published.
 */
#ifndef ASP_RELAY_FRAME_H
#define ASP_RELAY_FRAME_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay_frame {
	uint32_t refs;
	uint32_t len;     /* bytes of message at data() */
	uint32_t cap;     /* bytes allocated at data() */
	bool text;        /* JSON control message rather than media */
	uint8_t kind;     /* media header fields, for queue policy */
	uint8_t flags;
	uint8_t codec;
	uint16_t stream;
	uint32_t seq;
	uint64_t capture_us;
	uint64_t recv_us;    /* the turn it was received in (relay_turn_now_us) */
	unsigned char buf[]; /* LWS_PRE + cap */
};

static inline unsigned char *relay_frame_data(struct relay_frame *f)
{
	return f->buf + LWS_PRE;
}

/* A frame with room for cap message bytes, len 0, one reference.
 * Aborts on out-of-memory (relay_alloc.h); cap is bounded by callers. */
struct relay_frame *relay_frame_new(size_t cap);

/* A text frame holding a copy of the len bytes at s. */
struct relay_frame *relay_frame_text(const char *s, size_t len);

static inline struct relay_frame *relay_frame_ref(struct relay_frame *f)
{
	f->refs++;
	return f;
}

/* Drops one reference; frees the frame when it was the last. NULL is ok. */
void relay_frame_unref(struct relay_frame *f);

#endif
