/*
 * relay_session: the product's rules for one desktop.
 *
 * A session is keyed by desktop id.  It has at most one host connection,
 * one owner viewer and one guest (a collaborator), a collaboration code
 * while a collaboration stands, and a keyframe cache so that a viewer who
 * joins starts at a decodable point.  Every function here runs on the lws
 * thread and acts through relay_conn's queue functions; none writes to a
 * socket or frees a connection.
 */
#ifndef ASP_RELAY_SESSION_H
#define ASP_RELAY_SESSION_H

#include "relay/relay.h"
#include "relay/relay_conn.h"

/* Control messages, already parsed and schema-checked. */
void relay_session_host_hello(struct relay_conn *c, const struct proto_ctrl *m);
void relay_session_host_msg(struct relay_conn *c, const struct proto_ctrl *m);
void relay_session_viewer_hello(struct relay_conn *c,
				const struct proto_ctrl *m);
void relay_session_join(struct relay_conn *c, const struct proto_ctrl *m);
void relay_session_viewer_msg(struct relay_conn *c, const struct proto_ctrl *m);

/* A complete, validated media message from the host: cache and fan out.
 * Borrows f. */
void relay_session_publish(struct relay_conn *host, struct relay_frame *f);

/* A complete, validated input message from a viewer.  Borrows f. */
void relay_session_input(struct relay_conn *viewer, struct relay_frame *f);

/* Asks the host for a keyframe unless one was asked for less than
 * keyframe_gap_ms ago. */
void relay_session_request_keyframe(struct relay_session *s,
				    const char *reason);

/* Takes c out of its session (leave, drop, refusal, close), with the
 * notifications that follow; frees the session when nothing holds it.
 * Safe to call twice. */
void relay_session_detach(struct relay_conn *c);

/* The host's queue drained: let paused input senders go on. */
void relay_session_host_drained(struct relay_session *s);

/* The two permissions an administrator grants per user. */
enum relay_perm {
	RELAY_PERM_HELP,   /* "Contact Administrator for Help" */
	RELAY_PERM_COLLAB, /* "User Stream Collaboration" */
};

/* 0 if user holds perm, -PROTO_E_NO_PERMISSION if not (a user never set
 * holds neither), or the store's error. */
int relay_session_permitted(struct relay *r, const char *user,
			    enum relay_perm perm);

/* "User Stream Collaboration" was revoked from user: a guest signed in
 * as user is closed (no_permission), and a code user's desktop shares
 * is discarded with a notice to the host (collab_revoked), closing its
 * guest. */
void relay_session_revoke_collab(struct relay *r, const char *user);

/* Sends a notification {"type":"notify"} to c (NULL is ignored). */
void relay_session_notify(struct relay_conn *c, const char *event,
			  const char *message, const char *name);

/* Attaches viewer c to s as its owner (RELAY_ROLE_OWNER) or in its
 * guest slot, which must be free (RELAY_ROLE_GUEST, RELAY_ROLE_ASSIST),
 * and sends it joined, the stream facts and the cached media. */
void relay_session_attach_viewer(struct relay_session *s, struct relay_conn *c,
				 enum relay_role role);

/* Restores the collaborations kept in the store (at start-up): each
 * desktop's session comes back with its code and owner key, waiting for
 * its host. */
int relay_session_restore(struct relay *r);

/* Registers the session rules as the handler of every connection's events
 * (relay.conn_events).  Call once, before the server starts. */
void relay_session_init(struct relay *r);

/* Remote assistance is a layer over sessions: it registers these hooks
 * (relay_assist_init) and the session reaches it only through them.
 * With none registered, assistance messages are refused as bad_state. */
struct relay_session_assist_hooks {
	/* A host's assist_request, assist_accept, assist_decline or
	 * assist_end. */
	void (*host_msg)(struct relay_conn *c, const struct proto_ctrl *m);
	/* A viewer's {"type":"join","assist":id}. */
	void (*join)(struct relay_conn *c, const char *id);
	/* The assisting administrator's viewer left the guest slot. */
	void (*guest_left)(struct relay_session *s);
	/* The desktop's owner joined: tell it the open request's state. */
	void (*owner_joined)(struct relay_session *s, struct relay_conn *owner);
};

/* h must outlive the relay. */
void relay_session_set_assist(struct relay *r,
			      const struct relay_session_assist_hooks *h);

/* ---- the cluster (docs/cluster.md) ----
 * What the bus and the leases tell the sessions (relay_bus.c). */
/* This node lost desktop's lease: its host and viewers are refused with
 * unavailable, so they reconnect to the node that serves it. */
void relay_session_lease_lost(struct relay *r, const char *desktop);
/* Another node took desktop (at url): viewers waiting here for its host
 * are redirected there. */
void relay_session_moved(struct relay *r, const char *desktop,
			 const char *url);
/* The bus was (re)subscribed, so a revoke or lease event may have been
 * missed: every collaborator is held to its permission again, and every
 * viewer waiting here for a host that came up elsewhere is sent there. */
void relay_session_resync(struct relay *r);
/* Sends json (taken) to desktop's host and owner if it is here. */
void relay_session_tell(struct relay *r, const char *desktop, char *json);
/* The desktop as the admin API shows it, owner_key included. */
struct json_t *relay_session_json(const struct relay_session *s);

/* Frees every session (shutdown, after all connections closed). */
void relay_session_free_all(struct relay *r);

#endif
