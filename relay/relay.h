/*
 * relay.h: the relay's shared types, private to relay/.
 *
 * One struct relay holds the configuration, the counters and the maps of
 * live sessions; one struct relay_conn is the per-connection state lws
 * allocates for every host and viewer WebSocket; one struct relay_session
 * is a desktop with its host, its owner's viewer and at most one guest.
 * Everything runs on the single lws service thread, so nothing here is
 * locked.
 */
#ifndef ASP_RELAY_H
#define ASP_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec_inspect.h"
#include "protocol/proto_code.h"
#include "protocol/proto_ctrl.h"
#include "protocol/proto_error.h"
#include "protocol/proto_media.h"
#include "protocol/proto_token.h"
#include "relay/relay_audit.h"
#include "relay/relay_clock.h"
#include "relay/relay_config.h"
#include "relay/relay_frame.h"
#include "relay/relay_guard.h"
#include "relay/relay_hist.h"
#include "relay/relay_log.h"
#include "relay/relay_loop.h"
#include "relay/relay_map.h"
#include "relay/relay_queue.h"
#include "relay/relay_store.h"

struct lws;
struct lws_context;
struct lws_vhost;
struct relay_loop;
struct relay_conn_events;
struct relay_session_assist_hooks;
struct relay_events_sub;
struct relay_cluster;
struct relay_audit_held;
struct json_t;

#define RELAY_DESKTOP_MAX 64
#define RELAY_NAME_MAX 64
#define RELAY_OWNER_KEY_LEN 32
#define RELAY_STREAMS_MAX 8

struct relay_stats {
	uint64_t bytes_in, msgs_in;
	uint64_t bytes_out, msgs_out;
	uint64_t copied_bytes, copies;  /* user-space copies of message bytes */
	uint64_t forwarded_bytes;       /* message bytes handed to sockets */
	uint64_t partial_writes;        /* writes lws had to buffer */
	uint64_t dropped[PROTO_KIND_CONTROL + 1]; /* by media kind */
	uint64_t refusals[PROTO_E__COUNT];
	uint64_t keyframe_requests;
	uint64_t keyframe_mismatches;
	uint64_t sessions_created;
	struct relay_hist forward_us;  /* turn received to turn written */
	struct relay_hist queue_depth; /* viewer queue length after a push */
	struct relay_hist join_us;     /* viewer connected to joined */
};

enum relay_role {
	RELAY_ROLE_NONE,
	RELAY_ROLE_HOST,
	RELAY_ROLE_OWNER,
	RELAY_ROLE_GUEST,   /* a collaborator, in the guest slot */
	RELAY_ROLE_ASSIST,  /* an administrator assisting, in the guest slot */
};

enum relay_state {
	RELAY_ST_HELLO,   /* waiting for hello */
	RELAY_ST_READY,   /* hello accepted (viewer: waiting for join) */
	RELAY_ST_JOINED,  /* viewer joined a session */
	RELAY_ST_CLOSING, /* flushing an error, then closing */
};

struct relay_conn {
	struct relay *relay;
	struct lws *wsi;
	struct relay_conn *prev, *next;  /* relay.conns */
	bool is_host;
	enum relay_role role;
	enum relay_state state;
	struct relay_session *session;
	char name[RELAY_NAME_MAX + 1];
	struct proto_claims who; /* from the token in hello */
	struct relay_guard_hold hold; /* what c counts in relay.guard */

	/* Receive: a binary message is assembled straight into its frame. */
	struct relay_frame *rx;
	size_t rx_have;
	uint8_t rx_hdr[PROTO_MEDIA_HDR_LEN]; /* a header split across reads */
	size_t rx_hdr_have;
	bool rx_skip;                        /* swallowing a refused message */
	int rx_skip_err;
	char *rx_text;
	size_t rx_text_len, rx_text_cap;
	bool rx_paused;

	/* Send. */
	struct relay_queue q;
	bool skip_video;        /* dropped video: wait for a keyframe */
	bool slow;              /* being closed for not keeping up */
	bool write_failed;      /* a direct write failed: close next turn */
	bool slow_due;          /* over the backlog bound: refuse next turn */
	uint64_t dropped;
	int close_code;
	char close_reason[32];

