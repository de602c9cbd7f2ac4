/*
 * proto_media: the 32-byte binary media header and the fixed cursor and
 * input payloads (docs/protocol.md, "Media messages").
 *
 * Everything here reads bytes a peer chose, so decoding checks every
 * field before anyone acts on it, and each refusal says which field was
 * wrong so a client author can fix it from the log line alone.
 */
#include "protocol/proto_media.h"

#include "protocol/proto_error.h"

/* Big-endian field access; unaligned-safe because it goes byte by byte. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void proto_media_encode(const struct proto_media_hdr *h,
			uint8_t out[PROTO_MEDIA_HDR_LEN])
{
	out[0] = PROTO_MEDIA_MAGIC;
	out[1] = h->version ? h->version : PROTO_MEDIA_VERSION;
	out[2] = h->kind;
	out[3] = h->flags;
	out[4] = h->codec;
	out[5] = 0;
	put16(out + 6, h->stream);
	put32(out + 8, h->seq);
	put32(out + 12, h->length);
	put64(out + 16, h->pts_us);
	put64(out + 24, h->capture_us);
}

/* Which codecs a kind may carry; 0 (not yet known) is always allowed. */
static int codec_fits_kind(int kind, int codec)
{
	if (codec == PROTO_CODEC_NONE)
		return 1;
	if (kind == PROTO_KIND_VIDEO)
		return codec == PROTO_CODEC_H264 || codec == PROTO_CODEC_HEVC ||
		       codec == PROTO_CODEC_AV1;
	if (kind == PROTO_KIND_AUDIO)
		return codec == PROTO_CODEC_OPUS;
	return 0;
}

/* Checks the header fields that do not depend on the payload. */
static int check_header(const uint8_t *m, char *why, size_t why_len)
{
	if (m[0] != PROTO_MEDIA_MAGIC) {
		proto_err_set(why, why_len, "bad magic 0x%02x (expected 0xa5)",
			      m[0]);
		return -PROTO_E_MALFORMED;
	}
	if (m[1] != PROTO_MEDIA_VERSION) {
		proto_err_set(why, why_len, "unknown media version %u", m[1]);
		return -PROTO_E_MALFORMED;
	}
	if (m[2] < PROTO_KIND_VIDEO || m[2] > PROTO_KIND_CONTROL) {
		proto_err_set(why, why_len, "unknown kind %u", m[2]);
		return -PROTO_E_MALFORMED;
	}
	if (m[3] & ~PROTO_F_ALL) {
		proto_err_set(why, why_len, "unknown flag bits 0x%02x",
			      m[3] & ~PROTO_F_ALL);
		return -PROTO_E_MALFORMED;
	}
	if (m[4] > PROTO_CODEC_AV1) {
		proto_err_set(why, why_len, "unknown codec %u", m[4]);
		return -PROTO_E_MALFORMED;
	}
	if (m[5] != 0) {
		proto_err_set(why, why_len, "reserved byte is %u, not 0", m[5]);
		return -PROTO_E_MALFORMED;
	}
	if (!codec_fits_kind(m[2], m[4])) {
		proto_err_set(why, why_len, "kind %s cannot carry codec %s",
			      proto_kind_name(m[2]), proto_codec_name(m[4]));
		return -PROTO_E_MALFORMED;
	}
	return 0;
}

/* Cursor and input payloads have fixed layouts the relay can check. */
static int check_payload(int kind, const uint8_t *p, size_t len, char *why,
			 size_t why_len)
{
	struct proto_cursor c;
	struct proto_input in;

	if (kind == PROTO_KIND_CURSOR)
		return proto_cursor_decode(p, len, &c, why, why_len);
	if (kind == PROTO_KIND_INPUT)
		return proto_input_decode(p, len, &in, why, why_len);
	return 0;
}

int proto_media_decode(const uint8_t *msg, size_t msg_len,
		       struct proto_media_hdr *out, char *why, size_t why_len)
{
	uint32_t length;
	int rc;

	if (!msg || msg_len < PROTO_MEDIA_HDR_LEN) {
		proto_err_set(why, why_len,
			      "media message is %zu bytes, shorter than its "
			      "32-byte header", msg ? msg_len : 0);
		return -PROTO_E_MALFORMED;
	}
	rc = check_header(msg, why, why_len);
	if (rc < 0)
		return rc;
	length = get32(msg + 12);
	if ((size_t)length != msg_len - PROTO_MEDIA_HDR_LEN) {
		proto_err_set(why, why_len,
			      "length field says %u payload bytes, the message "
			      "has %zu", length, msg_len - PROTO_MEDIA_HDR_LEN);
		return -PROTO_E_MALFORMED;
	}
	rc = check_payload(msg[2], msg + PROTO_MEDIA_HDR_LEN, length, why,
			   why_len);
	if (rc < 0)
		return rc;
	if (out) {
		*out = (struct proto_media_hdr){
			.version = msg[1], .kind = msg[2], .flags = msg[3],
			.codec = msg[4], .stream = get16(msg + 6),
			.seq = get32(msg + 8), .length = length,
			.pts_us = get64(msg + 16), .capture_us = get64(msg + 24),
		};
	}
	return 0;
}

