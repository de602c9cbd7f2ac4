/*
 * Unit tests for proto_ctrl: every example in docs/protocol.md parses in
 * the direction the document gives it and in no other, every required
 * field is enforced by name, and built messages parse back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_ctrl.h"
#include "protocol/proto_error.h"

#define H2R PROTO_DIR_HOST_TO_RELAY
#define V2R PROTO_DIR_VIEWER_TO_RELAY
#define R2H PROTO_DIR_RELAY_TO_HOST
#define R2V PROTO_DIR_RELAY_TO_VIEWER
#define ALL_DIRS (H2R | V2R | R2H | R2V)

struct example {
	unsigned dirs; /* the directions the document sends it in */
	enum proto_msg type;
	const char *json;
};

/* Every example of docs/protocol.md, with the directions it names. */
static const struct example examples[] = {
	{H2R, PROTO_MSG_HELLO, "{\"type\":\"hello\",\"os\":\"windows\","
	 "\"image\":\"system\",\"asp_version\":\"1.1.0\",\"desktop\":\"desk-42\","
	 "\"name\":\"Dana's desktop\",\"token\":\"t\"}"},
	{R2H, PROTO_MSG_WELCOME, "{\"type\":\"welcome\",\"session\":\"desk-42\","
	 "\"owner_key\":\"9f2c\",\"max_message\":4194304}"},
	{H2R | V2R, PROTO_MSG_SHARE, "{\"type\":\"share\"}"},
	{H2R | V2R, PROTO_MSG_DISCARD, "{\"type\":\"discard\"}"},
	{H2R | V2R, PROTO_MSG_END, "{\"type\":\"end\"}"},
	{H2R | V2R, PROTO_MSG_CONTROL, "{\"type\":\"control\",\"guest\":true}"},
	{H2R | V2R, PROTO_MSG_METRICS,
	 "{\"type\":\"metrics\",\"interval_ms\":1000}"},
	{H2R | V2R, PROTO_MSG_METRICS, "{\"type\":\"metrics\"}"},
	{ALL_DIRS, PROTO_MSG_ECHO, "{\"type\":\"echo\",\"t\":123}"},
	{H2R | V2R, PROTO_MSG_ASSIST_REQUEST, "{\"type\":\"assist_request\"}"},
	{H2R | V2R, PROTO_MSG_ASSIST_ACCEPT, "{\"type\":\"assist_accept\",\"id\":\"a1\"}"},
	{H2R | V2R, PROTO_MSG_ASSIST_DECLINE,
	 "{\"type\":\"assist_decline\",\"id\":\"a1\"}"},
	{H2R | V2R, PROTO_MSG_ASSIST_END, "{\"type\":\"assist_end\"}"},
	{R2H | R2V, PROTO_MSG_CODE, "{\"type\":\"code\",\"code\":\"K7M4-Q2XW-9PDH\"}"},
	{R2H | R2V, PROTO_MSG_NOTIFY, "{\"type\":\"notify\",\"event\":"
	 "\"collab_joined\",\"message\":\"Joined Shared Collaboration\","
	 "\"name\":\"Alice\"}"},
	{R2H, PROTO_MSG_KEYFRAME, "{\"type\":\"keyframe\",\"reason\":\"join\"}"},
	{R2H | R2V, PROTO_MSG_ASSIST_INVITE,
	 "{\"type\":\"assist_invite\",\"id\":\"a1\",\"admin\":\"root\"}"},
	{V2R, PROTO_MSG_HELLO, "{\"type\":\"hello\",\"client\":\"web\","
	 "\"client_version\":\"1.0\",\"name\":\"Alice\",\"token\":\"t\"}"},
	{V2R, PROTO_MSG_HELLO,
	 "{\"type\":\"hello\",\"client\":\"web\",\"client_version\":\"\"}"},
	{R2V, PROTO_MSG_WELCOME, "{\"type\":\"welcome\"}"},
	{V2R, PROTO_MSG_JOIN, "{\"type\":\"join\",\"code\":\"k7m4q2xw9pdh\"}"},
	{V2R, PROTO_MSG_JOIN, "{\"type\":\"join\",\"owner_key\":\"9f2c\"}"},
	{V2R, PROTO_MSG_JOIN, "{\"type\":\"join\",\"assist\":\"a1\"}"},
	{R2V, PROTO_MSG_JOINED, "{\"type\":\"joined\",\"role\":\"guest\","
	 "\"session\":\"desk-42\",\"name\":\"Dana's desktop\",\"control\":false}"},
	{V2R, PROTO_MSG_LEAVE, "{\"type\":\"leave\"}"},
	{V2R, PROTO_MSG_KEYFRAME, "{\"type\":\"keyframe\"}"},
	{R2V, PROTO_MSG_STREAM, "{\"type\":\"stream\",\"video\":{\"codec\":"
	 "\"h264\",\"codec_string\":\"avc1.42c01f\",\"width\":1280,"
	 "\"height\":720},\"audio\":{\"codec\":\"opus\",\"sample_rate\":48000,"
	 "\"channels\":2}}"},
	{R2H | R2V, PROTO_MSG_METRICS, "{\"type\":\"metrics\",\"session\":"
	 "\"desk-42\",\"streams\":[{\"kind\":\"video\",\"stream\":0,\"codec\":"
	 "\"h264\",\"fps\":30.0,\"bytes_per_s\":512000,\"width\":1280,"
	 "\"height\":720}],\"dropped\":0,\"queued_bytes\":0,\"rtt_ms\":0.21,"
	 "\"latency_ms\":1.3,\"copied_bytes\":1048576,"
	 "\"forwarded_bytes\":2097152}"},
	{R2H | R2V, PROTO_MSG_ERROR, "{\"type\":\"error\",\"code\":\"busy\","
	 "\"message\":\"" PROTO_BUSY_MESSAGE "\"}"},
};

