/*
 * test_relay_guard: the parts of relay_guard a unit can pin down without
 * sockets: display names (cut at a character boundary, cleaned of
 * controls and bidi overrides, invalid UTF-8 replaced) and the token
 * time rules (lifetime and clock skew).  The limits that need
 * connections are tested end to end (tests/e2e/harden.test.mjs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "relay/relay.h"
#include "relay/relay_guard.h"

/* Cleans src into a buffer of cap bytes and checks the result. */
static void expect_name(const char *src, size_t cap, const char *want)
{
	char out[256];
	size_t n = relay_guard_name(out, cap, src);

	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_name_cut_at_character_boundary(void **state)
{
	(void)state;
	/* 22 three-byte characters (66 bytes) into 64: 21 characters. */
	char in[67] = "", want[64] = "";

	for (int i = 0; i < 22; i++)
		strcat(in, "\xE5\x90\x8D"); /* U+540D */
	for (int i = 0; i < 21; i++)
		strcat(want, "\xE5\x90\x8D");
	expect_name(in, RELAY_NAME_MAX + 1, want);
	/* Two- and four-byte characters straddling the end. */
	expect_name("ab\xC3\xA9", 4, "ab");
	expect_name("a\xF0\x9F\x98\x80", 5, "a");
	expect_name("a\xF0\x9F\x98\x80", 6, "a\xF0\x9F\x98\x80");
	expect_name("short", RELAY_NAME_MAX + 1, "short");
	expect_name(NULL, 8, "");
}

static void test_name_drops_controls_and_bidi(void **state)
{
	(void)state;
	expect_name("A\x01l\x1bi\x7f" "c\xC2\x85" "e", 64, "Alice");
	expect_name("x\xE2\x80\xAE" "y\xE2\x81\xA6" "z\xE2\x80\x8F", 64, "xyz");
	/* Other non-ASCII text is kept. */
	expect_name("Zo\xC3\xAB \xE2\x80\x94 Jos\xC3\xA9", 64,
		    "Zo\xC3\xAB \xE2\x80\x94 Jos\xC3\xA9");
}

static void test_name_replaces_invalid_utf8(void **state)
{
	(void)state;
	/* A stray continuation byte, an overlong, a surrogate, a lone lead. */
	expect_name("a\x80" "b", 64, "a\xEF\xBF\xBD" "b");
	expect_name("\xC0\xAF", 64, "\xEF\xBF\xBD\xEF\xBF\xBD");
	expect_name("\xED\xA0\x80", 64, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	expect_name("z\xE5", 64, "z\xEF\xBF\xBD");
}

static void test_token_times(void **state)
{
	static struct relay r;
	struct proto_claims c = { .user = "dana" };
	char why[160];
	int64_t now = (int64_t)time(NULL);

	(void)state;
	r.cfg.max_token_life_s = 30 * 86400;
	r.cfg.token_skew_s = 300;
	c.iat = (uint64_t)now;
	c.exp = (uint64_t)now + 86400;
	assert_int_equal(relay_guard_token_times(&r, &c, why, sizeof(why)), 0);
	c.exp = (uint64_t)now + 30 * 86400;
	assert_int_equal(relay_guard_token_times(&r, &c, why, sizeof(why)), 0);
	c.exp++;
	assert_int_equal(relay_guard_token_times(&r, &c, why, sizeof(why)),
			 -PROTO_E_UNAUTHORIZED);
	assert_non_null(strstr(why, "lives longer"));
	c.iat = (uint64_t)now + 200; /* within the skew */
	c.exp = c.iat + 3600;
	assert_int_equal(relay_guard_token_times(&r, &c, why, sizeof(why)), 0);
	c.iat = (uint64_t)now + 400;
	assert_int_equal(relay_guard_token_times(&r, &c, why, sizeof(why)),
			 -PROTO_E_UNAUTHORIZED);
	assert_non_null(strstr(why, "future"));
	/* The injected clock moves the window. */
	r.clock_offset_s = 400;
	assert_int_equal(relay_guard_token_times(&r, &c, why, sizeof(why)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_cut_at_character_boundary),
		cmocka_unit_test(test_name_drops_controls_and_bidi),
		cmocka_unit_test(test_name_replaces_invalid_utf8),
		cmocka_unit_test(test_token_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
