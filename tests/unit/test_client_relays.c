/*
 * Unit tests for the client tools' relay list (tools/common/client_relays):
 * which URLs --relay and a redirect may name, how a list is split, and
 * which errors send a client elsewhere: a redirect is kept to follow, a
 * 5th one in a row is a loop, a bad redirect URL is a verdict and not a
 * crash, unavailable always and the rejoin codes only after a session.
 * What happens on the wire is tests/e2e/clients-failover.test.mjs's.
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
#include "tools/common/client_relays.h"

static int check(const char *url, bool redirect)
{
	char why[300];

	return client_relays_check_url(url, redirect, why, sizeof(why));
}

static void test_relay_urls(void **state)
{
	static const char *const good[] = {
		"ws://127.0.0.1:8080", "wss://relay.example", "ws://[::1]:9",
		"ws://a.b-c_d:1/", "ws://h:65535/prefix/x.y~z%20",
		"http://127.0.0.1:8080", "https://h:443",
	};
	static const char *const bad[] = {
		"", "ftp://h", "ws://", "ws://:80", "ws://h:0", "ws://h:65536",
		"ws://h:123456", "ws://h:x", "ws://u@h:1", "ws://h:1?x",
		"ws://h:1#f", "ws://h:1/a b", "ws://h:1/a,b", "ws://[]:1",
		"ws://[::1", "ws://h\n:1", "WS://h", "ws//h",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(check(good[i], false), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(check(bad[i], false), -EINVAL);
}

static void test_redirect_urls(void **state)
{
	char long_url[CLIENT_URL_MAX + 8];
	char why[300];

	(void)state;
	assert_int_equal(check("ws://10.0.0.2:8080", true), 0);
	assert_int_equal(check("wss://node-2.example:8443/", true), 0);
	/* A redirect names a node: no path, and never plain HTTP. */
	assert_int_equal(check("ws://10.0.0.2:8080/host", true), -EINVAL);
	assert_int_equal(check("http://10.0.0.2:8080", true), -EINVAL);
	assert_int_equal(check("javascript:alert(1)", true), -EINVAL);
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, "ws://", 5);
	assert_int_equal(client_relays_check_url(long_url, true, why,
						 sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "longer than 255 bytes"));
	/* What the message quotes is printable and bounded. */
	assert_int_equal(client_relays_check_url("ws://h\x1b[2J:1", true, why,
						 sizeof(why)), -EINVAL);
	assert_null(strchr(why, '\x1b'));
	assert_true(strlen(why) < 200);
}

static void test_list_split(void **state)
{
	struct client_relays r;
	char why[300], many[CLIENT_RELAYS_MAX * 24 + 32] = "";
	int i;

	(void)state;
	assert_int_equal(client_relays_init(&r, "ws://a:1,wss://b:2/p,ws://c",
					    true, why, sizeof(why)), 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.list[1], "wss://b:2/p");
	assert_string_equal(r.target, "ws://a:1");
	assert_true(r.reconnect);
	assert_int_equal(client_relays_init(&r, "ws://a:1,", true, why,
					    sizeof(why)), -EINVAL);
	assert_string_equal(why, "a relay URL is empty");
	assert_int_equal(client_relays_init(&r, "ws://a:1,ws://b:0", true,
					    why, sizeof(why)), -EINVAL);
	for (i = 0; i <= CLIENT_RELAYS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "%sws://h%d:1", i ? "," : "", i);
	assert_int_equal(client_relays_init(&r, many, true, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "more than 16 relays"));
}

/* on_error with the error message json, answering the hello or join
 * (before_session) or not. */
static bool on_error(struct client_relays *r, struct client_refusal *ref,
		     const char *json, bool before_session)
{
	struct proto_ctrl m;
	char why[256];
	bool sent;

	assert_int_equal(proto_ctrl_parse(json, strlen(json),
					  PROTO_DIR_RELAY_TO_VIEWER, &m, why,
					  sizeof(why)), 0);
	sent = client_relays_on_error(r, &m, ref, before_session);
	proto_ctrl_release(&m);
	return sent;
}

#define REDIRECT(url) \
	"{\"type\":\"error\",\"code\":\"redirect\",\"message\":\"m\"," \
	"\"url\":\"" url "\"}"

static void test_redirect_kept_and_loop(void **state)
{
	struct client_relays r;
	struct client_refusal ref = { 0 };
	char why[300];

	(void)state;
	assert_int_equal(client_relays_init(&r, "ws://a:1", true, why,
					    sizeof(why)), 0);
	assert_true(on_error(&r, &ref, REDIRECT("ws://n2:8080"), true));
	assert_string_equal(r.redirect, "ws://n2:8080");
	assert_string_equal(ref.code, "redirect");
	assert_false(ref.fatal);
	assert_string_equal(r.why, "");
	/* Four followed in a row: the fifth is a loop, not followed. */
	r.redirect[0] = '\0';
	r.hops = CLIENT_REDIRECT_HOPS;
	assert_true(on_error(&r, &ref, REDIRECT("ws://n3:8080"), true));
	assert_string_equal(r.redirect, "");
	assert_non_null(strstr(r.why, "redirect loop: 5 redirects"));
	assert_non_null(strstr(r.why, "ws://n3:8080"));
	/* A session resets the count. */
	client_relays_session(&r);
	r.why[0] = '\0';
	assert_int_equal(r.hops, 0);
	assert_true(on_error(&r, &ref, REDIRECT("ws://n3:8080"), false));
	assert_string_equal(r.redirect, "ws://n3:8080");
}

