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
#include "relay/relay_guard.h"
#include "relay/relay_loop.h"
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
"  --gop-bytes SIZE     keyframe cache bound per session, in real memory\n"
"                       (default 8M)\n"
"  --stall-timeout S    close a viewer that reads nothing for S seconds while\n"
"                       data waits for it (default 30)\n"
"  --keyframe-gap MS    least time between keyframe requests to a host\n"
"                       (default 1000)\n"
"  --gop-frames N       keyframe cache bound per session in messages\n"
"                       (default 1024)\n"
"  --hello-timeout S    close a connection that has not said hello within S\n"
"                       seconds (default 5)\n"
"  --max-prehello-per-addr N  connections from one address waiting for\n"
"                       hello (default 512; 0: no limit)\n"
"  --max-user-conns N   connections signed in as one user (default 64;\n"
"                       0: no limit)\n"
"  --max-token-desktops N  sessions one viewer token may be joined to at\n"
"                       once (default 16; 0: no limit)\n"
"  --join-failures N    failed joins per user before a cool-down (default 10)\n"
"  --join-failures-addr N  failed joins per address before a cool-down\n"
"                       (default 100)\n"
"  --join-cooldown S    the window failed joins are counted in (default 60)\n"
"  --max-token-life S   longest token lifetime (exp - iat) accepted\n"
"                       (default 2592000, 30 days)\n"
"  --token-skew S       how far a token's iat may be ahead of the relay's\n"
"                       clock (default 300)\n"
"  --metrics-token-file FILE  /metrics needs 'Authorization: Bearer T' with\n"
"                       T the first line of FILE (default: open)\n"
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

/* A limit: a count where 0 means none. */
static int relay_parse_count(const char *s, size_t *out)
{
	if (!strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	return relay_parse_size(s, out) || *out > 10000000;
}

/* The first line of file, kept for the life of the process. */
static int relay_read_metrics_token(const char *file, struct relay_config *cfg)
{
	static char token[PROTO_TOKEN_BUF];
	FILE *f = fopen(file, "r");
	size_t n;

	if (!f)
		return -1;
	n = fgets(token, sizeof(token), f) ? strcspn(token, "\r\n") : 0;
	fclose(f);
	token[n] = '\0';
	if (n < 16)
		return -1; /* no token, or too short to be one */
	cfg->metrics_token = token;
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
		{ "test-clock", no_argument, NULL, 't' },
		{ "gop-frames", required_argument, NULL, 'G' },
		{ "hello-timeout", required_argument, NULL, 'H' },
		{ "max-prehello-per-addr", required_argument, NULL, 'P' },
		{ "max-user-conns", required_argument, NULL, 'U' },
		{ "max-token-desktops", required_argument, NULL, 'D' },
		{ "join-failures", required_argument, NULL, 'J' },
		{ "join-failures-addr", required_argument, NULL, 'A' },
		{ "join-cooldown", required_argument, NULL, 'C' },
		{ "max-token-life", required_argument, NULL, 'L' },
		{ "token-skew", required_argument, NULL, 'S' },
		{ "metrics-token-file", required_argument, NULL, 'M' },
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
		case 't':
			cfg->test_clock = true;
			break;
		case 'G':
			if (relay_parse_size(optarg, &n) || n > 1000000)
				goto bad;
			cfg->gop_frames = (uint32_t)n;
			break;
		case 'H':
			if (relay_parse_size(optarg, &n) || n > 3600)
				goto bad;
			cfg->hello_timeout_s = (int)n;
			break;
		case 'P':
			if (relay_parse_count(optarg, &cfg->max_prehello_per_addr))
				goto bad;
			break;
		case 'U':
			if (relay_parse_count(optarg, &cfg->max_user_conns))
				goto bad;
			break;
		case 'D':
			if (relay_parse_count(optarg, &cfg->max_token_desktops))
				goto bad;
			break;
		case 'J':
			if (relay_parse_count(optarg, &n))
				goto bad;
			cfg->join_fail_user = (uint32_t)n;
			break;
		case 'A':
			if (relay_parse_count(optarg, &n))
				goto bad;
			cfg->join_fail_addr = (uint32_t)n;
			break;
		case 'C':
			if (relay_parse_size(optarg, &n) || n > 86400)
				goto bad;
			cfg->join_cooldown_s = (int)n;
			break;
		case 'L':
			if (relay_parse_size(optarg, &n) || n > (1u << 30))
				goto bad;
			cfg->max_token_life_s = (int)n;
			break;
		case 'S':
			if (relay_parse_count(optarg, &n) || n > 86400)
				goto bad;
			cfg->token_skew_s = (int)n;
			break;
		case 'M':
			if (relay_read_metrics_token(optarg, cfg))
				goto bad;
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
	relay_guard_tick(r);
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
	r->cfg.gop_frames = 1024;
	r->cfg.hello_timeout_s = 5;
	r->cfg.max_prehello_per_addr = 512;
	r->cfg.max_user_conns = 64;
	r->cfg.max_token_desktops = 16;
	r->cfg.join_fail_user = 10;
	r->cfg.join_fail_addr = 100;
	r->cfg.join_cooldown_s = 60;
	r->cfg.max_token_life_s = 30 * 86400;
	r->cfg.token_skew_s = 300;
	relay_guard_init(&r->guard);
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
	relay_guard_free(&r->guard);
	if (r->store)
		r->store->ops->close(r->store);
	OPENSSL_cleanse(r->secret, sizeof(r->secret));
}

/* relay.db holds owner keys and codes: like the secret, a database
 * group or others can read is refused rather than trusted, and new
 * files are made private (umask). */
static int relay_check_db_mode(const char *dir)
{
	static const char *const files[] = { "relay.db", "relay.db-wal",
					     "relay.db-shm" };
	char path[1024];
	struct stat st;

	umask(077);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (stat(path, &st) != 0)
			continue;
		if (st.st_mode & 077) {
			fprintf(stderr, "asp-relay: %s is accessible to group or "
				"others (mode %03o): refused; chmod 600 it\n",
				path, (unsigned)(st.st_mode & 0777));
			return -1;
		}
	}
	return 0;
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
	if (relay_check_db_mode(r->cfg.data_dir))
		return -1;
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
