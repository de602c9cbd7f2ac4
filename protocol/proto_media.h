/*
 * proto_media: the binary media message.
 *
 * Every binary WebSocket message is a 32-byte header followed by the
 * payload; all integers are big-endian.  The relay forwards a message to
 * viewers byte for byte, so the header carries everything a viewer needs.
 *
 *   off size field
 *    0   1   magic      0xA5
 *    1   1   version    1
 *    2   1   kind       enum proto_kind
 *    3   1   flags      PROTO_F_*
 *    4   1   codec      enum proto_codec
 *    5   1   reserved   0
 *    6   2   stream     stream id
 *    8   4   seq        per-stream sequence number, wraps
 *   12   4   length     payload length; equals message size - 32
 *   16   8   pts        presentation time, microseconds
 *   24   8   capture    capture time, microseconds since the Unix epoch
 *
 * Input and cursor payloads have fixed layouts, below.
 */
#ifndef ASP_PROTO_MEDIA_H
#define ASP_PROTO_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MEDIA_MAGIC 0xA5
#define PROTO_MEDIA_VERSION 1
#define PROTO_MEDIA_HDR_LEN 32

enum proto_kind {
	PROTO_KIND_VIDEO = 1,
	PROTO_KIND_AUDIO = 2,
	PROTO_KIND_CURSOR = 3,
	PROTO_KIND_INPUT = 4,
	PROTO_KIND_CONTROL = 5, /* opaque host<->viewer data, never dropped */
};

enum proto_flag {
	PROTO_F_KEYFRAME = 1 << 0,     /* decodable on its own (IDR/IRAP) */
	PROTO_F_CONFIG = 1 << 1,       /* carries codec configuration */
	PROTO_F_DISCARDABLE = 1 << 2,  /* may be dropped for a slow viewer */
};
#define PROTO_F_ALL (PROTO_F_KEYFRAME | PROTO_F_CONFIG | PROTO_F_DISCARDABLE)

enum proto_codec {
	PROTO_CODEC_NONE = 0,
	PROTO_CODEC_H264 = 1, /* Annex-B access unit */
	PROTO_CODEC_HEVC = 2, /* Annex-B access unit */
	PROTO_CODEC_OPUS = 3, /* one Opus packet */
	PROTO_CODEC_AV1 = 4,  /* low-overhead OBU temporal unit */
};

struct proto_media_hdr {
	uint8_t version;
	uint8_t kind;
	uint8_t flags;
	uint8_t codec;
	uint16_t stream;
	uint32_t seq;
	uint32_t length;
	uint64_t pts_us;
	uint64_t capture_us;
};

/* Writes the 32-byte header into out.  h->version 0 means the current
 * version.  Never fails: the caller owns the values. */
void proto_media_encode(const struct proto_media_hdr *h,
			uint8_t out[PROTO_MEDIA_HDR_LEN]);

/* Decodes and validates a whole message of msg_len bytes (header and
 * payload).  0, or -PROTO_E_MALFORMED with a sentence in why: short
 * message, bad magic, unknown version, kind, codec or flag bits, nonzero
 * reserved byte, length not matching msg_len, a kind/codec mismatch, or a
 * cursor or input payload that proto_cursor_decode / proto_input_decode
 * refuse.  out may be NULL to validate only. */
int proto_media_decode(const uint8_t *msg, size_t msg_len,
		       struct proto_media_hdr *out, char *why, size_t why_len);

/* Name of a kind / codec for logs and JSON ("video", "h264"); "?" when
 * unknown. */
const char *proto_kind_name(int kind);
const char *proto_codec_name(int codec);

/* Input payload: 16 bytes.
 *   0 u8 type (enum proto_input_type)   1 u8 reserved 0
 *   2 u16 modifiers (PROTO_MOD_*)        4 i32 x   8 i32 y
 *  12 u32 code
 * x,y: desktop pixels for pointer and touch, deltas for wheel.
 * code: key code for keys (DOM KeyboardEvent.keyCode values),
 *       button (0 left, 1 middle, 2 right) for pointer down/up,
 *       touch point id for touch events, 0 otherwise. */
#define PROTO_INPUT_LEN 16
enum proto_input_type {
	PROTO_IN_KEY_DOWN = 1,
	PROTO_IN_KEY_UP = 2,
	PROTO_IN_POINTER_MOVE = 3,
	PROTO_IN_POINTER_DOWN = 4,
	PROTO_IN_POINTER_UP = 5,
	PROTO_IN_WHEEL = 6,
	PROTO_IN_TOUCH_START = 7,
	PROTO_IN_TOUCH_MOVE = 8,
	PROTO_IN_TOUCH_END = 9,
};
enum proto_modifier {
	PROTO_MOD_SHIFT = 1 << 0,
	PROTO_MOD_CTRL = 1 << 1,
	PROTO_MOD_ALT = 1 << 2,
	PROTO_MOD_META = 1 << 3,
};
struct proto_input {
	uint8_t type;
	uint16_t modifiers;
	int32_t x, y;
	uint32_t code;
};
void proto_input_encode(const struct proto_input *in,
			uint8_t out[PROTO_INPUT_LEN]);
/* 0, or -PROTO_E_MALFORMED (wrong length, unknown type, reserved bits). */
int proto_input_decode(const uint8_t *p, size_t len, struct proto_input *out,
		       char *why, size_t why_len);
const char *proto_input_name(int type);

/* Cursor payload: 12 bytes.
 *   0 i32 x   4 i32 y   8 u8 visible (0/1)   9 u8 shape   10 u16 reserved 0 */
#define PROTO_CURSOR_LEN 12
struct proto_cursor {
	int32_t x, y;
	uint8_t visible;
	uint8_t shape;
};
void proto_cursor_encode(const struct proto_cursor *c,
			 uint8_t out[PROTO_CURSOR_LEN]);
/* 0, or -PROTO_E_MALFORMED (wrong length, visible not 0/1, reserved
 * bytes not 0). */
int proto_cursor_decode(const uint8_t *p, size_t len, struct proto_cursor *out,
			char *why, size_t why_len);

#endif
