/*
 * asp-relay: the streaming relay server.
 *
 * Parses the command line, opens the data directory, creates the event
 * loop (relay_loop) and the lws context on it (relay_server), and runs
 * until SIGINT or SIGTERM.  Shutdown closes every WebSocket with 1001
 * (going away), waits briefly for the close frames to go out, and frees
 * everything, so a sanitizer run ends with no leak.  This file only wires
 * modules together; nothing calls into it.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/crypto.h>

#include "relay/relay.h"
#include "relay/relay_alloc.h"
#include "relay/relay_assist.h"
#include "relay/relay_conn.h"
#include "relay/relay_loop.h"
#include "relay/relay_retain.h"
#include "relay/relay_server.h"
#include "relay/relay_session.h"

#ifndef ASP_WEB_DIR
#define ASP_WEB_DIR "relay/www"
#endif

#define RELAY_TICK_US (1000 * 1000)
#define RELAY_SHUTDOWN_US (5 * 1000 * 1000)
#define RELAY_STOP_POLL_US (20 * 1000)

static void relay_usage(FILE *to)
{
	fprintf(to,
"usage: asp-relay [options]\n"
"\n"
"Relays a cloud desktop's media to its owner's viewer and one guest.\n"
"\n"
"  --listen HOST:PORT   where to listen (default 127.0.0.1:8080; port 0 picks\n"
"                       a free port, printed in the 'listening on' line)\n"
"  --data DIR           data directory, created if missing (default ./var)\n"
"  --tls-cert FILE      PEM certificate: serve wss:// and https://\n"
"  --tls-key FILE       PEM private key for --tls-cert\n"
"  --web DIR            directory of the web page (default: the source tree's\n"
"                       relay/www)\n"
"  --max-message SIZE   largest media message accepted (default 4M)\n"
"  --queue-bytes SIZE   per-viewer send queue bound (default 16M)\n"
"  --queue-msgs N       per-viewer send queue bound in messages (default 1024)\n"
"  --gop-bytes SIZE     keyframe cache bound per session (default 8M)\n"
"  --stall-timeout S    close a viewer that reads nothing for S seconds while\n"
"                       data waits for it (default 30)\n"
"  --keyframe-gap MS    least time between keyframe requests to a host\n"
"                       (default 1000)\n"
"  --retain-assist DAYS keep finished assistance requests DAYS days (default\n"
"                       30; 0 keeps them forever)\n"
"  --retain-audit DAYS  keep audit events DAYS days (default 0: forever)\n"
"  --test-clock         let administrators move the relay's clock forward\n"
"                       (PUT /api/clock): for tests of expiry, never in\n"
"                       production\n"
"  -h, --help           this text\n"
"\n"
"SIZE takes a K, M or G suffix (powers of 1024).  When ready the relay prints\n"
"'listening on ws://HOST:PORT' (or wss://) on stdout.  Logs go to stderr.\n");
}

static int relay_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end || v == 0 || v > (1ull << 31))
		return -1;
	*out = (size_t)v;
	return 0;
}

static int relay_parse_listen(const char *s, struct relay_config *cfg)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(cfg->listen_host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memcpy(cfg->listen_host, s, (size_t)(colon - s));
	cfg->listen_host[colon - s] = '\0';
	cfg->listen_port = (int)port;
	return 0;
}

/* 0 (forever) to 100 years. */
static int relay_parse_days(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 36500)
		return -1;
	*out = (int)v;
	return 0;
}

