/*
 * Unit tests for the relay's bottom modules an operator meets first:
 * relay_config (flags and the --config file: defaults, overrides, every
 * refusal naming its file and line, reloading from the same argv),
 * relay_hist (bucket edges of the power-of-two histograms /metrics
 * prints) and relay_log's JSON format (each line parses, same fields).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "relay/relay_config.h"
#include "relay/relay_hist.h"
#include "relay/relay_log.h"

static char conf_path[64];

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(conf_path, sizeof conf_path, "/tmp/asp-config-XXXXXX");
	fd = mkstemp(conf_path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	return 0;
}

static void write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loads argv (NULL-terminated, argv[0] added); the result code. */
static int load(struct relay_config *cfg, char *why, size_t len, ...)
{
	static char *argv[16];
	va_list ap;
	int argc = 0;

	argv[argc++] = "asp-relay";
	va_start(ap, len);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	why[0] = '\0';
	return relay_config_load(cfg, argc, argv, why, len);
}

static void test_defaults(void **state)
{
	struct relay_config cfg;
	char why[256];

	(void)state;
	assert_int_equal(load(&cfg, why, sizeof why, NULL), RELAY_CONFIG_RUN);
	assert_string_equal(cfg.listen_host, "127.0.0.1");
	assert_int_equal(cfg.listen_port, 8080);
	assert_string_equal(cfg.data_dir, "var");
	assert_non_null(cfg.web_dir);
	assert_null(cfg.tls_cert);
	assert_int_equal(cfg.max_message, 4u << 20);
	assert_int_equal(cfg.queue_msgs, 1024);
	assert_int_equal(cfg.stall_secs, 30);
	assert_false(cfg.log_json);
	assert_false(cfg.test_clock);
	relay_config_free(&cfg);
}

static void test_file_then_flags(void **state)
{
	struct relay_config cfg;
	char why[256];

	(void)state;
	write_conf("# comment\n; another\nlisten = 0.0.0.0:9443\n"
		   "data = /srv/asp\nqueue-msgs = 64\nqueue-bytes = 2M\n"
		   "log-format = json\ntest-clock = yes\n");
	assert_int_equal(load(&cfg, why, sizeof why, "--config", conf_path,
			      "--queue-msgs", "7", NULL),
			 RELAY_CONFIG_RUN);
	assert_string_equal(cfg.listen_host, "0.0.0.0");
	assert_int_equal(cfg.listen_port, 9443);
	assert_string_equal(cfg.data_dir, "/srv/asp");
	assert_int_equal(cfg.queue_msgs, 7); /* the flag wins */
	assert_int_equal(cfg.queue_bytes, 2u << 20);
	assert_true(cfg.log_json);
	assert_true(cfg.test_clock);
	assert_string_equal(cfg.config_path, conf_path);
	relay_config_free(&cfg);
}

static void expect_refusal(const char *text, int line, const char *what)
{
	struct relay_config cfg;
	char why[512], want[128];

	write_conf(text);
	assert_int_equal(load(&cfg, why, sizeof why, "--config", conf_path,
			      NULL),
			 RELAY_CONFIG_ERROR);
	snprintf(want, sizeof want, "%s:%d: ", conf_path, line);
	if (!strstr(why, want) || !strstr(why, what))
		fail_msg("'%s': got \"%s\", want \"%s...%s\"", text, why, want,
			 what);
}

static void test_file_refusals(void **state)
{
	(void)state;
	expect_refusal("listen = 127.0.0.1:0\n\nqueue-bytes = 12Q\n", 3,
		       "bad value for queue-bytes: '12Q'");
	expect_refusal("colour = blue\n", 1, "unknown key 'colour'");
	expect_refusal("config = /etc/other\n", 1, "unknown key 'config'");
	expect_refusal("listen = 127.0.0.1:0\njust words\n", 2,
		       "want KEY = VALUE");
	expect_refusal("[server]\nlisten = 127.0.0.1:0\n", 2, "[server]");
	expect_refusal("stall-timeout = 3601\n", 1, "stall-timeout");
	expect_refusal("max-message = 16\n", 1, "max-message");
	expect_refusal("queue-msgs = -1\n", 1, "queue-msgs");
	expect_refusal("test-clock = maybe\n", 1, "test-clock");
	expect_refusal("log-format = xml\n", 1, "log-format");
	/* The first refusal is the one reported. */
	expect_refusal("a b c\nlisten = x\n", 1, "want KEY = VALUE");
	expect_refusal("gop-bytes = 0\nno equals\n", 1, "gop-bytes");
}