static const enum proto_dir all_dirs[] = {H2R, V2R, R2H, R2V};

static void expect_ok(const char *json, enum proto_dir dir,
		      struct proto_ctrl *m)
{
	char why[256] = "";
	int rc = proto_ctrl_parse(json, strlen(json), dir, m, why, sizeof why);

	if (rc != 0)
		fail_msg("dir %d: %s\n  refused (rc %d): %s", dir, json, rc, why);
}

static void expect_err(const char *json, size_t len, enum proto_dir dir,
		       int want_rc, const char *want_why)
{
	char why[256] = "";
	struct proto_ctrl m = {0};
	int rc = proto_ctrl_parse(json, len, dir, &m, why, sizeof why);

	if (rc == 0)
		proto_ctrl_release(&m);
	if (rc != want_rc || !strstr(why, want_why))
		fail_msg("dir %d: %.200s\n  got  rc %d \"%s\"\n  want rc %d "
			 "\"%s\"", dir, json, rc, why, want_rc, want_why);
	assert_null(m.root);
}

static void expect_malformed(const char *json, enum proto_dir dir,
			     const char *want_why)
{
	expect_err(json, strlen(json), dir, -PROTO_E_MALFORMED, want_why);
}

static void test_doc_examples_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
		for (size_t d = 0; d < 4; d++) {
			struct proto_ctrl m;

			if (!(examples[i].dirs & all_dirs[d]))
				continue;
			expect_ok(examples[i].json, all_dirs[d], &m);
			assert_int_equal(m.type, examples[i].type);
			proto_ctrl_release(&m);
			assert_null(m.root);
		}
	}
}