static int relay_parse_args(int argc, char **argv, struct relay_config *cfg)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, 'd' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "web", required_argument, NULL, 'w' },
		{ "max-message", required_argument, NULL, 'm' },
		{ "queue-bytes", required_argument, NULL, 'q' },
		{ "queue-msgs", required_argument, NULL, 'n' },
		{ "gop-bytes", required_argument, NULL, 'g' },
		{ "stall-timeout", required_argument, NULL, 's' },
		{ "keyframe-gap", required_argument, NULL, 'f' },
		{ "retain-assist", required_argument, NULL, 'A' },
		{ "retain-audit", required_argument, NULL, 'U' },
		{ "test-clock", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t n;
	int o, at = 0;

	while ((o = getopt_long(argc, argv, "h", opts, &at)) != -1) {
		switch (o) {
		case 'l':
			if (relay_parse_listen(optarg, cfg))
				goto bad;
			break;
		case 'd': cfg->data_dir = optarg; break;
		case 'c': cfg->tls_cert = optarg; break;
		case 'k': cfg->tls_key = optarg; break;
		case 'w': cfg->web_dir = optarg; break;
		case 'm':
			if (relay_parse_size(optarg, &cfg->max_message) ||
			    cfg->max_message < PROTO_MEDIA_HDR_LEN)
				goto bad;
			break;
		case 'q':
			if (relay_parse_size(optarg, &cfg->queue_bytes))
				goto bad;
			break;
		case 'n':
			if (relay_parse_size(optarg, &n))
				goto bad;
			cfg->queue_msgs = (uint32_t)n;
			break;
		case 'g':
			if (relay_parse_size(optarg, &cfg->gop_bytes))
				goto bad;
			break;
		case 's':
			if (relay_parse_size(optarg, &n) || n > 3600)
				goto bad;
			cfg->stall_secs = (int)n;
			break;
		case 'f':
			if (relay_parse_size(optarg, &n) || n > 60000)
				goto bad;
			cfg->keyframe_gap_ms = (uint32_t)n;
			break;
		case 'A':
			if (relay_parse_days(optarg, &cfg->retain_assist_days))
				goto bad;
			break;
		case 'U':
			if (relay_parse_days(optarg, &cfg->retain_audit_days))
				goto bad;
			break;
		case 't':
			cfg->test_clock = true;
			break;
		case 'h':
			relay_usage(stdout);
			exit(0);
		default:
			relay_usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr, "asp-relay: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "asp-relay: bad value for --%s: '%s'\n",
		opts[at].name, optarg);
	fprintf(stderr, "asp-relay: see --help\n");
	return -1;
}

/* Rates over the last window; a stream that began inside the window is
 * measured from its start, so its first rate is not diluted. */
static void relay_roll_stream(const char *key, void *val, void *arg)
{
	struct relay_session *s = val;
	const uint64_t *win = arg; /* { window start, now } */

	(void)key;
	for (int i = 0; i < RELAY_STREAMS_MAX && s->streams[i].used; i++) {
		struct relay_stream_stats *st = &s->streams[i];
		uint64_t from = st->first_us > win[0] ? st->first_us : win[0];
		double secs = win[1] > from ? (win[1] - from) / 1e6 : 1.0;

		st->fps = st->win_msgs / secs;
		st->bytes_per_s = st->win_bytes / secs;
		st->win_msgs = 0;
		st->win_bytes = 0;
	}
}

/* glibc keeps freed frames in its arenas: after a busy session ends the
 * relay held 143 MB with no session at all (9 MB after malloc_trim).  At
 * most once a second, after a session ended, give it back. */
static void relay_trim(struct relay *r)
{
	if (!r->trim_pending)
		return;
	r->trim_pending = false;
	malloc_trim(0);
}

struct relay_ticker {
	struct relay_timer timer;
	struct relay *relay;
	uint64_t last_roll_us;
};

static void relay_tick(struct relay_timer *timer)
{
	struct relay_ticker *t = (struct relay_ticker *)timer;
	struct relay *r = t->relay;
	uint64_t now = relay_now_us();
	uint64_t win[2] = { t->last_roll_us, now };

	relay_map_each(&r->by_desktop, relay_roll_stream, win);
	t->last_roll_us = now;
	relay_assist_tick(r);
	relay_retain_tick(r);
	relay_trim(r);
	relay_timer_start(&t->timer, RELAY_TICK_US);
}

/* Shutdown: every connection is sent its 1001 close; the loop ends when
 * the last one is gone or RELAY_SHUTDOWN_US has passed (a peer that does not read
 * cannot be sent its close frame), whichever comes
 * first.  A second signal ends it at once. */
struct relay_stopper {
	struct relay_timer timer;
	struct relay *relay;
	uint64_t deadline_us;
};

static void relay_stop_check(struct relay_timer *timer)
{
	struct relay_stopper *st = (struct relay_stopper *)timer;
	struct relay *r = st->relay;

	if (!r->nconns || relay_mono_us() >= st->deadline_us) {
		relay_loop_break(r->loop);
		return;
	}
	relay_timer_start(&st->timer, RELAY_STOP_POLL_US);
}

static void relay_on_signal(int signum, void *arg)
{
	struct relay_stopper *st = arg;
	struct relay *r = st->relay;

	relay_log("signal", "signal=%d", signum);
	if (r->stopping) {
		relay_loop_break(r->loop);
		return;
	}
	relay_server_begin_shutdown(r);
	st->deadline_us = relay_mono_us() + RELAY_SHUTDOWN_US;
	relay_stop_check(&st->timer);
}

static void relay_run(struct relay *r)
{
	struct relay_ticker ticker = { .relay = r,
				       .last_roll_us = relay_now_us() };
	struct relay_stopper stopper = { .relay = r };

	relay_timer_init(&ticker.timer, r->loop, relay_tick);
	relay_timer_init(&stopper.timer, r->loop, relay_stop_check);
	relay_loop_on_signal(r->loop, SIGINT, relay_on_signal, &stopper);
	relay_loop_on_signal(r->loop, SIGTERM, relay_on_signal, &stopper);
	relay_timer_start(&ticker.timer, RELAY_TICK_US);
	relay_loop_run(r->loop);
	relay_timer_stop(&ticker.timer);
	relay_timer_stop(&stopper.timer);
}

static void relay_init(struct relay *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->cfg.listen_host, sizeof(r->cfg.listen_host), "127.0.0.1");
	r->cfg.listen_port = 8080;
	r->cfg.data_dir = "var";
	r->cfg.web_dir = ASP_WEB_DIR;
	r->cfg.max_message = 4u << 20;
	r->cfg.queue_bytes = 16u << 20;
	r->cfg.queue_msgs = 1024;
	r->cfg.gop_bytes = 8u << 20;
	r->cfg.stall_secs = 30;
	r->cfg.keyframe_gap_ms = 1000;
	r->cfg.retain_assist_days = RELAY_RETAIN_ASSIST_DAYS;
	r->cfg.retain_audit_days = RELAY_RETAIN_AUDIT_DAYS;
	relay_map_init(&r->by_desktop);
	relay_map_init(&r->by_code);
	relay_map_init(&r->by_owner);
	relay_session_init(r);
	relay_assist_init(r);
}

