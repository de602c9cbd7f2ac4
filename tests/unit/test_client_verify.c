/*
 * Unit tests for the viewer's media checks (tools/common/client_pattern,
 * client_verify): the pattern payload round-trips and any corruption is
 * caught; a gap is harmless when only discardable frames were lost and an
 * error when a keyframe the next frame needs was lost; the first video
 * message must be a keyframe; and what the relay replays from its cache
 * is left out of the latency figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_media.h"
#include "tools/common/client_pattern.h"
#include "tools/common/client_verify.h"

#define PAYLOAD 100
#define MSG_LEN (PROTO_MEDIA_HDR_LEN + PAYLOAD)

/* A pattern video message as asp-host's pattern source makes it. */
static void pattern_msg(uint8_t *buf, uint32_t seq, uint32_t ref, bool key,
			uint64_t capture_us)
{
	struct proto_media_hdr h = {
		.kind = PROTO_KIND_VIDEO,
		.flags = key ? PROTO_F_KEYFRAME | PROTO_F_CONFIG
			     : PROTO_F_DISCARDABLE,
		.seq = seq, .length = PAYLOAD, .capture_us = capture_us,
	};

	proto_media_encode(&h, buf);
	client_pattern_fill(buf + PROTO_MEDIA_HDR_LEN, PAYLOAD, 0, seq, ref);
}

/* Feeds video seq with ref; returns the verifier's error count. */
static uint64_t feed(struct client_verify *v, uint32_t seq, uint32_t ref,
		     bool key)
{
	uint8_t buf[MSG_LEN];
	struct proto_media_hdr h;

	pattern_msg(buf, seq, ref, key, 1000);
	assert_int_equal(client_verify_media(v, buf, sizeof(buf), 2000, &h),
			 0);
	return v->errors;
}

static void test_crc32_known_value(void **state)
{
	(void)state;
	/* The standard check value of CRC-32/ISO-HDLC (zlib's crc32). */
	assert_int_equal(client_crc32(0, (const uint8_t *)"123456789", 9),
			 0xCBF43926u);
}

static void test_pattern_round_trip_and_corruption(void **state)
{
	uint8_t p[64];
	uint32_t ref = 0;
	char why[256];
	size_t i;

	(void)state;
	client_pattern_fill(p, sizeof(p), 7, 42, 40);
	assert_int_equal(client_pattern_check(p, sizeof(p), 7, 42, &ref, why,
					      sizeof(why)), 0);
	assert_int_equal(ref, 40);
	/* Wrong seq or stream: the payload is somebody else's. */
	assert_int_equal(client_pattern_check(p, sizeof(p), 7, 43, &ref, why,
					      sizeof(why)), -1);
	assert_int_equal(client_pattern_check(p, sizeof(p), 8, 42, &ref, why,
					      sizeof(why)), -1);
	/* Any flipped byte is caught. */
	for (i = 0; i < sizeof(p); i++) {
		p[i] ^= 0x10;
		assert_int_equal(client_pattern_check(p, sizeof(p), 7, 42,
						      &ref, why, sizeof(why)),
				 -1);
		p[i] ^= 0x10;
	}
	/* Truncated: the CRC no longer matches. */
	assert_int_equal(client_pattern_check(p, sizeof(p) - 1, 7, 42, &ref,
					      why, sizeof(why)), -1);
}

static void test_dropped_discardables_are_a_harmless_gap(void **state)
{
	struct client_verify v;

	(void)state;
	client_verify_init(&v);
	assert_int_equal(feed(&v, 0, 0, true), 0);
	assert_int_equal(feed(&v, 1, 0, false), 0);
	/* 2 and 3 were dropped; 4 needs only keyframe 0. */
	assert_int_equal(feed(&v, 4, 0, false), 0);
	assert_int_equal(v.gaps, 1);
	assert_int_equal(v.frames, 3);
	assert_int_equal(v.first_keyframe, 1);
	client_verify_free(&v);
}

