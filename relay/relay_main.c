/*
 * asp-relay: the streaming relay server.
 *
 * Loads the settings (relay_config), opens the data directory, creates
 * the event loop (relay_loop) and the lws context on it (relay_server),
 * and runs until SIGINT or SIGTERM; SIGHUP reloads (relay_reload).
 * Shutdown closes every WebSocket with 1001 (going away), waits briefly
 * for the close frames to go out, and frees everything, so a sanitizer
 * run ends with no leak.  This file only wires modules together; nothing
 * calls into it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "relay/relay.h"
#include "relay/relay_alloc.h"
#include "relay/relay_assist.h"
#include "relay/relay_bus.h"
#include "relay/relay_cluster.h"
#include "relay/relay_conn.h"
#include "relay/relay_guard.h"
#include "relay/relay_loop.h"
#include "relay/relay_reload.h"
#include "relay/relay_retain.h"
#include "relay/relay_server.h"
#include "relay/relay_session.h"

#define RELAY_TICK_US (1000 * 1000)
#define RELAY_SHUTDOWN_US (5 * 1000 * 1000)
#define RELAY_STOP_POLL_US (20 * 1000)

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

/* At most once a second, after a session ended, give freed memory back
 * (relay_alloc_trim decides whether there is enough to be worth it). */
static void relay_trim(struct relay *r)
{
	if (!r->trim_pending)
		return;
	r->trim_pending = false;
	relay_alloc_trim();
}

/* The tick's store work: expiry of assistance requests, retention. */
static void relay_tick_store(struct relay *r)
{
	relay_assist_tick(r);
	relay_retain_tick(r);
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
	/* A cluster's store is Redis: its periodic work runs the moment
	 * Redis answers a probe, never against a Redis that hangs. */
	if (relay_cluster_on(r))
		relay_cluster_probe(r, relay_tick_store);
	else
		relay_tick_store(r);
	relay_guard_tick(r);
	relay_trim(r);
	relay_timer_start(&t->timer, RELAY_TICK_US);
}

/* Shutdown: every connection is sent its 1001 close; the loop ends when
 * the last one is gone or RELAY_SHUTDOWN_US has passed, whichever comes
 * first (a peer that does not read cannot be sent its close frame).  A
 * second signal ends it at once. */
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

static void relay_on_hup(int signum, void *arg)
{
	(void)signum;
	relay_reload(arg);
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
	relay_loop_on_signal(r->loop, SIGHUP, relay_on_hup, r);
	relay_timer_start(&ticker.timer, RELAY_TICK_US);
	relay_loop_run(r->loop);
	relay_timer_stop(&ticker.timer);
	relay_timer_stop(&stopper.timer);
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
	/* A cluster node keeps nothing but the secret here: the store is
	 * Redis, and a desktop's state is read when its host arrives. */
	if (r->cfg.redis) {
		if (relay_store_redis_open(r->cfg.redis,
					   (int)r->cfg.redis_timeout_ms,
					   &r->store, why, sizeof(why))) {
			fprintf(stderr, "asp-relay: cannot use --redis: %s\n",
				why);
			return -1;
		}
		return 0;
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

/* The cluster, once the server knows its port (the default node URL). */
static int relay_join_cluster(struct relay *r)
{
	uint64_t t0 = relay_mono_us();
	char why[256];

	if (relay_cluster_open(r, relay_server_port(r), why, sizeof(why))) {
		fprintf(stderr, "asp-relay: %s\n", why);
		return -1;
	}
	relay_bus_init(r);
	relay_store_redis_gate(r->store, relay_cluster_answers, r);
	/* Up to a second for the renewal connection and the bus, so the
	 * first hosts are not refused for a subscription a few
	 * milliseconds away (the store connected already). */
	while (!relay_cluster_redis_up(r) && relay_mono_us() - t0 < 1000000)
		relay_loop_run_once(r->loop, true);
	printf("node %s at %s%s\n", relay_cluster_node_id(r),
	       relay_cluster_node_url(r),
	       relay_cluster_redis_up(r) ? "" : " (Redis not reachable yet)");
	return 0;
}

int main(int argc, char **argv)
{
	struct relay r;
	char why[512];
	int rc;

	relay_alloc_tune();
	relay_server_init(&r);
	rc = relay_config_load(&r.cfg, argc, argv, why, sizeof(why));
	if (rc == RELAY_CONFIG_ERROR) {
		fprintf(stderr, "asp-relay: %s\n(asp-relay --help for usage)\n",
			why);
		rc = 2;
		goto out;
	}
	if (rc == RELAY_CONFIG_EXIT) {
		rc = 0;
		goto out;
	}
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
	if (r.cfg.redis && relay_join_cluster(&r))
		goto out_server;
	printf("listening on %s://%s:%d\n", r.tls ? "wss" : "ws",
	       r.cfg.listen_host, relay_server_port(&r));
	fflush(stdout);
	relay_run(&r);
	rc = 0;
out_server:
	relay_server_stop(&r);
	relay_cluster_close(&r);
	relay_loop_free(r.loop);
out:
	relay_server_free(&r);
	return rc;
}
