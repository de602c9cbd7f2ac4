/*
 * relay_conn: one WebSocket connection, host or viewer, on lws.
 *
 * This module owns everything between lws and the session rules: it
 * assembles received messages (binary ones straight into a shared frame:
 * the one user-space copy), parses control messages, and writes each
 * connection's queue when lws says the socket is writable, applying the
 * slow-consumer policy.  Session rules live in relay_session.c.
 *
 * Connections are never freed from another connection's callback: a
 * connection to be closed is marked, its error is queued, and it closes
 * itself from its own WRITEABLE callback (or a timeout kills it).
 */
#ifndef ASP_RELAY_CONN_H
#define ASP_RELAY_CONN_H

#include <libwebsockets.h>

#include "relay/relay.h"

#define RELAY_PROTO_HOST "asp.host.v1"
#define RELAY_PROTO_VIEW "asp.view.v1"

/* What the layer above (the session rules) does with a connection's
 * events.  relay_conn calls up only through this table, which the session
 * layer puts in relay.conn_events at start-up; every entry is required.
 * Messages are parsed and schema-checked; frames are borrowed. */
struct relay_conn_events {
	/* The first message, a hello, from a host or a viewer. */
	void (*hello)(struct relay_conn *c, const struct proto_ctrl *m);
	/* A viewer's join, in any state after hello. */
	void (*join)(struct relay_conn *c, const struct proto_ctrl *m);
	/* Any other control message once c has joined. */
	void (*msg)(struct relay_conn *c, const struct proto_ctrl *m);
	/* A complete, validated media message (host) or input (viewer). */
	void (*media)(struct relay_conn *c, struct relay_frame *f);
	/* The host's queue drained. */
	void (*drained)(struct relay_conn *c);
	/* c leaves its session (refusal, close); may come twice. */
	void (*gone)(struct relay_conn *c);
	/* c dropped video and waits for a keyframe from its host. */
	void (*want_keyframe)(struct relay_conn *c);
};

int relay_conn_host_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len);
int relay_conn_view_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len);

/* Queues a text message; takes ownership of the malloc'd json.  NULL,
 * from a failed build, is logged (build-failed) and counted
 * (asp_build_failures_total): a bug, never a silent drop.  Control
 * messages are never dropped. */
void relay_conn_send_json(struct relay_conn *c, char *json);

/* Queues {"type":"error"} for err without closing. */
void relay_conn_send_error(struct relay_conn *c, int err, const char *detail);

/* Queues the error, detaches c from its session, then closes with the
 * error's close code once the error is written. */
void relay_conn_refuse(struct relay_conn *c, int err, const char *detail);

/* As relay_conn_refuse, with the error's retry_after (seconds until
 * trying again can succeed). */
void relay_conn_refuse_retry(struct relay_conn *c, int err, const char *detail,
			     int64_t retry_after_s);

/* Closes c with a plain close code (e.g. 1000, 1001) after what is
 * queued for it is written. */
void relay_conn_close(struct relay_conn *c, int code, const char *reason);

/* Refuses c with the error redirect (4024), whose "url" is the node that
 * holds the desktop (docs/cluster.md). */
void relay_conn_redirect(struct relay_conn *c, const char *url);

/* Called by the layer above while it handles a hello or a join: the
 * message is handed to it again in delay_us (as if the peer had sent it
 * again), and nothing more is read from the peer until it is done with.
 * relay_conn_deferred_for says for how long the message has waited
 * (0 the first time), for the caller's own deadline. */
void relay_conn_defer(struct relay_conn *c, uint64_t delay_us);
uint64_t relay_conn_deferred_for(const struct relay_conn *c);

/* Offers a media frame to a viewer under the slow-viewer policy; takes
 * its own reference when it queues the frame. */
void relay_conn_send_media(struct relay_conn *c, struct relay_frame *f);

/* Queues a frame that must never be dropped (input to the host, cached
 * frames replayed on join); takes its own reference. */
void relay_conn_send_always(struct relay_conn *c, struct relay_frame *f);

/* Marks the viewer as waiting for the next keyframe: video before it is
 * not queued. */
void relay_conn_wait_keyframe(struct relay_conn *c);

/* Writes a metrics report for c's session now and arms a ping. */
void relay_conn_report_metrics(struct relay_conn *c);

#endif