static void test_doc_examples_wrong_direction(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
		for (size_t d = 0; d < 4; d++) {
			const char *json = examples[i].json;

			if (examples[i].dirs & all_dirs[d])
				continue;
			/* welcome, keyframe and metrics have twins in other
			 * directions whose fields are all optional, and
			 * unknown fields are ignored; the rest must be
			 * refused as not sent that way. */
			char why[256] = "";
			struct proto_ctrl m = {0};
			int rc = proto_ctrl_parse(json, strlen(json),
						  all_dirs[d], &m, why,
						  sizeof why);
			if (rc == 0) {
				proto_ctrl_release(&m);
				if (examples[i].type == PROTO_MSG_WELCOME ||
				    examples[i].type == PROTO_MSG_KEYFRAME ||
				    examples[i].type == PROTO_MSG_METRICS)
					continue;
				fail_msg("dir %d accepted %s", all_dirs[d], json);
			}
			assert_int_equal(rc, -PROTO_E_MALFORMED);
		}
	}
	expect_malformed("{\"type\":\"share\"}", R2V,
			 "\"share\" is not a message sent from the relay to "
			 "a viewer");
	expect_malformed("{\"type\":\"joined\",\"role\":\"guest\","
			 "\"session\":\"s\"}", R2H,
			 "\"joined\" is not a message sent from the relay to "
			 "a host");
	expect_malformed("{\"type\":\"code\",\"code\":\"x\"}", H2R,
			 "\"code\" is not a message sent from a host");
	expect_malformed("{\"type\":\"leave\"}", R2V,
			 "\"leave\" is not a message sent from the relay to a "
			 "viewer");
	expect_malformed("{\"type\":\"share\"}", (enum proto_dir)0,
			 "no message to parse");
	expect_malformed("{\"type\":\"share\"}", (enum proto_dir)(H2R | V2R),
			 "no message to parse");
}

static void test_required_fields_named(void **state)
{
	(void)state;
	expect_malformed("{\"type\":\"hello\",\"os\":\"windows\",\"image\":"
			 "\"system\",\"desktop\":\"d\"}", H2R,
			 "field \"asp_version\" is missing");
	expect_malformed("{\"type\":\"hello\",\"image\":\"system\","
			 "\"asp_version\":\"1.1\",\"desktop\":\"d\"}", H2R,
			 "field \"os\" is missing");
	expect_malformed("{\"type\":\"hello\",\"os\":\"windows\",\"image\":"
			 "\"system\",\"asp_version\":\"1.1\"}", H2R,
			 "field \"desktop\" is missing");
	expect_malformed("{\"type\":\"hello\",\"os\":\"windows\",\"image\":"
			 "\"system\",\"asp_version\":1.1,\"desktop\":\"d\"}",
			 H2R, "field \"asp_version\" must be a string");
	expect_malformed("{\"type\":\"hello\",\"client\":\"web\"}", V2R,
			 "field \"client_version\" is missing");
	expect_malformed("{\"type\":\"hello\",\"client_version\":\"6.2\"}", V2R,
			 "field \"client\" is missing");
	expect_malformed("{\"type\":\"hello\",\"client\":\"web\","
			 "\"client_version\":\"1\",\"name\":7}", V2R,
			 "field \"name\" must be a string");
	expect_malformed("{\"type\":\"control\"}", H2R,
			 "field \"guest\" is missing");
	expect_malformed("{\"type\":\"control\",\"guest\":\"true\"}", H2R,
			 "field \"guest\" must be a boolean");
	expect_malformed("{\"type\":\"control\",\"guest\":1}", H2R,
			 "field \"guest\" must be a boolean");
	expect_malformed("{\"type\":\"echo\"}", V2R, "field \"t\" is missing");
	expect_malformed("{\"type\":\"echo\",\"t\":1.5}", H2R,
			 "field \"t\" must be an integer");
	expect_malformed("{\"type\":\"echo\",\"t\":\"1\"}", R2V,
			 "field \"t\" must be an integer");
	expect_malformed("{\"type\":\"metrics\",\"interval_ms\":\"1000\"}", V2R,
			 "field \"interval_ms\" must be an integer");
	expect_malformed("{\"type\":\"metrics\",\"interval_ms\":null}", H2R,
			 "field \"interval_ms\" must be an integer");
	expect_malformed("{\"type\":\"metrics\"}", R2V,
			 "field \"session\" is missing");
	expect_malformed("{\"type\":\"metrics\",\"session\":\"s\",\"rtt_ms\":"
			 "\"0\"}", R2H, "field \"rtt_ms\" must be a number");
	expect_malformed("{\"type\":\"metrics\",\"session\":\"s\",\"streams\":"
			 "{}}", R2H, "field \"streams\" must be an array");
	expect_malformed("{\"type\":\"notify\",\"event\":\"host_online\"}", R2V,
			 "field \"message\" is missing");
	expect_malformed("{\"type\":\"error\",\"message\":\"m\"}", R2H,
			 "field \"code\" is missing");
	expect_malformed("{\"type\":\"error\",\"code\":\"busy\"}", R2V,
			 "field \"message\" is missing");
	expect_malformed("{\"type\":\"welcome\",\"session\":\"s\",\"owner_key\":"
			 "\"k\"}", R2H, "field \"max_message\" is missing");
	expect_malformed("{\"type\":\"code\"}", R2H, "field \"code\" is missing");
	expect_malformed("{\"type\":\"assist_accept\"}", H2R,
			 "field \"id\" is missing");
	expect_malformed("{\"type\":\"assist_invite\",\"id\":\"a\"}", R2H,
			 "field \"admin\" is missing");
	expect_malformed("{\"type\":\"joined\",\"role\":\"owner\"}", R2V,
			 "field \"session\" is missing");
	expect_malformed("{\"type\":\"joined\",\"role\":\"owner\",\"session\":"
			 "\"s\",\"control\":0}", R2V,
			 "field \"control\" must be a boolean");
	expect_malformed("{\"type\":\"stream\",\"video\":[]}", R2V,
			 "field \"video\" must be an object");
}