static void test_flag_refusals(void **state)
{
	struct relay_config cfg;
	char why[256];

	(void)state;
	assert_int_equal(load(&cfg, why, sizeof why, "--listen", "nowhere",
			      NULL),
			 RELAY_CONFIG_ERROR);
	assert_non_null(strstr(why, "--listen"));
	assert_int_equal(load(&cfg, why, sizeof why, "--bogus", NULL),
			 RELAY_CONFIG_ERROR);
	assert_non_null(strstr(why, "--bogus"));
	assert_int_equal(load(&cfg, why, sizeof why, "--tls-cert", "c.pem",
			      NULL),
			 RELAY_CONFIG_ERROR);
	assert_non_null(strstr(why, "go together"));
	assert_int_equal(load(&cfg, why, sizeof why, "--config",
			      "/nonexistent/asp.conf", NULL),
			 RELAY_CONFIG_ERROR);
	assert_non_null(strstr(why, "cannot read /nonexistent/asp.conf"));
	assert_int_equal(load(&cfg, why, sizeof why, "stray", NULL),
			 RELAY_CONFIG_ERROR);
	/* A cluster's call timeout must fit the lease's fencing margin. */
	assert_int_equal(load(&cfg, why, sizeof why, "--redis",
			      "redis://127.0.0.1:6379", "--lease-ms", "1000",
			      "--redis-timeout-ms", "251", NULL),
			 RELAY_CONFIG_ERROR);
	assert_non_null(strstr(why, "at most a quarter of lease-ms 1000"));
	assert_int_equal(load(&cfg, why, sizeof why, "--redis",
			      "redis://127.0.0.1:6379", "--lease-ms", "1000",
			      "--redis-timeout-ms", "250", NULL),
			 RELAY_CONFIG_RUN);
	assert_int_equal(cfg.lease_ms, 1000);
	relay_config_free(&cfg);
	assert_int_equal(load(&cfg, why, sizeof why, "--node-url",
			      "http://x:1", NULL),
			 RELAY_CONFIG_ERROR);
	assert_non_null(strstr(why, "--node-url"));
}

/* A reload is a second load from the same argv: it sees the file's new
 * values and still applies the flags over them. */
static void test_reload_same_argv(void **state)
{
	struct relay_config a, b;
	char why[256];

	(void)state;
	write_conf("queue-msgs = 64\nkeyframe-gap = 500\n");
	assert_int_equal(load(&a, why, sizeof why, "--config", conf_path,
			      "--keyframe-gap", "250", NULL),
			 RELAY_CONFIG_RUN);
	write_conf("queue-msgs = 128\nkeyframe-gap = 900\n");
	assert_int_equal(relay_config_load(&b, a.argc, a.argv, why,
					   sizeof why),
			 RELAY_CONFIG_RUN);
	assert_int_equal(a.queue_msgs, 64);
	assert_int_equal(b.queue_msgs, 128);
	assert_int_equal(b.keyframe_gap_ms, 250);
	relay_config_free(&a);
	relay_config_free(&b);
}

static void test_hist_buckets(void **state)
{
	struct relay_hist h;

	(void)state;
	relay_hist_init(&h, 4, 3, 1); /* bounds 16, 32, 64, then +Inf */
	relay_hist_add(&h, 0);
	relay_hist_add(&h, 16);
	relay_hist_add(&h, 17);
	relay_hist_add(&h, 32);
	relay_hist_add(&h, 33);
	relay_hist_add(&h, 64);
	relay_hist_add(&h, 65);
	relay_hist_add(&h, UINT64_MAX / 2);
	assert_int_equal(h.b[0], 2);
	assert_int_equal(h.b[1], 2);
	assert_int_equal(h.b[2], 2);
	assert_int_equal(h.b[3], 2); /* beyond the last bound */
	assert_int_equal(h.count, 8);
	assert_int_equal(relay_hist_cumulative(&h, 0), 2);
	assert_int_equal(relay_hist_cumulative(&h, 2), 6);
	assert_true(relay_hist_bound(&h, 0) == 16.0);
	assert_true(relay_hist_bound(&h, 2) == 64.0);
	relay_hist_init(&h, 0, 2, 1e-6);
	relay_hist_add(&h, 1);
	relay_hist_add(&h, 2);
	assert_int_equal(h.b[0], 1);
	assert_int_equal(h.b[1], 1);
	assert_true(relay_hist_bound(&h, 1) == 2e-6);
}

/* Runs relay_log with stderr sent to a file; the line it wrote. */
static void log_line(char *out, size_t len, const char *event,
		     const char *detail)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	relay_log(event, "%s", detail);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	if (!fgets(out, (int)len, tmp))
		out[0] = '\0';
	fclose(tmp);
}

static void test_log_json(void **state)
{
	char line[16384], big[3000];
	json_error_t err;
	json_t *o;

	(void)state;
	relay_log_set_json(true);
	log_line(line, sizeof line, "reload-error",
		 "kept=all why=/etc/a.conf:3: bad value \"x\\y\"\t");
	o = json_loads(line, 0, &err);
	if (!o)
		fail_msg("not JSON (%s): %s", err.text, line);
	assert_string_equal(json_string_value(json_object_get(o, "event")),
			    "reload-error");
	assert_string_equal(json_string_value(json_object_get(o, "kept")),
			    "all");
	assert_string_equal(json_string_value(json_object_get(o, "why")),
			    "/etc/a.conf:3: bad value \"x\\y\"\t");
	assert_non_null(json_string_value(json_object_get(o, "time")));
	json_decref(o);

	log_line(line, sizeof line, "store-error", "disk full desktop=d1");
	o = json_loads(line, 0, &err);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
			    "disk full");
	assert_string_equal(json_string_value(json_object_get(o, "desktop")),
			    "d1");
	json_decref(o);

	/* Cut, never broken: an over-long detail is still one object. */
	memset(big, '\x01', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_line(line, sizeof line, "x", big);
	o = json_loads(line, 0, &err);
	if (!o)
		fail_msg("long line not JSON (%s)", err.text);
	json_decref(o);

	relay_log_set_json(false);
	log_line(line, sizeof line, "owner-join", "desktop=d1");
	assert_non_null(strstr(line, " owner-join desktop=d1\n"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_file_then_flags),
		T(test_file_refusals),
		T(test_flag_refusals),
		T(test_reload_same_argv),
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_log_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
