/*
 * Unit tests for proto_media: the header round-trips byte for byte in the
 * layout docs/protocol.md prints, every invalid field is refused with a
 * sentence naming it, and the cursor and input payloads round-trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_error.h"
#include "protocol/proto_media.h"

#define MSG_MAX (PROTO_MEDIA_HDR_LEN + 64)

/* Builds a valid message of the given kind/codec with payload_len bytes
 * of payload; returns its total size. */
static size_t make_msg(uint8_t *buf, uint8_t kind, uint8_t codec,
		       const uint8_t *payload, size_t payload_len)
{
	struct proto_media_hdr h = {
		.kind = kind, .codec = codec, .stream = 1,
		.length = (uint32_t)payload_len,
	};

	proto_media_encode(&h, buf);
	if (payload_len)
		memcpy(buf + PROTO_MEDIA_HDR_LEN, payload, payload_len);
	return PROTO_MEDIA_HDR_LEN + payload_len;
}

static void expect_malformed(const uint8_t *msg, size_t len, const char *want)
{
	char why[256] = "";
	struct proto_media_hdr h;
	int rc = proto_media_decode(msg, len, &h, why, sizeof why);

	if (rc != -PROTO_E_MALFORMED)
		fail_msg("rc %d, expected malformed (%s)", rc, want);
	if (!strstr(why, want))
		fail_msg("why \"%s\" does not say \"%s\"", why, want);
}

static void test_encode_layout(void **state)
{
	const struct proto_media_hdr h = {
		.kind = PROTO_KIND_VIDEO,
		.flags = PROTO_F_KEYFRAME | PROTO_F_CONFIG,
		.codec = PROTO_CODEC_HEVC, .stream = 0x0102,
		.seq = 0xA1B2C3D4, .length = 0x00000005,
		.pts_us = 0x1122334455667788ull,
		.capture_us = 0x8877665544332211ull,
	};
	const uint8_t want[PROTO_MEDIA_HDR_LEN] = {
		0xA5, 1, 1, 3, 2, 0, 0x01, 0x02,
		0xA1, 0xB2, 0xC3, 0xD4, 0, 0, 0, 5,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
	};
	uint8_t out[PROTO_MEDIA_HDR_LEN];

	(void)state;
	proto_media_encode(&h, out);
	assert_memory_equal(out, want, sizeof want);
}

static void test_round_trip(void **state)
{
	uint8_t msg[MSG_MAX] = {0};
	const struct proto_media_hdr h = {
		.version = PROTO_MEDIA_VERSION, .kind = PROTO_KIND_AUDIO,
		.flags = PROTO_F_DISCARDABLE, .codec = PROTO_CODEC_OPUS,
		.stream = 0xFFFF, .seq = UINT32_MAX, .length = 7,
		.pts_us = UINT64_MAX, .capture_us = 1,
	};
	struct proto_media_hdr got;

	(void)state;
	proto_media_encode(&h, msg);
	assert_int_equal(proto_media_decode(msg, PROTO_MEDIA_HDR_LEN + 7, &got,
					    NULL, 0), 0);
	assert_memory_equal(&got, &h, sizeof h);
	/* out may be NULL: validation only. */
	assert_int_equal(proto_media_decode(msg, PROTO_MEDIA_HDR_LEN + 7, NULL,
					    NULL, 0), 0);
}