static void test_a_lost_keyframe_is_an_error(void **state)
{
	struct client_verify v;

	(void)state;
	client_verify_init(&v);
	feed(&v, 0, 0, true);
	feed(&v, 1, 0, false);
	/* Keyframe 2 was lost: 3 refers to it. */
	assert_int_equal(feed(&v, 3, 2, false), 1);
	/* The next keyframe heals the stream. */
	assert_int_equal(feed(&v, 4, 4, true), 1);
	assert_int_equal(feed(&v, 5, 4, false), 1);
	client_verify_free(&v);
}

static void test_first_video_must_be_a_keyframe(void **state)
{
	struct client_verify v;

	(void)state;
	client_verify_init(&v);
	assert_true(feed(&v, 10, 9, false) > 0);
	assert_int_equal(v.first_keyframe, 0);
	client_verify_free(&v);
}

static void test_coded_video_after_a_gap_needs_a_keyframe(void **state)
{
	struct client_verify v;
	uint8_t buf[PROTO_MEDIA_HDR_LEN + 4] = { 0 };
	struct proto_media_hdr h = {
		.kind = PROTO_KIND_VIDEO, .codec = PROTO_CODEC_H264,
		.flags = PROTO_F_KEYFRAME, .length = 4,
	};
	struct proto_media_hdr out;

	(void)state;
	client_verify_init(&v);
	proto_media_encode(&h, buf);
	client_verify_media(&v, buf, sizeof(buf), 0, &out);
	h.flags = PROTO_F_DISCARDABLE;
	h.seq = 5;
	proto_media_encode(&h, buf);
	client_verify_media(&v, buf, sizeof(buf), 0, &out);
	assert_int_equal(v.gaps, 1);
	assert_int_equal(v.errors, 1);
	/* A caller that decodes lets the decoder judge instead. */
	v.check_gaps = false;
	h.seq = 9;
	proto_media_encode(&h, buf);
	client_verify_media(&v, buf, sizeof(buf), 0, &out);
	assert_int_equal(v.gaps, 2);
	assert_int_equal(v.errors, 1);
	client_verify_free(&v);
}

static void test_cached_messages_stay_out_of_latency(void **state)
{
	struct client_verify v;
	uint8_t buf[MSG_LEN];
	struct proto_media_hdr h;

	(void)state;
	client_verify_init(&v);
	client_verify_joined(&v, 1000000);
	/* Captured 900 ms before the join: replayed from the cache. */
	pattern_msg(buf, 0, 0, true, 100000);
	client_verify_media(&v, buf, sizeof(buf), 1001000, &h);
	/* Captured after the join, received 3 ms later. */
	pattern_msg(buf, 1, 0, false, 1002000);
	client_verify_media(&v, buf, sizeof(buf), 1005000, &h);
	assert_int_equal(v.cached, 1);
	assert_int_equal(v.lat_n, 1);
	assert_int_equal(v.lat_us[0], 3000);
	assert_int_equal(v.lat_max_us, 3000);
	client_verify_free(&v);
}

static void test_bad_header_is_an_error(void **state)
{
	struct client_verify v;
	uint8_t buf[MSG_LEN];
	struct proto_media_hdr h;

	(void)state;
	client_verify_init(&v);
	pattern_msg(buf, 0, 0, true, 0);
	buf[0] = 0x00;
	assert_int_equal(client_verify_media(&v, buf, sizeof(buf), 0, &h), -1);
	assert_int_equal(v.errors, 1);
	client_verify_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_known_value),
		cmocka_unit_test(test_pattern_round_trip_and_corruption),
		cmocka_unit_test(test_dropped_discardables_are_a_harmless_gap),
		cmocka_unit_test(test_a_lost_keyframe_is_an_error),
		cmocka_unit_test(test_first_video_must_be_a_keyframe),
		cmocka_unit_test(test_coded_video_after_a_gap_needs_a_keyframe),
		cmocka_unit_test(test_cached_messages_stay_out_of_latency),
		cmocka_unit_test(test_bad_header_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