static void test_join_exactly_one(void **state)
{
	(void)state;
	expect_malformed("{\"type\":\"join\"}", V2R,
			 "\"join\" needs exactly one of the fields \"code\", "
			 "\"owner_key\" or \"assist\"");
	expect_malformed("{\"type\":\"join\",\"code\":\"c\",\"owner_key\":"
			 "\"k\"}", V2R, "needs exactly one");
	expect_malformed("{\"type\":\"join\",\"code\":\"c\",\"owner_key\":"
			 "\"k\",\"assist\":\"a\"}", V2R, "needs exactly one");
	expect_malformed("{\"type\":\"join\",\"code\":5}", V2R,
			 "field \"code\" must be a string");
}

/* The longest desktop id: 64 characters, every kind of symbol. */
#define DESK64 \
	"A-Za-z0-9._-" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const char *host_hello(char *json, size_t len, const char *desktop)
{
	snprintf(json, len, "{\"type\":\"hello\",\"os\":\"windows\",\"image\":"
		 "\"system\",\"asp_version\":\"1.1\",\"desktop\":\"%s\"}",
		 desktop);
	return json;
}

static void test_desktop_id(void **state)
{
	char json[256];
	struct proto_ctrl m;
	const char *bad[] = {DESK64 "a", "", "desk 42", "desk/42",
			     "d\\u00e9sk", "desk\\n"};

	(void)state;
	assert_int_equal(strlen(DESK64), 64);
	expect_ok(host_hello(json, sizeof json, DESK64), H2R, &m);
	assert_string_equal(proto_ctrl_str(&m, "desktop"), DESK64);
	proto_ctrl_release(&m);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_malformed(host_hello(json, sizeof json, bad[i]), H2R,
				 "field \"desktop\" must be 1-64 characters "
				 "from A-Z a-z 0-9 . _ -");
}

/* A JSON message with field set to a string of n 'x'. */
static char *with_string(const char *prefix, const char *field, size_t n)
{
	size_t len = strlen(prefix) + strlen(field) + n + 16;
	char *json = malloc(len);
	int off;

	assert_non_null(json);
	off = snprintf(json, len, "%s,\"%s\":\"", prefix, field);
	memset(json + off, 'x', n);
	strcpy(json + off + n, "\"}");
	return json;
}