static void test_kind_codec_pairs(void **state)
{
	uint8_t msg[MSG_MAX] = {0}, payload[PROTO_INPUT_LEN] = {0};
	/* allowed[kind][codec], docs/protocol.md "Kinds and codecs". */
	static const int allowed[6][5] = {
		[PROTO_KIND_VIDEO] = {1, 1, 1, 0, 1},
		[PROTO_KIND_AUDIO] = {1, 0, 0, 1, 0},
		[PROTO_KIND_CURSOR] = {1, 0, 0, 0, 0},
		[PROTO_KIND_INPUT] = {1, 0, 0, 0, 0},
		[PROTO_KIND_CONTROL] = {1, 0, 0, 0, 0},
	};

	(void)state;
	for (uint8_t k = PROTO_KIND_VIDEO; k <= PROTO_KIND_CONTROL; k++) {
		size_t plen = k == PROTO_KIND_CURSOR ? PROTO_CURSOR_LEN
			    : k == PROTO_KIND_INPUT ? PROTO_INPUT_LEN : 3;

		payload[0] = k == PROTO_KIND_INPUT ? PROTO_IN_KEY_DOWN : 0;
		for (uint8_t c = 0; c <= PROTO_CODEC_AV1; c++) {
			char why[128] = "";
			size_t n = make_msg(msg, k, c, payload, plen);
			int rc = proto_media_decode(msg, n, NULL, why, sizeof why);
			int want = allowed[k][c] ? 0 : -PROTO_E_MALFORMED;

			if (rc != want)
				fail_msg("%s/%s: rc %d, want %d (%s)",
					 proto_kind_name(k), proto_codec_name(c),
					 rc, want, why);
		}
	}
	make_msg(msg, PROTO_KIND_AUDIO, PROTO_CODEC_H264, NULL, 0);
	expect_malformed(msg, PROTO_MEDIA_HDR_LEN,
			 "kind audio cannot carry codec h264");
}

static void test_bad_header_fields(void **state)
{
	/* One header byte set to a bad value, and what the refusal says. */
	static const struct {
		size_t off;
		uint8_t value;
		const char *why;
	} bad[] = {
		{0, 0xA4, "bad magic 0xa4"},
		{1, 2, "unknown media version 2"},
		{1, 0, "unknown media version 0"},
		{2, 0, "unknown kind 0"},
		{2, 6, "unknown kind 6"},
		{3, 0x08, "unknown flag bits 0x08"},
		{3, 0xFF, "unknown flag bits 0xf8"},
		{4, 5, "unknown codec 5"},
		{5, 1, "reserved byte is 1"},
	};
	uint8_t msg[MSG_MAX];
	size_t n;

	(void)state;
	n = make_msg(msg, PROTO_KIND_VIDEO, PROTO_CODEC_H264, NULL, 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t keep = msg[bad[i].off];

		msg[bad[i].off] = bad[i].value;
		expect_malformed(msg, n, bad[i].why);
		msg[bad[i].off] = keep;
	}
	msg[3] = PROTO_F_ALL;
	assert_int_equal(proto_media_decode(msg, n, NULL, NULL, 0), 0);
}

static void test_lengths(void **state)
{
	uint8_t msg[MSG_MAX] = {0};
	uint8_t payload[10] = {0};
	size_t n;

	(void)state;
	n = make_msg(msg, PROTO_KIND_CONTROL, 0, payload, sizeof payload);
	assert_int_equal(proto_media_decode(msg, n, NULL, NULL, 0), 0);
	expect_malformed(msg, n - 1, "length field says 10 payload bytes, "
				     "the message has 9");
	expect_malformed(msg, n + 1, "the message has 11");
	expect_malformed(msg, PROTO_MEDIA_HDR_LEN - 1,
			 "media message is 31 bytes, shorter than");
	expect_malformed(msg, 0, "media message is 0 bytes");
	expect_malformed(NULL, 100, "media message is 0 bytes");
	/* A length field near 2^32 must not wrap any arithmetic. */
	msg[12] = msg[13] = msg[14] = msg[15] = 0xFF;
	expect_malformed(msg, n, "says 4294967295 payload bytes");
	/* An empty payload is fine where the kind allows it. */
	n = make_msg(msg, PROTO_KIND_VIDEO, 0, NULL, 0);
	assert_int_equal(proto_media_decode(msg, n, NULL, NULL, 0), 0);
}