const char *proto_kind_name(int kind)
{
	static const char *const names[] = {
		[PROTO_KIND_VIDEO] = "video", [PROTO_KIND_AUDIO] = "audio",
		[PROTO_KIND_CURSOR] = "cursor", [PROTO_KIND_INPUT] = "input",
		[PROTO_KIND_CONTROL] = "control",
	};

	if (kind < PROTO_KIND_VIDEO || kind > PROTO_KIND_CONTROL)
		return "?";
	return names[kind];
}

const char *proto_codec_name(int codec)
{
	static const char *const names[] = {
		[PROTO_CODEC_NONE] = "none", [PROTO_CODEC_H264] = "h264",
		[PROTO_CODEC_HEVC] = "hevc", [PROTO_CODEC_OPUS] = "opus",
		[PROTO_CODEC_AV1] = "av1",
	};

	if (codec < PROTO_CODEC_NONE || codec > PROTO_CODEC_AV1)
		return "?";
	return names[codec];
}

void proto_input_encode(const struct proto_input *in,
			uint8_t out[PROTO_INPUT_LEN])
{
	out[0] = in->type;
	out[1] = 0;
	put16(out + 2, in->modifiers);
	put32(out + 4, (uint32_t)in->x);
	put32(out + 8, (uint32_t)in->y);
	put32(out + 12, in->code);
}

/* Two's complement on the wire; converting through uint32_t keeps the
 * conversion defined for negative coordinates. */
static int32_t get_i32(const uint8_t *p)
{
	uint32_t u = get32(p);

	return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

int proto_input_decode(const uint8_t *p, size_t len, struct proto_input *out,
		       char *why, size_t why_len)
{
	uint16_t mods;

	if (!p || len != PROTO_INPUT_LEN) {
		proto_err_set(why, why_len,
			      "input payload is %zu bytes, not %d",
			      p ? len : 0, PROTO_INPUT_LEN);
		return -PROTO_E_MALFORMED;
	}
	if (p[0] < PROTO_IN_KEY_DOWN || p[0] > PROTO_IN_TOUCH_END) {
		proto_err_set(why, why_len, "unknown input type %u", p[0]);
		return -PROTO_E_MALFORMED;
	}
	mods = get16(p + 2);
	if (p[1] != 0 || (mods & ~0xFu)) {
		proto_err_set(why, why_len,
			      "input reserved bits are set (byte 1 0x%02x, "
			      "modifiers 0x%04x)", p[1], mods);
		return -PROTO_E_MALFORMED;
	}
	if (out) {
		*out = (struct proto_input){
			.type = p[0], .modifiers = mods, .x = get_i32(p + 4),
			.y = get_i32(p + 8), .code = get32(p + 12),
		};
	}
	return 0;
}

const char *proto_input_name(int type)
{
	static const char *const names[] = {
		[PROTO_IN_KEY_DOWN] = "key_down",
		[PROTO_IN_KEY_UP] = "key_up",
		[PROTO_IN_POINTER_MOVE] = "pointer_move",
		[PROTO_IN_POINTER_DOWN] = "pointer_down",
		[PROTO_IN_POINTER_UP] = "pointer_up",
		[PROTO_IN_WHEEL] = "wheel",
		[PROTO_IN_TOUCH_START] = "touch_start",
		[PROTO_IN_TOUCH_MOVE] = "touch_move",
		[PROTO_IN_TOUCH_END] = "touch_end",
	};

	if (type < PROTO_IN_KEY_DOWN || type > PROTO_IN_TOUCH_END)
		return "?";
	return names[type];
}

void proto_cursor_encode(const struct proto_cursor *c,
			 uint8_t out[PROTO_CURSOR_LEN])
{
	put32(out, (uint32_t)c->x);
	put32(out + 4, (uint32_t)c->y);
	out[8] = c->visible;
	out[9] = c->shape;
	put16(out + 10, 0);
}

int proto_cursor_decode(const uint8_t *p, size_t len, struct proto_cursor *out,
			char *why, size_t why_len)
{
	if (!p || len != PROTO_CURSOR_LEN) {
		proto_err_set(why, why_len,
			      "cursor payload is %zu bytes, not %d",
			      p ? len : 0, PROTO_CURSOR_LEN);
		return -PROTO_E_MALFORMED;
	}
	if (p[8] > 1) {
		proto_err_set(why, why_len, "cursor visible is %u, not 0 or 1",
			      p[8]);
		return -PROTO_E_MALFORMED;
	}
	if (get16(p + 10) != 0) {
		proto_err_set(why, why_len, "cursor reserved bytes are not 0");
		return -PROTO_E_MALFORMED;
	}
	if (out) {
		*out = (struct proto_cursor){
			.x = get_i32(p), .y = get_i32(p + 4),
			.visible = p[8], .shape = p[9],
		};
	}
	return 0;
}