static void test_bad_redirect_is_a_verdict(void **state)
{
	struct client_relays r;
	struct client_refusal ref = { 0 };
	char why[300], url[300], json[400];

	(void)state;
	assert_int_equal(client_relays_init(&r, "ws://a:1", true, why,
					    sizeof(why)), 0);
	assert_true(on_error(&r, &ref, REDIRECT("ws://n2:8080/evil"), true));
	assert_string_equal(r.redirect, "");
	assert_non_null(strstr(r.why, "redirect is not valid"));
	r.why[0] = '\0';
	assert_true(on_error(&r, &ref, "{\"type\":\"error\",\"code\":"
			     "\"redirect\",\"message\":\"m\"}", true));
	assert_string_equal(r.why, "the relay's redirect names no URL");
	/* The protocol lets a url through up to 1024 bytes; we take 255. */
	r.why[0] = '\0';
	memset(url, 'a', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	memcpy(url, "ws://", 5);
	snprintf(json, sizeof(json), "{\"type\":\"error\",\"code\":"
		 "\"redirect\",\"message\":\"m\",\"url\":\"%s\"}", url);
	assert_true(on_error(&r, &ref, json, true));
	assert_string_equal(r.redirect, "");
	assert_non_null(strstr(r.why, "longer than 255 bytes"));
}

static void test_which_refusals_send_elsewhere(void **state)
{
	static const char *const rejoin[] = {
		"offline", "slow", "internal", "hello_timeout",
	};
	static const char *const final[] = {
		"busy", "bad_code", "discarded", "ended", "no_permission",
		"replaced", "unauthorized", "token_expired", "rate_limited",
		"too_many", "expired", "bad_version",
	};
	struct client_relays r;
	struct client_refusal ref = { 0 };
	char why[300], json[200];
	size_t i;

	(void)state;
	assert_int_equal(client_relays_init(&r, "ws://a:1", true, why,
					    sizeof(why)), 0);
	assert_true(on_error(&r, &ref, "{\"type\":\"error\",\"code\":"
			     "\"unavailable\",\"message\":\"m\"}", false));
	assert_string_equal(ref.code, "unavailable");
	assert_false(ref.fatal);
	for (i = 0; i < sizeof(rejoin) / sizeof(rejoin[0]); i++) {
		snprintf(json, sizeof(json), "{\"type\":\"error\",\"code\":"
			 "\"%s\",\"message\":\"m\"}", rejoin[i]);
		/* The first join: final, as on one relay. */
		r.had_session = false;
		assert_false(on_error(&r, &ref, json, true));
		/* A rejoin: worth another attempt. */
		r.had_session = true;
		assert_true(on_error(&r, &ref, json, true));
		/* During a session it refuses one message (an owner's
		 * share while the host is away): the tool's to show. */
		assert_false(on_error(&r, &ref, json, false));
	}
	for (i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
		snprintf(json, sizeof(json), "{\"type\":\"error\",\"code\":"
			 "\"%s\",\"message\":\"m\"}", final[i]);
		assert_false(on_error(&r, &ref, json, true));
	}
}

static void test_exit_status(void **state)
{
	struct client_relays r;
	struct client_refusal ref = { 0 };
	struct client_close_info ci = {
		.established = true, .we_closed = true,
	};
	char why[300];

	(void)state;
	assert_int_equal(client_relays_init(&r, "ws://a:1", true, why,
					    sizeof(why)), 0);
	assert_int_equal(client_relays_exit_status(&r, &ci, &ref, true),
			 CLIENT_EXIT_OK);
	/* Our own verdict ends it: a connection that never got anywhere. */
	snprintf(r.why, sizeof(r.why), "redirect loop: ...");
	assert_int_equal(client_relays_exit_status(&r, &ci, &ref, false),
			 CLIENT_EXIT_CONNECT);
	/* Told to leave while waiting for the relay to come back. */
	r.why[0] = '\0';
	r.lost = true;
	ci = (struct client_close_info){ .we_closed = true };
	assert_int_equal(client_relays_exit_status(&r, &ci, &ref, true),
			 CLIENT_EXIT_OK);
	/* Told to leave between a redirect and the attempt it leads to. */
	r.lost = false;
	ci = (struct client_close_info){ .established = true,
					 .we_closed = true, .peer_code = 4024 };
	snprintf(ci.peer_reason, sizeof(ci.peer_reason), "redirect");
	assert_int_equal(client_relays_exit_status(&r, &ci, &ref, true),
			 CLIENT_EXIT_OK);
	assert_int_equal(client_relays_exit_status(&r, &ci, &ref, false),
			 CLIENT_EXIT_REFUSED);
	r.lost = true;
	/* ... but a final refusal of the rejoin is still a refusal. */
	ci = (struct client_close_info){ .established = true,
					 .peer_code = 4004 };
	snprintf(ci.peer_reason, sizeof(ci.peer_reason), "busy");
	snprintf(ref.code, sizeof(ref.code), "busy");
	ref.fatal = true;
	assert_int_equal(client_relays_exit_status(&r, &ci, &ref, true),
			 CLIENT_EXIT_REFUSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_urls),
		cmocka_unit_test(test_redirect_urls),
		cmocka_unit_test(test_list_split),
		cmocka_unit_test(test_redirect_kept_and_loop),
		cmocka_unit_test(test_bad_redirect_is_a_verdict),
		cmocka_unit_test(test_which_refusals_send_elsewhere),
		cmocka_unit_test(test_exit_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