static void test_fixed_payloads_in_messages(void **state)
{
	uint8_t msg[MSG_MAX], p[PROTO_INPUT_LEN + 1] = {0};
	size_t n;

	(void)state;
	n = make_msg(msg, PROTO_KIND_CURSOR, 0, p, PROTO_CURSOR_LEN - 1);
	expect_malformed(msg, n, "cursor payload is 11 bytes, not 12");
	n = make_msg(msg, PROTO_KIND_CURSOR, 0, p, PROTO_CURSOR_LEN);
	assert_int_equal(proto_media_decode(msg, n, NULL, NULL, 0), 0);
	n = make_msg(msg, PROTO_KIND_INPUT, 0, p, PROTO_INPUT_LEN);
	expect_malformed(msg, n, "unknown input type 0");
	p[0] = PROTO_IN_WHEEL;
	n = make_msg(msg, PROTO_KIND_INPUT, 0, p, PROTO_INPUT_LEN + 1);
	expect_malformed(msg, n, "input payload is 17 bytes, not 16");
	n = make_msg(msg, PROTO_KIND_INPUT, 0, p, PROTO_INPUT_LEN);
	assert_int_equal(proto_media_decode(msg, n, NULL, NULL, 0), 0);
}

static void test_input_round_trip(void **state)
{
	const struct proto_input in = {
		.type = PROTO_IN_POINTER_DOWN,
		.modifiers = PROTO_MOD_SHIFT | PROTO_MOD_META,
		.x = -1, .y = INT32_MIN, .code = 2,
	};
	const uint8_t want[PROTO_INPUT_LEN] = {
		4, 0, 0x00, 0x09, 0xFF, 0xFF, 0xFF, 0xFF,
		0x80, 0, 0, 0, 0, 0, 0, 2,
	};
	uint8_t buf[PROTO_INPUT_LEN];
	struct proto_input got;

	(void)state;
	proto_input_encode(&in, buf);
	assert_memory_equal(buf, want, sizeof want);
	assert_int_equal(proto_input_decode(buf, sizeof buf, &got, NULL, 0), 0);
	assert_int_equal(got.type, in.type);
	assert_int_equal(got.modifiers, in.modifiers);
	assert_int_equal(got.x, -1);
	assert_int_equal(got.y, INT32_MIN);
	assert_int_equal(got.code, 2);
}

static void expect_input_bad(const uint8_t *p, size_t len, const char *want)
{
	char why[128] = "";
	struct proto_input got;
	int rc = proto_input_decode(p, len, &got, why, sizeof why);

	if (rc != -PROTO_E_MALFORMED || !strstr(why, want))
		fail_msg("rc %d why \"%s\", want malformed \"%s\"", rc, why, want);
}

static void test_input_invalid(void **state)
{
	uint8_t p[PROTO_INPUT_LEN] = {PROTO_IN_TOUCH_END};

	(void)state;
	assert_int_equal(proto_input_decode(p, sizeof p, NULL, NULL, 0), 0);
	p[0] = 10;
	expect_input_bad(p, sizeof p, "unknown input type 10");
	p[0] = PROTO_IN_KEY_UP;
	p[1] = 1;
	expect_input_bad(p, sizeof p, "reserved bits");
	p[1] = 0;
	p[3] = 0x10;
	expect_input_bad(p, sizeof p, "modifiers 0x0010");
	p[3] = 0x0F;
	assert_int_equal(proto_input_decode(p, sizeof p, NULL, NULL, 0), 0);
	p[2] = 0x80;
	expect_input_bad(p, sizeof p, "modifiers 0x800f");
	expect_input_bad(p, 15, "15 bytes, not 16");
	expect_input_bad(NULL, 16, "0 bytes, not 16");
}

