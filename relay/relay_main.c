/*
 * asp-relay: the streaming relay server.
 *
 * Loads the settings (relay_config), creates one lws context with one vhost that
 * serves HTTP, the host protocol and the viewer protocol on one port
 * (with TLS when given a certificate), and runs the event loop until
 * SIGINT or SIGTERM; SIGHUP reloads (relay_reload).  Shutdown closes every WebSocket with 1001 (going
 * away), waits briefly for the close frames to go out, and frees
 * everything, so a sanitizer run ends with no leak.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
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
#include "relay/relay_reload.h"
#include "relay/relay_session.h"

#define RELAY_TICK_US (100 * 1000)
#define RELAY_SHUTDOWN_US (2 * 1000 * 1000)

static volatile sig_atomic_t relay_stop_requested;
static volatile sig_atomic_t relay_reload_requested;
static struct lws_context *relay_signal_context;

static void relay_on_signal(int sig)
{
	if (sig == SIGHUP)
		relay_reload_requested = 1;
	else
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
		if (relay_reload_requested) {
			relay_reload_requested = 0;
			relay_reload(r);
		}
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
	relay_hist_init(&r->stats.forward_us, 4, 20, 1e-6);
	relay_hist_init(&r->stats.queue_depth, 0, 12, 1);
	relay_hist_init(&r->stats.join_us, 10, 14, 1e-6);
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
	relay_config_free(&r->cfg);
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
	char why[512];
	int rc;

	relay_init(&r);
	rc = relay_config_load(&r.cfg, argc, argv, why, sizeof(why));
	if (rc == RELAY_CONFIG_ERROR) {
		fprintf(stderr, "asp-relay: %s\n(asp-relay --help for usage)\n",
			why);
		return 2;
	}
	if (rc == RELAY_CONFIG_EXIT)
		return 0;
	relay_log_set_json(r.cfg.log_json);
	if (r.cfg.check_only) {
		printf("asp-relay: settings ok%s%s\n",
		       r.cfg.config_path ? " in " : "",
		       r.cfg.config_path ? r.cfg.config_path : "");
		goto out;
	}
	rc = 1;
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
	sigaction(SIGHUP, &sa, NULL);
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