static void expect_len_limit(const char *prefix, const char *field,
			     enum proto_dir dir, size_t max)
{
	struct proto_ctrl m;
	char *json = with_string(prefix, field, max);

	expect_ok(json, dir, &m);
	assert_int_equal(strlen(proto_ctrl_str(&m, field)), max);
	proto_ctrl_release(&m);
	free(json);
	json = with_string(prefix, field, max + 1);
	expect_malformed(json, dir, "over the");
	expect_malformed(json, dir, field);
	free(json);
}

static void test_string_limits(void **state)
{
	(void)state;
	expect_len_limit("{\"type\":\"hello\",\"client\":\"web\","
			 "\"client_version\":\"1\"", "name", V2R,
			 PROTO_CTRL_MAX_STR);
	expect_len_limit("{\"type\":\"hello\",\"client\":\"web\","
			 "\"name\":\"n\"", "client_version", V2R,
			 PROTO_CTRL_MAX_STR);
	expect_len_limit("{\"type\":\"join\"", "code", V2R, PROTO_CTRL_MAX_STR);
	expect_len_limit("{\"type\":\"assist_accept\"", "id", H2R,
			 PROTO_CTRL_MAX_STR);
	/* Tokens and sentences get more room (docs/protocol.md). */
	expect_len_limit("{\"type\":\"hello\",\"client\":\"web\","
			 "\"client_version\":\"1\"", "token", V2R, 4096);
	expect_len_limit("{\"type\":\"error\",\"code\":\"busy\"", "message",
			 R2V, 1024);
	expect_len_limit("{\"type\":\"notify\",\"event\":\"e\"", "message",
			 R2H, 1024);
}

static void test_size_limit(void **state)
{
	const char *head = "{\"type\":\"leave\",\"pad\":\"";
	size_t n = PROTO_CTRL_MAX_LEN;
	char *json = malloc(n + 2);
	struct proto_ctrl m;
	char why[128] = "";

	(void)state;
	assert_non_null(json);
	/* Exactly the limit passes (unknown fields are ignored)... */
	memset(json, 'x', n + 1);
	memcpy(json, head, strlen(head));
	memcpy(json + n - 2, "\"}", 2);
	assert_int_equal(proto_ctrl_parse(json, n, V2R, &m, why, sizeof why), 0);
	assert_int_equal(m.type, PROTO_MSG_LEAVE);
	proto_ctrl_release(&m);
	/* ...one byte more is too large, before any parsing. */
	memcpy(json + n - 1, "\"}", 2);
	expect_err(json, n + 1, V2R, -PROTO_E_TOO_LARGE,
		   "control message is 65537 bytes, over the 65536-byte limit");
	expect_err(json, SIZE_MAX, V2R, -PROTO_E_TOO_LARGE, "over the");
	free(json);
}