static void test_cursor_round_trip_and_invalid(void **state)
{
	const struct proto_cursor c = {.x = 1920, .y = -5, .visible = 1,
				       .shape = 7};
	uint8_t buf[PROTO_CURSOR_LEN];
	struct proto_cursor got;
	char why[128] = "";

	(void)state;
	proto_cursor_encode(&c, buf);
	assert_int_equal(proto_cursor_decode(buf, sizeof buf, &got, NULL, 0), 0);
	assert_int_equal(got.x, 1920);
	assert_int_equal(got.y, -5);
	assert_int_equal(got.visible, 1);
	assert_int_equal(got.shape, 7);
	buf[8] = 2;
	assert_int_equal(proto_cursor_decode(buf, sizeof buf, &got, why,
					     sizeof why), -PROTO_E_MALFORMED);
	assert_string_equal(why, "cursor visible is 2, not 0 or 1");
	buf[8] = 0;
	buf[11] = 1;
	assert_int_equal(proto_cursor_decode(buf, sizeof buf, &got, why,
					     sizeof why), -PROTO_E_MALFORMED);
	assert_string_equal(why, "cursor reserved bytes are not 0");
	assert_int_equal(proto_cursor_decode(buf, 13, &got, NULL, 0),
			 -PROTO_E_MALFORMED);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(proto_kind_name(PROTO_KIND_VIDEO), "video");
	assert_string_equal(proto_kind_name(PROTO_KIND_CONTROL), "control");
	assert_string_equal(proto_kind_name(0), "?");
	assert_string_equal(proto_kind_name(6), "?");
	assert_string_equal(proto_kind_name(-1), "?");
	assert_string_equal(proto_codec_name(PROTO_CODEC_NONE), "none");
	assert_string_equal(proto_codec_name(PROTO_CODEC_H264), "h264");
	assert_string_equal(proto_codec_name(PROTO_CODEC_HEVC), "hevc");
	assert_string_equal(proto_codec_name(PROTO_CODEC_OPUS), "opus");
	assert_string_equal(proto_codec_name(PROTO_CODEC_AV1), "av1");
	assert_string_equal(proto_codec_name(5), "?");
	assert_string_equal(proto_codec_name(-1), "?");
	assert_string_equal(proto_input_name(PROTO_IN_KEY_DOWN), "key_down");
	assert_string_equal(proto_input_name(PROTO_IN_WHEEL), "wheel");
	assert_string_equal(proto_input_name(PROTO_IN_TOUCH_END), "touch_end");
	assert_string_equal(proto_input_name(0), "?");
	assert_string_equal(proto_input_name(10), "?");
}

static void test_garbage_never_passes_unless_valid(void **state)
{
	uint8_t msg[MSG_MAX];
	unsigned seed = 12345, passed = 0;

	(void)state;
	/* Random headers with a consistent length: whatever passes must
	 * satisfy every documented rule. */
	for (int i = 0; i < 20000; i++) {
		struct proto_media_hdr h;

		for (size_t k = 0; k < sizeof msg; k++) {
			seed = seed * 1103515245u + 12345u;
			msg[k] = (uint8_t)(seed >> 16);
		}
		msg[0] = PROTO_MEDIA_MAGIC;
		msg[1] = 1;
		msg[2] &= 7;
		msg[3] &= 7;
		msg[4] &= 7;
		msg[5] = 0;
		msg[12] = msg[13] = msg[14] = 0;
		msg[15] &= 31;
		if (proto_media_decode(msg, PROTO_MEDIA_HDR_LEN + msg[15], &h,
				       NULL, 0) < 0)
			continue;
		passed++;
		assert_in_range(h.kind, PROTO_KIND_VIDEO, PROTO_KIND_CONTROL);
		assert_in_range(h.codec, 0, PROTO_CODEC_AV1);
		assert_int_equal(h.length, msg[15]);
	}
	assert_true(passed > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_layout),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_kind_codec_pairs),
		cmocka_unit_test(test_bad_header_fields),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_fixed_payloads_in_messages),
		cmocka_unit_test(test_input_round_trip),
		cmocka_unit_test(test_input_invalid),
		cmocka_unit_test(test_cursor_round_trip_and_invalid),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_garbage_never_passes_unless_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