	/* Health and metrics. */
	/* Monotonic: the last write, or when data began waiting.  The stall
	 * timer runs while data waits and re-arms itself lazily, so a write
	 * costs no timer operation. */
	uint64_t last_progress_us;
	struct relay_timer stall_timer;
	/* Monotonic: when the peer last sent anything (keepalive). */
	uint64_t last_rx_us;
	struct relay_timer keepalive_timer;
	struct relay_timer metrics_timer;
	struct relay_timer hello_timer;  /* --hello-timeout, until hello */
	struct relay_timer token_timer;  /* fires when the token expires */
	/* A hello or join that must wait (a desktop whose lease is running
	 * out on a dead node): its text, looked at again when the timer
	 * fires; reading is paused meanwhile (relay_conn_defer). */
	struct relay_timer defer_timer;
	char *deferred;
	size_t deferred_len;
	bool defer_asked;
	uint64_t deferred_since_us; /* monotonic; 0: not waiting */
	/* A host waiting here for its desktop's lease (relay_session):
	 * collaborators arriving meanwhile wait for it too. */
	char claiming[RELAY_DESKTOP_MAX + 1];
	uint64_t opened_us;        /* the WebSocket opened (turn wall clock) */
	uint64_t joined_us;        /* a viewer joined; 0 for hosts */
	uint64_t ping_sent_us;
	bool want_ping;
	double rtt_ms;
	uint64_t last_age_us;
	uint32_t metrics_interval_ms;
};

struct relay_stream_stats {
	bool used;
	uint8_t kind;
	uint8_t codec;
	uint16_t stream;
	uint64_t msgs, bytes;           /* totals */
	uint64_t win_msgs, win_bytes;   /* in the current second */
	uint64_t first_us;              /* when the stream began */
	double fps, bytes_per_s;        /* over the last whole second */
};

struct relay_session {
	struct relay *relay;
	char desktop[RELAY_DESKTOP_MAX + 1];
	char name[RELAY_NAME_MAX + 1];
	char owner_key[RELAY_OWNER_KEY_LEN + 1];
	char user[PROTO_TOKEN_ID_MAX + 1]; /* the desktop's user */
	char code[PROTO_CODE_CANON_LEN]; /* "" when no collaboration */
	struct relay_conn *host, *owner, *guest;
	bool guest_control;
	char assist_id[RELAY_STORE_ID_MAX + 1]; /* guest is assisting */

	/* Keyframe cache: the latest config and the run since the last
	 * keyframe of the first video stream, by reference. */
	struct relay_frame *config;
	struct relay_frame **gop;
	uint32_t gop_count, gop_cap;
	size_t gop_bytes;
	bool gop_valid;
	uint64_t last_keyframe_req_us;

	/* What the media is, learned from the bitstream (codec_inspect),
	 * told to viewers in "stream" messages. */
	struct codec_video_inspector vinspect;
	int width, height;
	char codec_string[CODEC_STRING_MAX];
	int video_codec;
	int audio_codec, audio_channels;
	uint64_t keyframe_mismatches;
	struct relay_stream_stats streams[RELAY_STREAMS_MAX];
	uint64_t copied_bytes, forwarded_bytes;
};

struct relay {
	struct relay_config cfg;
	struct relay_stats stats;
	struct relay_loop *loop;
	struct lws_context *context;
	struct lws_vhost *vhost;
	struct relay_map by_desktop;
	struct relay_map by_code;
	struct relay_map by_owner;
	struct relay_store *store;
	struct relay_cluster *cluster; /* NULL: one relay alone */
	struct relay_guard guard;
	/* The layers above, registered at start-up (relay_session_init,
	 * relay_assist_init): lower layers reach upper ones only here. */
	const struct relay_conn_events *conn_events;
	const struct relay_session_assist_hooks *assist_hooks;
	uint8_t secret[PROTO_TOKEN_SECRET_LEN];
	int64_t clock_offset_s;   /* the injectable clock (tests) */
	struct relay_conn *conns;
	size_t nconns, nhosts, nviewers;
	struct relay_events_sub *events; /* event-stream subscribers */
	/* In a cluster: carries each event to the other nodes' consoles
	 * (registered by relay_bus_init; j is borrowed). */
	void (*events_out)(struct relay *r, struct json_t *j);
	/* Inside relay_audit_begin ... relay_audit_commit: the events
	 * waiting for the commit (relay_audit.c). */
	bool audit_batch;
	struct relay_audit_held *audit_held;
	bool tls;
	bool stopping;
	bool trim_pending;        /* a session ended: give memory back */
	int64_t retain_next_s;    /* when relay_retain looks again */
};

#endif
