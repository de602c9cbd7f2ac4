/*
 * Unit tests for proto_url's relay URLs (proto_relay_url_check): the one
 * rule a node's --node-url, a redirect and a --relay URL are read by,
 * at and around its edges, and the sentence a refusal carries.  The
 * Redis URL is tests/unit/test_relay_store.c's (test_redis_url).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_error.h"
#include "protocol/proto_url.h"

#define ALL (PROTO_RELAY_URL_HTTP | PROTO_RELAY_URL_PATH)

static void expect_url(const char *url, unsigned flags, int want)
{
	char why[256] = "";
	int rc = proto_relay_url_check(url, flags, why, sizeof why);

	if (rc != want)
		fail_msg("\"%s\" (flags %u): rc %d, want %d (%s)", url, flags,
			 rc, want, why);
	if (rc && !why[0])
		fail_msg("\"%s\": refused without a sentence", url);
}

/* A node's URL, as --node-url and a redirect have it: ws[s]://HOST[:PORT]
 * with at most a "/" after. */
static void test_node_urls(void **state)
{
	static const char *const good[] = {
		"ws://127.0.0.1:8080", "wss://relay.example", "ws://[::1]:9",
		"ws://[2001:db8::1]", "ws://[::ffff:10.0.0.1]:80",
		"wss://node-2.example:8443/", "ws://a.b-c_d:1", "ws://h:65535",
		"ws://h:1",
	};
	static const char *const bad[] = {
		"", "ftp://h", "ws://", "ws://:80", "ws://h:0", "ws://h:65536",
		"ws://h:123456", "ws://h:x", "ws://h:", "ws://h:080",
		"ws://u@h:1", "ws://h:1?x", "ws://h:1#f", "ws://h:1/a",
		"ws://h:1//", "ws://[]:1", "ws://[::1", "ws://[::1]x",
		"ws://[g::1]", "ws://h\n:1", "ws://h :1", "ws://h\t", "WS://h",
		"ws//h", "http://h:1", "https://h", "javascript:alert(1)",
		"ws://h\"<>", "ws://h\\x", "ws://\xc3\xa9t\xc3\xa9",
		"ws://[fe80::1%25eth0]",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect_url(good[i], PROTO_RELAY_URL_NODE, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_url(bad[i], PROTO_RELAY_URL_NODE, -PROTO_E_MALFORMED);
	expect_url(NULL, PROTO_RELAY_URL_NODE, -PROTO_E_MALFORMED);
}

/* A --relay URL may be http(s) and have a path; nothing else loosens. */
static void test_flags(void **state)
{
	(void)state;
	expect_url("http://h:1", PROTO_RELAY_URL_HTTP, 0);
	expect_url("https://h", PROTO_RELAY_URL_HTTP, 0);
	expect_url("http://h:1/x", PROTO_RELAY_URL_HTTP, -PROTO_E_MALFORMED);
	expect_url("ws://h:1/x", PROTO_RELAY_URL_PATH, 0);
	expect_url("http://h:1/x", PROTO_RELAY_URL_PATH, -PROTO_E_MALFORMED);
	expect_url("ws://h:65535/prefix/x.y~z%20", ALL, 0);
	expect_url("ws://h:1/a b", ALL, -PROTO_E_MALFORMED);
	expect_url("ws://h:1/a,b", ALL, -PROTO_E_MALFORMED);
	expect_url("ws://h:1/a?b", ALL, -PROTO_E_MALFORMED);
	expect_url("ws://u@h:1/", ALL, -PROTO_E_MALFORMED);
	expect_url("ftp://h", ALL, -PROTO_E_MALFORMED);
	expect_url("ws://h:0/x", ALL, -PROTO_E_MALFORMED);
}

/* Shorter than PROTO_RELAY_URL_MAX: 255 bytes pass, 256 do not. */
static void test_length(void **state)
{
	char url[PROTO_RELAY_URL_MAX + 1], why[256];

	(void)state;
	memset(url, 'a', sizeof url);
	memcpy(url, "ws://", 5);
	url[PROTO_RELAY_URL_MAX - 1] = '\0';
	expect_url(url, PROTO_RELAY_URL_NODE, 0);
	url[PROTO_RELAY_URL_MAX - 1] = 'a';
	url[PROTO_RELAY_URL_MAX] = '\0';
	assert_int_equal(proto_relay_url_check(url, ALL, why, sizeof why),
			 -PROTO_E_MALFORMED);
	assert_non_null(strstr(why, "longer than 255 bytes"));
}

/* The sentence quotes the URL printably and boundedly, and names the
 * fault; a short buffer is cut, not overrun; NULL takes no sentence. */
static void test_why(void **state)
{
	char why[256], tiny[8];

	(void)state;
	assert_int_equal(proto_relay_url_check("ws://h\x1b[2J:1", 0, why,
					       sizeof why),
			 -PROTO_E_MALFORMED);
	assert_null(strchr(why, '\x1b'));
	assert_non_null(strstr(why, "'ws://h?[2J:1'"));
	proto_relay_url_check("ws://h:99999", 0, why, sizeof why);
	assert_string_equal(why, "the port in 'ws://h:99999' is not a "
				 "number from 1 to 65535");
	proto_relay_url_check("ws://h:1/x", 0, why, sizeof why);
	assert_string_equal(why, "'ws://h:1/x' is more than "
				 "ws[s]://HOST:PORT");
	proto_relay_url_check("", 0, why, sizeof why);
	assert_string_equal(why, "a relay URL is empty");
	assert_int_equal(proto_relay_url_check("x", 0, tiny, sizeof tiny),
			 -PROTO_E_MALFORMED);
	assert_int_equal(strlen(tiny), sizeof tiny - 1);
	assert_int_equal(proto_relay_url_check("x", 0, NULL, 0),
			 -PROTO_E_MALFORMED);
}

static void test_shown(void **state)
{
	char out[12], url[64];

	(void)state;
	proto_url_shown("ws://h", out, sizeof out);
	assert_string_equal(out, "ws://h");
	proto_url_shown("ws://\x7f\n\xff", out, sizeof out);
	assert_string_equal(out, "ws://???");
	proto_url_shown("ws://12345678", out, sizeof out);
	assert_string_equal(out, "ws://123...");
	memset(url, 'a', sizeof url - 1);
	url[sizeof url - 1] = '\0';
	proto_url_shown(url, out, sizeof out);
	assert_int_equal(strlen(out), sizeof out - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_urls),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_why),
		cmocka_unit_test(test_shown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
