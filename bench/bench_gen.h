/*
 * bench_gen: the load generator's sessions.
 *
 * A session is one host connection pushing media plus one or two viewer
 * connections receiving it, all driven from one bench_ws loop.  What a
 * session connects to depends on the target:
 *
 *   relay   host -> /host, viewers -> /view, with the real handshake
 *           (hello, welcome, share/code, join, joined) of docs/protocol.md;
 *   node    host -> /pair/NAME/host, viewers -> /pair/NAME/view on the
 *           Node.js ws relay (bench/peers/node-ws-relay.mjs), no JSON;
 *   uws     the same pairing on the uWebSockets.js relay
 *           (bench/peers/uws-relay.mjs);
 *   direct  host -> the generator's own WebSocket server, which is the
 *           viewer: the two ends of one TCP connection, no relay at all;
 *   pipe    as direct, but through `socat` (spawned here): one process
 *           copying bytes between two sockets, a relay that does no work.
 *
 * Hosts stamp each media message with the wall clock when it is queued
 * to the socket (the capture field); viewers record receive time minus
 * capture in a histogram.  Viewers (the owner) send input events
 * upstream; the host records their latency too.  In throughput mode
 * (window > 0) hosts are not paced: each keeps `window` messages in
 * flight, counted from what the slowest viewer has received.
 *
 * Failures (refusals, unexpected closes) mark the session failed and are
 * counted, with the first reason kept; they never abort the run.
 */
#ifndef ASP_BENCH_GEN_H
#define ASP_BENCH_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/bench_hist.h"
#include "bench/bench_ws.h"

enum bench_target {
	BENCH_T_RELAY,
	BENCH_T_NODE,
	BENCH_T_UWS,
	BENCH_T_PIPE,
	BENCH_T_DIRECT,
	BENCH_T_COUNT,
};

struct bench_cfg {
	enum bench_target target;
	int port;            /* relay or peer port (unused for direct/pipe) */
	bool tls;            /* wss:// to the relay or peer */
	int sessions;
	int viewers;         /* per session: 1 (owner) or 2 (owner + guest) */
	int active;          /* sessions that send media; the rest idle */
	double fps;          /* paced mode: frames per second per session */
	size_t size;         /* payload bytes of a delta frame */
	bool jitter;         /* deltas vary in 0.5..1.5 x size */
	double key_interval; /* seconds between keyframes (<= 0: never) */
	double key_mult;     /* keyframe size = key_mult x size */
	double input_hz;     /* input events per second per active session */
	int window;          /* > 0: throughput mode, messages in flight */
	int max_connecting;  /* sessions in setup at once */
	const char *data_dir; /* relay's data directory: its token secret */
};

struct bench_session;

struct bench_peer {
	struct bench_ws *ws;
	struct bench_session *s;
	int role;            /* 0 host, 1 owner, 2 guest */
	bool ready;          /* joined (relay) or connected (peers) */
	bool welcomed;       /* relay: the viewer's welcome came */
	bool join_deferred;  /* join only when bench_gen_join() says */
	int64_t join_sent_us;
	bool got_key;
	bool seen;
	uint32_t next_seq;
	uint64_t rx_msgs, rx_bytes, gaps;
};

struct bench_timer {
	int64_t at;          /* monotonic us */
	int idx;             /* position in the heap, -1 when not in it */
	int what;            /* 0 media, 1 input */
	struct bench_session *s;
};

struct bench_session {
	struct bench_gen *g;
	int id;
	int nviews;
	int group;           /* which latency histogram its viewers feed */
	bool active;
	bool first_key;      /* the first frame is a keyframe */
	bool started, ready, failed;
	struct bench_peer host, view[2];
	char name[48];
	char owner_key[40], code[32];
	uint32_t seq, in_seq;
	uint64_t sent_msgs, sent_bytes, written_off;
	int64_t next_key_us;
	bool key_now;
	int64_t last_progress_us;
	uint64_t stalls;
	struct bench_timer t_media, t_input;
};

#define BENCH_GROUPS 2

struct bench_gen {
	struct bench_cfg cfg;
	struct bench_loop *loop;
	struct bench_session *s;
	int n;
	int listen_port;     /* direct, pipe: the generator's server */
	int connect_port;    /* where hosts connect */
	pid_t socat_pid;
	uint8_t secret[32];  /* the relay's token secret (relay target) */
	bool have_secret;
	struct bench_timer **heap;
	int nheap;
	bool recording, sending, key_on_request_now;
	int64_t period_us;
	struct bench_hist lat[BENCH_GROUPS];
	struct bench_hist input_lat, join_warm, join_cold;
	uint64_t rec_msgs, rec_bytes;    /* received while recording */
	uint64_t rec_sent;               /* sent while recording */
	int nready, nfailed, connecting, next_start;
	uint64_t fd_limit;               /* RLIMIT_NOFILE when setup began */
	char first_error[192];
};

/* Creates the loop and sessions (none connected yet); for pipe, spawns
 * socat.  0 or a negative errno, with a sentence on stderr. */
int bench_gen_create(struct bench_gen *g, const struct bench_cfg *cfg);
/* Closes everything, stops socat.  Safe on a zeroed struct. */
void bench_gen_destroy(struct bench_gen *g);

/* Connects every session (at most cfg.max_connecting at a time) and
 * waits until each is ready or failed, or timeout_us passes.  Returns
 * how many are ready. */
int bench_gen_setup(struct bench_gen *g, int64_t timeout_us);

/* Starts (or stops) sending on the active sessions. */
void bench_gen_start(struct bench_gen *g);
void bench_gen_stop(struct bench_gen *g);

/* Runs the loop for duration_us, calling tick (if not NULL) about every
 * tick_us. */
void bench_gen_run(struct bench_gen *g, int64_t duration_us,
		   void (*tick)(struct bench_gen *g, void *arg), void *arg,
		   int64_t tick_us);

/* Runs the loop until every viewer has what its host sent, or max_us. */
void bench_gen_drain(struct bench_gen *g, int64_t max_us);

/* Sends the deferred join of session i's owner viewer now. */
void bench_gen_join(struct bench_gen *g, int i);

/* Mints a sign-in token (docs/protocol.md, Identity) for user, valid a
 * day, with the desktop claim when desktop is not NULL.  0, or -EINVAL
 * when there is no secret (no --data) or a claim is invalid. */
int bench_gen_token(const struct bench_gen *g, const char *user, bool admin,
		    const char *desktop, char *out, size_t out_len);

/* Messages sent and not received by the slowest viewer, all sessions. */
uint64_t bench_gen_missing(const struct bench_gen *g);

/* The target's name on the command line and in results; NULL out of range. */
const char *bench_target_name(enum bench_target t);

#endif