static void relay_fini(struct relay *r)
{
	relay_session_free_all(r);
	relay_map_free(&r->by_desktop);
	relay_map_free(&r->by_code);
	relay_map_free(&r->by_owner);
	if (r->store)
		r->store->ops->close(r->store);
	OPENSSL_cleanse(r->secret, sizeof(r->secret));
}

/* The data directory: the signing secret, the store, and the sessions
 * the store remembers. */
static int relay_open_data(struct relay *r)
{
	char why[256];
	int err;

	if (mkdir(r->cfg.data_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "asp-relay: cannot create %s: %s\n",
			r->cfg.data_dir, strerror(errno));
		return -1;
	}
	err = proto_token_secret_load(r->cfg.data_dir, true, r->secret);
	if (err) {
		fprintf(stderr, "asp-relay: cannot use %s/secret: %s\n",
			r->cfg.data_dir, proto_err_info(err)->message);
		return -1;
	}
	if (relay_store_sqlite_open(r->cfg.data_dir, &r->store, why,
				    sizeof(why))) {
		fprintf(stderr, "asp-relay: cannot open the store: %s\n", why);
		return -1;
	}
	if (relay_session_restore(r)) {
		fprintf(stderr, "asp-relay: cannot restore sessions: %s\n",
			r->store->ops->why(r->store));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct relay r;
	int rc = 1;

	relay_alloc_tune();
	relay_init(&r);
	if (relay_parse_args(argc, argv, &r.cfg))
		goto out;
	if (relay_open_data(&r))
		goto out;
	r.loop = relay_loop_new();
	if (!r.loop)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	/* A file-size limit (ulimit -f) fails the store's write, which is
	 * refused as storage_unavailable, rather than killing the relay. */
	signal(SIGXFSZ, SIG_IGN);
	if (relay_server_start(&r, r.loop)) {
		fprintf(stderr, "asp-relay: cannot listen on %s:%d\n",
			r.cfg.listen_host, r.cfg.listen_port);
		goto out_server;
	}
	printf("listening on %s://%s:%d\n", r.tls ? "wss" : "ws",
	       r.cfg.listen_host, relay_server_port(&r));
	fflush(stdout);
	relay_run(&r);
	rc = 0;
out_server:
	relay_server_stop(&r);
	relay_loop_free(r.loop);
out:
	relay_fini(&r);
	return rc;
}