static void test_garbage(void **state)
{
	static const char nul_inside[] = "{\"type\":\"leave\"}\0junk";
	static const struct {
		const char *json;
		const char *why;
	} bad[] = {
		{"", "not valid JSON"},
		{"   ", "not valid JSON"},
		{"{", "not valid JSON"},
		{"{\"type\":\"leave\"} {}", "not valid JSON"},
		{"{\"type\":\"leave\",}", "not valid JSON"},
		{"\"leave\"", "not valid JSON"},
		{"[\"leave\"]", "must be a JSON object"},
		{"{}", "field \"type\" is missing"},
		{"{\"type\":null}", "field \"type\" must be a string"},
		{"{\"type\":7}", "field \"type\" must be a string"},
		{"{\"type\":\"LEAVE\"}", "unknown message type \"LEAVE\""},
		{"{\"type\":\"\"}", "unknown message type \"\""},
		{"{\"type\":\"leave\",\"type\":\"leave\"}", "duplicate"},
		{"{\"type\":\"le\\u0000ave\"}", "not valid JSON"},
		{"{\"type\":\"echo\",\"t\":99999999999999999999}",
		 "not valid JSON"},
		{"{\"type\":\"hello\",\"client\":\"\xff\",\"client_version\":"
		 "\"1\"}", "not valid JSON"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_malformed(bad[i].json, V2R, bad[i].why);
	expect_err(nul_inside, sizeof nul_inside - 1, V2R, -PROTO_E_MALFORMED,
		   "not valid JSON");
	expect_err(NULL, 0, V2R, -PROTO_E_MALFORMED, "no message to parse");
	expect_err("{\"type\":\"leave\"}", 0, V2R, -PROTO_E_MALFORMED,
		   "not valid JSON");
}

static void test_not_nul_terminated(void **state)
{
	const char buf[] = "{\"type\":\"echo\",\"t\":42}GARBAGE";
	char why[128] = "";
	struct proto_ctrl m;

	(void)state;
	assert_int_equal(proto_ctrl_parse(buf, strlen(buf) - 7, R2H, &m, why,
					  sizeof why), 0);
	assert_int_equal(proto_ctrl_int(&m, "t", -1), 42);
	proto_ctrl_release(&m);
}

static void test_accessors(void **state)
{
	struct proto_ctrl m;

	(void)state;
	expect_ok("{\"type\":\"hello\",\"client\":\"macos\",\"client_version\":"
		  "\"6.2\",\"extra\":{\"x\":1},\"n\":5,\"b\":true}", V2R, &m);
	assert_int_equal(m.type, PROTO_MSG_HELLO);
	assert_string_equal(proto_ctrl_str(&m, "client"), "macos");
	assert_string_equal(proto_ctrl_str(&m, "client_version"), "6.2");
	assert_null(proto_ctrl_str(&m, "name"));
	assert_null(proto_ctrl_str(&m, "n"));
	assert_int_equal(proto_ctrl_int(&m, "n", -1), 5);
	assert_int_equal(proto_ctrl_int(&m, "client", -1), -1);
	assert_int_equal(proto_ctrl_int(&m, "missing", 77), 77);
	assert_true(proto_ctrl_bool(&m, "b", false));
	assert_false(proto_ctrl_bool(&m, "n", false));
	assert_true(proto_ctrl_bool(&m, "missing", true));
	assert_true(proto_ctrl_has(&m, "extra"));
	assert_false(proto_ctrl_has(&m, "token"));
	assert_null(proto_ctrl_str(&m, NULL));
	proto_ctrl_release(&m);
	/* After release, and on NULL, accessors give the defaults. */
	assert_null(proto_ctrl_str(&m, "client"));
	assert_int_equal(proto_ctrl_int(NULL, "t", 9), 9);
	assert_false(proto_ctrl_bool(NULL, "guest", false));
	assert_false(proto_ctrl_has(NULL, "type"));
	proto_ctrl_release(&m);
	proto_ctrl_release(NULL);
}

static void test_int_extremes(void **state)
{
	struct proto_ctrl m;

	(void)state;
	expect_ok("{\"type\":\"echo\",\"t\":9223372036854775807}", H2R, &m);
	assert_true(proto_ctrl_int(&m, "t", 0) == INT64_MAX);
	proto_ctrl_release(&m);
	expect_ok("{\"type\":\"echo\",\"t\":-9223372036854775808}", H2R, &m);
	assert_true(proto_ctrl_int(&m, "t", 0) == INT64_MIN);
	proto_ctrl_release(&m);
}

static void test_msg_names(void **state)
{
	(void)state;
	assert_string_equal(proto_msg_name(PROTO_MSG_HELLO), "hello");
	assert_string_equal(proto_msg_name(PROTO_MSG_ASSIST_END), "assist_end");
	assert_null(proto_msg_name(PROTO_MSG__COUNT));
	assert_null(proto_msg_name((enum proto_msg)-1));
	for (int i = 0; i < PROTO_MSG__COUNT; i++)
		assert_non_null(proto_msg_name((enum proto_msg)i));
}

static void test_build(void **state)
{
	char *s;
	struct proto_ctrl m;

	(void)state;
	s = proto_ctrl_build(PROTO_MSG_SHARE, NULL);
	assert_string_equal(s, "{\"type\":\"share\"}");
	free(s);
	s = proto_ctrl_build(PROTO_MSG_WELCOME, "{s:s, s:s, s:i}", "session",
			     "desk-42", "owner_key", "9f2c", "max_message",
			     4194304);
	assert_string_equal(s, "{\"type\":\"welcome\",\"session\":\"desk-42\","
			    "\"owner_key\":\"9f2c\",\"max_message\":4194304}");
	expect_ok(s, R2H, &m);
	assert_int_equal(proto_ctrl_int(&m, "max_message", 0), 4194304);
	proto_ctrl_release(&m);
	free(s);
	s = proto_ctrl_build(PROTO_MSG_CONTROL, "{s:b}", "guest", 1);
	assert_string_equal(s, "{\"type\":\"control\",\"guest\":true}");
	free(s);
	s = proto_ctrl_build(PROTO_MSG_NOTIFY, "{s:s, s:s, s:s*}", "event",
			     "host_online", "message", "The desktop is back.",
			     "name", NULL);
	assert_string_equal(s, "{\"type\":\"notify\",\"event\":\"host_online\","
			    "\"message\":\"The desktop is back.\"}");
	free(s);
	/* Bad format, a non-object, a NULL string, a "type" override and
	 * an out-of-range type all fail cleanly. */
	assert_null(proto_ctrl_build(PROTO_MSG_ECHO, "{s:i", "t", 1));
	assert_null(proto_ctrl_build(PROTO_MSG_ECHO, "[i]", 1));
	assert_null(proto_ctrl_build(PROTO_MSG_ECHO, "{s:s}", "x", NULL));
	assert_null(proto_ctrl_build(PROTO_MSG_ECHO, "{s:s}", "type", "x"));
	assert_null(proto_ctrl_build(PROTO_MSG__COUNT, NULL));
}

static void test_error_messages(void **state)
{
	char *s;
	struct proto_ctrl m;

	(void)state;
	s = proto_ctrl_error(-PROTO_E_BUSY, NULL);
	assert_string_equal(s, "{\"type\":\"error\",\"code\":\"busy\","
			    "\"message\":\"" PROTO_BUSY_MESSAGE "\"}");
	free(s);
	s = proto_ctrl_error(PROTO_E_BAD_VERSION,
			     "ASP version 1.0.9 is not supported: the host "
			     "needs ASP 1.1.0 or later.");
	expect_ok(s, R2H, &m);
	assert_string_equal(proto_ctrl_str(&m, "code"), "bad_version");
	assert_string_equal(proto_ctrl_str(&m, "message"),
			    "ASP version 1.0.9 is not supported: the host "
			    "needs ASP 1.1.0 or later.");
	proto_ctrl_release(&m);
	free(s);
	/* Quotes and control characters are escaped, not spliced. */
	s = proto_ctrl_error(-PROTO_E_MALFORMED, "field \"x\"\n");
	assert_string_equal(s, "{\"type\":\"error\",\"code\":\"malformed\","
			    "\"message\":\"field \\\"x\\\"\\n\"}");
	free(s);
	/* Invalid UTF-8 falls back to the table's sentence. */
	s = proto_ctrl_error(-PROTO_E_MALFORMED, "bad \xff");
	assert_string_equal(s, "{\"type\":\"error\",\"code\":\"malformed\","
			    "\"message\":\"The message could not be "
			    "understood.\"}");
	free(s);
	s = proto_ctrl_error(12345, NULL);
	assert_non_null(strstr(s, "\"code\":\"internal\""));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_examples_parse),
		cmocka_unit_test(test_doc_examples_wrong_direction),
		cmocka_unit_test(test_required_fields_named),
		cmocka_unit_test(test_join_exactly_one),
		cmocka_unit_test(test_desktop_id),
		cmocka_unit_test(test_string_limits),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_int_extremes),
		cmocka_unit_test(test_msg_names),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_error_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
