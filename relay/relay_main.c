/*
 * asp-relay: the streaming relay server.
 *
 * Parses the command line, creates one lws context with one vhost that
 * serves HTTP, the host protocol and the viewer protocol on one port
 * (with TLS when given a certificate), and runs the event loop until
 * SIGINT or SIGTERM.  Shutdown closes every WebSocket with 1001 (going
 * away), waits briefly for the close frames to go out, and frees
 * everything, so a sanitizer run ends with no leak.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>

#include "relay/relay.h"
#include "relay/relay_assist.h"
#include "relay/relay_conn.h"
#include "relay/relay_http.h"
#include "relay/relay_retain.h"
#include "relay/relay_session.h"

#ifndef ASP_WEB_DIR
#define ASP_WEB_DIR "relay/www"
#endif

#define RELAY_TICK_US (100 * 1000)
#define RELAY_SHUTDOWN_US (2 * 1000 * 1000)

static volatile sig_atomic_t relay_stop_requested;
static struct lws_context *relay_signal_context;

uint64_t relay_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t relay_clock_s(const struct relay *r)
{
	return (int64_t)time(NULL) + r->clock_offset_s;
}

void relay_audit(struct relay *r, const char *actor, const char *event,
		 const char *desktop, const char *detail)
{
	struct relay_store *st = r->store;

	if (st->ops->audit_append(st, relay_clock_s(r), actor, event, desktop,
				  detail))
		relay_log("store-error", "audit: %s", st->ops->why(st));
}

void relay_log(const char *event, const char *fmt, ...)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s ", when, event);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

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

static void relay_on_signal(int sig)
{
	(void)sig;
	relay_stop_requested = 1;
	if (relay_signal_context)
		lws_cancel_service(relay_signal_context);
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
	lws_sorted_usec_list_t sul;
	struct relay *relay;
	uint64_t last_roll_us;
};

static void relay_tick(lws_sorted_usec_list_t *sul)
{
	struct relay_ticker *t = lws_container_of(sul, struct relay_ticker, sul);
	struct relay *r = t->relay;
	uint64_t now = relay_now_us();

	if (now - t->last_roll_us >= 1000000) {
		uint64_t win[2] = { t->last_roll_us, now };

		relay_map_each(&r->by_desktop, relay_roll_stream, win);
		t->last_roll_us = now;
		relay_assist_tick(r);
		relay_retain_tick(r);
		relay_trim(r);
	}
	relay_conn_tick(r, now);
	lws_sul_schedule(r->context, 0, &t->sul, relay_tick, RELAY_TICK_US);
}

static const struct lws_protocols relay_protocols[] = {
	{ "http", relay_http_cb, sizeof(struct relay_http), 0, 0, NULL, 0 },
	/* lws allocates rx_buffer_size per connection, so it is a trade
	 * between callbacks per big message and memory per idle session
	 * (bench/ measures both).  Viewers send small input messages but
	 * receive big ones, written in RELAY_CHUNK pieces. */
	{ RELAY_PROTO_HOST, relay_conn_host_cb, sizeof(struct relay_conn),
	  32 * 1024, 1, NULL, 64 * 1024 },
	{ RELAY_PROTO_VIEW, relay_conn_view_cb, sizeof(struct relay_conn),
	  4096, 2, NULL, 256 * 1024 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const lws_retry_bo_t relay_retry = {
	.secs_since_valid_ping = 20,
	.secs_since_valid_hangup = 30,
};

static int relay_create_context(struct relay *r)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = r->cfg.listen_port;
	info.iface = r->cfg.listen_host;
	info.protocols = relay_protocols;
	info.user = r;
	info.pt_serv_buf_size = 64 * 1024;
	info.alpn = "http/1.1";
	info.retry_and_idle_policy = &relay_retry;
	info.timeout_secs = 10;
	info.vhost_name = "default";
	if (r->cfg.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = r->cfg.tls_cert;
		info.ssl_private_key_filepath = r->cfg.tls_key;
		r->tls = true;
	}
	r->context = lws_create_context(&info);
	if (!r->context)
		return -1;
	r->vhost = lws_get_vhost_by_name(r->context, "default");
	if (!r->vhost)
		return -1;
	return 0;
}

static void relay_begin_shutdown(struct relay *r)
{
	r->stopping = true;
	relay_log("shutdown", "connections=%zu", r->nconns);
	for (struct relay_conn *c = r->conns; c; c = c->next)
		relay_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
}

static void relay_run(struct relay *r)
{
	struct relay_ticker ticker = { .relay = r,
				       .last_roll_us = relay_now_us() };
	uint64_t deadline = 0;

	lws_sul_schedule(r->context, 0, &ticker.sul, relay_tick, RELAY_TICK_US);
	for (;;) {
		if (lws_service(r->context, 0) < 0)
			break;
		if (relay_stop_requested && !r->stopping) {
			relay_begin_shutdown(r);
			deadline = relay_now_us() + RELAY_SHUTDOWN_US;
		}
		if (r->stopping && (!r->nconns || relay_now_us() > deadline))
			break;
	}
	lws_sul_cancel(&ticker.sul);
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
	struct sigaction sa;
	struct relay r;
	int rc = 1;

	relay_init(&r);
	if (relay_parse_args(argc, argv, &r.cfg))
		goto out;
	if (relay_open_data(&r))
		goto out;
	lws_set_log_level(LLL_ERR, NULL);
	if (relay_create_context(&r)) {
		fprintf(stderr, "asp-relay: cannot listen on %s:%d\n",
			r.cfg.listen_host, r.cfg.listen_port);
		goto out_ctx;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = relay_on_signal;
	relay_signal_context = r.context;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("listening on %s://%s:%d\n", r.tls ? "wss" : "ws",
	       r.cfg.listen_host, lws_get_vhost_listen_port(r.vhost));
	fflush(stdout);
	relay_run(&r);
	rc = 0;
out_ctx:
	relay_signal_context = NULL;
	if (r.context)
		lws_context_destroy(r.context);
out:
	relay_fini(&r);
	return rc;
}
