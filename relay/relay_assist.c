/*
 * relay_assist: the remote assistance state machine; see the header.
 */
#include "relay/relay_assist.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "relay/relay_cluster.h"
#include "relay/relay_conn.h"
#include "relay/relay_guard.h"
#include "relay/relay_owner.h"
#include "relay/relay_session.h"

#define RELAY_ASSIST_ID_BYTES 8

static struct relay_session *relay_assist_session(struct relay *r,
						  const char *desktop)
{
	return relay_map_get(&r->by_desktop, desktop);
}

/* The desktop's session if this relay serves it (its host is here); in a
 * cluster a session without its host is only viewers waiting, and the
 * desktop lives on the node holding it. */
static struct relay_session *relay_assist_served(struct relay *r,
						 const char *desktop)
{
	struct relay_session *s = relay_assist_session(r, desktop);

	return s && s->host ? s : NULL;
}

/* Sends json (taken) to the desktop's host and owner: here, or on the
 * node that holds the desktop (a "tell" on the bus). */
static void relay_assist_send(struct relay *r, const char *desktop, char *json)
{
	struct relay_session *s = relay_cluster_on(r) ?
		relay_assist_served(r, desktop) :
		relay_assist_session(r, desktop);

	if (s || !relay_cluster_on(r) || !json) {
		if (s)
			relay_owner_tell(s, json);
		else
			free(json);
		return;
	}
	relay_cluster_publish(r, json_pack("{s:s, s:s, s:s}", "op", "tell",
					   "desktop", desktop, "json", json));
	free(json);
}

static void relay_assist_tell(struct relay *r, const struct relay_store_assist *a,
			      const char *event, const char *message)
{
	relay_assist_send(r, a->desktop, proto_ctrl_build(PROTO_MSG_NOTIFY,
		"{s:s, s:s, s:s}", "event", event, "message", message,
		"id", a->id));
}

/* A store failure is logged with its cause; the caller refuses. */
static void relay_assist_store_error(struct relay *r, int err)
{
	if (err == -PROTO_E_STORAGE || err == -PROTO_E_INTERNAL)
		relay_log("store-error", "why=%s", r->store->ops->why(r->store));
}

/* Moves a request to state in the store and the audit log, as one
 * change: a crash or a full disk leaves both or neither.  The move is
 * made only from the state a was loaded in: if another relay sharing
 * the store changed it since, the store refuses with -PROTO_E_STATE
 * and nothing is stored. */
static int relay_assist_move(struct relay *r, struct relay_store_assist *a,
			     enum relay_assist_state state, const char *actor,
			     const char *admin)
{
	struct relay_store *st = r->store;
	int err = relay_audit_begin(r);

	if (!err) {
		st->ops->assist_set_state(st, a->id, RELAY_ASSIST_BIT(a->state),
					  state, admin);
		relay_audit(r, actor, relay_assist_state_name(state),
			    a->desktop, a->id);
		err = relay_audit_commit(r);
	}
	if (err) {
		relay_assist_store_error(r, err);
		return err;
	}
	a->state = state;
	if (admin)
		snprintf(a->admin, sizeof(a->admin), "%s", admin);
	return 0;
}

static int relay_assist_load(struct relay *r, const char *id,
			     struct relay_store_assist *a)
{
	if (!id || strlen(id) > RELAY_STORE_ID_MAX)
		return -PROTO_E_NOT_FOUND;
	return r->store->ops->assist_get(r->store, id, a);
}

static void relay_assist_invite(struct relay *r, const struct relay_store_assist *a)
{
	relay_assist_send(r, a->desktop, proto_ctrl_build(PROTO_MSG_ASSIST_INVITE,
		"{s:s, s:s, s:s}", "id", a->id, "admin", a->admin,
		"initiator", a->initiator));
}

/* The desktop must be online with its guest slot free; *user (if not
 * NULL) gets the desktop's user.  A desktop another node holds is judged
 * by its entry in the cluster's list; the node that holds it has the
 * last word when the administrator joins. */
static int relay_assist_slot_free_for(struct relay *r, const char *desktop,
				      char *user, size_t user_len)
{
	struct relay_session *s = relay_assist_session(r, desktop);
	json_t *entry;
	char *text;
	int err;

	if ((s && s->host) || !relay_cluster_on(r)) {
		if (!s || !s->host)
			return -PROTO_E_OFFLINE;
		if (user)
			snprintf(user, user_len, "%s", s->user);
		return s->guest ? -PROTO_E_BUSY : 0;
	}
	err = relay_cluster_desktop(r, desktop, &text);
	if (err)
		return err == -PROTO_E_NOT_FOUND ? -PROTO_E_OFFLINE : err;
	entry = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_true(json_object_get(entry, "online")))
		err = -PROTO_E_OFFLINE;
	else if (!json_is_null(json_object_get(entry, "guest")))
		err = -PROTO_E_BUSY;
	if (!err && user)
		snprintf(user, user_len, "%s",
			 json_string_value(json_object_get(entry, "user")) ?
			 json_string_value(json_object_get(entry, "user")) : "");
	json_decref(entry);
	return err;
}

static int relay_assist_slot_free(struct relay *r, const char *desktop)
{
	return relay_assist_slot_free_for(r, desktop, NULL, 0);
}

int relay_assist_open(struct relay *r, const char *desktop,
		      struct relay_store_assist *out)
{
	return r->store->ops->assist_open_for(r->store, desktop, out);
}

static int relay_assist_create(struct relay *r, const char *desktop,
			       const char *user, const char *initiator,
			       enum relay_assist_state state, const char *admin,
			       struct relay_store_assist *a)
{
	unsigned char rnd[RELAY_ASSIST_ID_BYTES];
	int64_t now = relay_clock_s(r);
	int err;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -PROTO_E_INTERNAL;
	memset(a, 0, sizeof(*a));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(a->id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(a->desktop, sizeof(a->desktop), "%s", desktop);
	snprintf(a->user, sizeof(a->user), "%s", user);
	snprintf(a->initiator, sizeof(a->initiator), "%s", initiator);
	snprintf(a->admin, sizeof(a->admin), "%s", admin ? admin : "");
	a->requested_at = now;
	a->expires_at = now + RELAY_ASSIST_TTL_S;
	a->state = state;
	err = relay_audit_begin(r);
	if (!err) {
		r->store->ops->assist_create(r->store, a);
		relay_audit(r, admin ? admin : user, "assist-create", desktop,
			    a->id);
		err = relay_audit_commit(r);
	}
	if (err)
		relay_assist_store_error(r, err);
	return err;
}

/* ---- the user, on the desktop ------------------------------------- */

char *relay_assist_requested_json(struct relay *r,
				  const struct relay_store_assist *a)
{
	int64_t left = a->expires_at - relay_clock_s(r);

	return proto_ctrl_build(PROTO_MSG_NOTIFY,
		"{s:s, s:s, s:s, s:I, s:I}", "event", "assist_requested",
		"message", "Your request for help was sent to the administrators.",
		"id", a->id, "expires_at", (json_int_t)a->expires_at,
		"expires_in", (json_int_t)(left > 0 ? left : 0));
}

static void relay_assist_request(struct relay_conn *c)
{
	struct relay *r = c->relay;
	struct relay_session *s = c->session;
	struct relay_store_assist a;
	int err = relay_session_permitted(r, s->user, RELAY_PERM_HELP);

	if (err) {
		relay_conn_send_error(c, err, err == -PROTO_E_NO_PERMISSION ?
			"You need the permission \"Contact Administrator for Help\"." :
			NULL);
		return;
	}
	err = relay_assist_open(r, s->desktop, &a);
	if (err == -PROTO_E_NOT_FOUND)
		err = relay_assist_create(r, s->desktop, s->user, "user",
					  RELAY_ASSIST_PENDING, NULL, &a);
	if (err) {
		relay_conn_send_error(c, err, NULL);
		return;
	}
	relay_owner_tell(s, relay_assist_requested_json(r, &a));
}

static void relay_assist_user_accept(struct relay_conn *c, const char *id)
{
	struct relay *r = c->relay;
	struct relay_store_assist a;
	int err = relay_assist_load(r, id, &a);

	if (!err && (strcmp(a.desktop, c->session->desktop) != 0))
		err = -PROTO_E_NOT_FOUND;
	if (!err && a.state != RELAY_ASSIST_INVITED)
		err = -PROTO_E_STATE;
	if (!err)
		err = relay_assist_slot_free(r, a.desktop);
	if (!err)
		err = relay_assist_move(r, &a, RELAY_ASSIST_ACCEPTED,
					c->session->user, NULL);
	if (err) {
		relay_conn_send_error(c, err, NULL);
		return;
	}
	relay_assist_tell(r, &a, "assist_accepted", RELAY_ASSIST_ACCEPTED_MSG);
}

static void relay_assist_user_decline(struct relay_conn *c, const char *id)
{
	struct relay *r = c->relay;
	struct relay_store_assist a;
	int err = relay_assist_load(r, id, &a);

	if (!err && strcmp(a.desktop, c->session->desktop) != 0)
		err = -PROTO_E_NOT_FOUND;
	if (!err && a.state != RELAY_ASSIST_INVITED &&
	    a.state != RELAY_ASSIST_ACCEPTED)
		err = -PROTO_E_STATE;
	if (!err)
		err = relay_assist_move(r, &a, RELAY_ASSIST_DECLINED,
					c->session->user, NULL);
	if (err) {
		relay_conn_send_error(c, err, NULL);
		return;
	}
	relay_assist_tell(r, &a, "assist_declined", "Remote assistance was declined.");
}

/* Ends the session's active assistance, closing the administrator. */
static int relay_assist_finish(struct relay *r, struct relay_store_assist *a,
			       const char *actor)
{
	struct relay_session *s = relay_assist_session(r, a->desktop);
	int err = relay_assist_move(r, a, RELAY_ASSIST_ENDED, actor, NULL);

	if (err)
		return err;
	if ((!s || !s->host) && relay_cluster_on(r)) {
		/* The desktop's node closes its administrator and tells. */
		relay_cluster_publish(r, json_pack("{s:s, s:s, s:s}", "op",
			"assist_end", "desktop", a->desktop, "id", a->id));
		return 0;
	}
	relay_assist_ended(r, a->desktop, a->id);
	return 0;
}

void relay_assist_ended(struct relay *r, const char *desktop, const char *id)
{
	struct relay_session *s = relay_assist_session(r, desktop);
	struct relay_conn *admin;

	if (!s)
		return;
	/* The desktop side is told first: closing the administrator may
	 * free a session nobody else holds. */
	admin = !strcmp(s->assist_id, id) ? s->guest : NULL;
	if (!strcmp(s->assist_id, id))
		s->assist_id[0] = '\0';
	relay_owner_tell(s, proto_ctrl_build(PROTO_MSG_NOTIFY,
		"{s:s, s:s, s:s}", "event", "assist_ended", "message",
		"Remote assistance ended.", "id", id));
	if (admin)
		relay_conn_refuse(admin, -PROTO_E_ENDED,
				  "Remote assistance ended.");
}

static void relay_assist_user_end(struct relay_conn *c)
{
	struct relay *r = c->relay;
	struct relay_store_assist a;
	int err = relay_assist_open(r, c->session->desktop, &a);

	if (!err)
		err = relay_assist_finish(r, &a, c->session->user);
	if (err)
		relay_conn_send_error(c, err == -PROTO_E_NOT_FOUND ?
				      -PROTO_E_STATE : err,
				      "There is no remote assistance to end.");
}

void relay_assist_host_msg(struct relay_conn *c, const struct proto_ctrl *m)
{
	switch (m->type) {
	case PROTO_MSG_ASSIST_REQUEST:
		relay_assist_request(c);
		break;
	case PROTO_MSG_ASSIST_ACCEPT:
		relay_assist_user_accept(c, proto_ctrl_str(m, "id"));
		break;
	case PROTO_MSG_ASSIST_DECLINE:
		relay_assist_user_decline(c, proto_ctrl_str(m, "id"));
		break;
	case PROTO_MSG_ASSIST_END:
		relay_assist_user_end(c);
		break;
	default:
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		break;
	}
}

/* ---- the administrator -------------------------------------------- */

void relay_assist_join(struct relay_conn *c, const char *id)
{
	struct relay *r = c->relay;
	struct relay_store_assist a;
	struct relay_session *s;
	bool rejoin = false;
	int err = -PROTO_E_NO_PERMISSION;

	if (c->who.role == PROTO_ROLE_ADMIN)
		err = relay_assist_load(r, id, &a);
	if (err == -PROTO_E_NOT_FOUND)
		relay_guard_join_failed(r, c);
	/* The invitation is the invited administrator's alone. */
	if (!err && strcmp(a.admin, c->who.user) != 0)
		err = -PROTO_E_NO_PERMISSION;
	if (!err && a.state == RELAY_ASSIST_ACCEPTED &&
	    a.expires_at <= relay_clock_s(r))
		err = -PROTO_E_EXPIRED;
	rejoin = !err && a.state == RELAY_ASSIST_ACTIVE;
	if (!err && a.state != RELAY_ASSIST_ACCEPTED && !rejoin)
		err = a.state == RELAY_ASSIST_EXPIRED ? -PROTO_E_EXPIRED :
							-PROTO_E_STATE;
	/* Decided here, with the session in hand: the join was routed to
	 * the desktop's node, and a cluster's list may be out of date. */
	s = err ? NULL : relay_assist_served(r, a.desktop);
	if (!err)
		err = !s ? -PROTO_E_OFFLINE : s->guest ? -PROTO_E_BUSY : 0;
	/* Rejoining an active assistance (its administrator was sent to
	 * the desktop's new node) needs no change of state. */
	if (!err && !rejoin)
		err = relay_assist_move(r, &a, RELAY_ASSIST_ACTIVE,
					c->who.user, c->who.user);
	if (err) {
		relay_conn_refuse(c, err, err != -PROTO_E_NO_PERMISSION ? NULL :
				  c->who.role != PROTO_ROLE_ADMIN ?
				  "Only an administrator can give remote assistance." :
				  "This remote assistance invited another administrator.");
		return;
	}
	snprintf(s->assist_id, sizeof(s->assist_id), "%s", a.id);
	relay_session_attach_viewer(s, c, RELAY_ROLE_ASSIST);
	relay_owner_notify(s, "assist_started", "Remote assistance started.",
			   c->who.user);
}

void relay_assist_guest_left(struct relay_session *s)
{
	struct relay *r = s->relay;
	struct relay_store_assist a;

	if (!s->assist_id[0])
		return;
	if (relay_assist_load(r, s->assist_id, &a) == 0 &&
	    a.state == RELAY_ASSIST_ACTIVE)
		relay_assist_finish(r, &a, a.admin);
	s->assist_id[0] = '\0';
}

int relay_assist_accept(struct relay *r, const char *id, const char *admin,
			struct relay_store_assist *out)
{
	int err = relay_assist_load(r, id, out);

	if (!err && out->state != RELAY_ASSIST_PENDING)
		err = out->state == RELAY_ASSIST_EXPIRED ? -PROTO_E_EXPIRED :
							   -PROTO_E_STATE;
	if (!err)
		err = relay_assist_slot_free(r, out->desktop);
	if (!err)
		err = relay_assist_move(r, out, RELAY_ASSIST_INVITED, admin, admin);
	if (!err)
		relay_assist_invite(r, out);
	return err;
}

int relay_assist_decline(struct relay *r, const char *id, const char *admin,
			 struct relay_store_assist *out)
{
	int err = relay_assist_load(r, id, out);

	if (!err && out->state != RELAY_ASSIST_PENDING &&
	    out->state != RELAY_ASSIST_INVITED &&
	    out->state != RELAY_ASSIST_ACCEPTED)
		err = -PROTO_E_STATE;
	if (!err)
		err = relay_assist_move(r, out, RELAY_ASSIST_DECLINED, admin, admin);
	if (!err)
		relay_assist_tell(r, out, "assist_declined",
				  "Remote assistance was declined.");
	return err;
}

int relay_assist_end(struct relay *r, const char *id, const char *admin,
		     struct relay_store_assist *out)
{
	int err = relay_assist_load(r, id, out);

	if (!err && !(RELAY_ASSIST_BIT(out->state) & RELAY_ASSIST_OPEN))
		err = -PROTO_E_STATE;
	if (!err)
		err = relay_assist_finish(r, out, admin);
	return err;
}

int relay_assist_start(struct relay *r, const char *desktop,
		       const char *admin, struct relay_store_assist *out)
{
	char user[PROTO_TOKEN_ID_MAX + 1] = "";
	int err = relay_assist_slot_free_for(r, desktop, user, sizeof(user));

	if (!err)
		err = relay_session_permitted(r, user, RELAY_PERM_HELP);
	if (!err) {
		err = relay_assist_open(r, desktop, out);
		err = err == 0 ? -PROTO_E_STATE :
		      err == -PROTO_E_NOT_FOUND ? 0 : err;
	}
	if (err)
		return err;
	err = relay_assist_create(r, desktop, user, "admin",
				  RELAY_ASSIST_INVITED, admin, out);
	if (!err)
		relay_assist_invite(r, out);
	return err;
}

/* ---- expiry -------------------------------------------------------- */

#define RELAY_ASSIST_DUE_BATCH 16

void relay_assist_tick(struct relay *r)
{
	struct relay_store_assist due[RELAY_ASSIST_DUE_BATCH];
	unsigned n = 0;

	/* One indexed query for what is due, whatever the table holds; a
	 * full batch leaves the rest to the next tick, so a tick's work is
	 * bounded even when many requests expire together. */
	if (r->store->ops->assist_due(r->store, relay_clock_s(r), due,
				      RELAY_ASSIST_DUE_BATCH, &n)) {
		relay_log("store-error", "why=%s", r->store->ops->why(r->store));
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (relay_assist_move(r, &due[i], RELAY_ASSIST_EXPIRED, "relay",
				      NULL) == 0)
			relay_assist_tell(r, &due[i], "assist_expired",
				"Your request for help expired. Send a new one.");
	}
}

/* The desktop's owner joined: the open request's state, as the host
 * was told it. */
static void relay_assist_owner_joined(struct relay_session *s,
				      struct relay_conn *o)
{
	struct relay *r = s->relay;
	struct relay_store_assist a;

	if (relay_assist_open(r, s->desktop, &a) != 0)
		return;
	switch (a.state) {
	case RELAY_ASSIST_PENDING:
		relay_conn_send_json(o, relay_assist_requested_json(r, &a));
		break;
	case RELAY_ASSIST_INVITED:
		relay_conn_send_json(o, proto_ctrl_build(PROTO_MSG_ASSIST_INVITE,
			"{s:s, s:s, s:s}", "id", a.id, "admin", a.admin,
			"initiator", a.initiator));
		break;
	case RELAY_ASSIST_ACCEPTED:
		relay_conn_send_json(o, proto_ctrl_build(PROTO_MSG_NOTIFY,
			"{s:s, s:s, s:s}", "event", "assist_accepted", "message",
			RELAY_ASSIST_ACCEPTED_MSG, "id", a.id));
		break;
	default:
		break; /* active: relay_owner_replay named the administrator */
	}
}

static const struct relay_session_assist_hooks relay_assist_hooks = {
	.host_msg = relay_assist_host_msg,
	.join = relay_assist_join,
	.guest_left = relay_assist_guest_left,
	.owner_joined = relay_assist_owner_joined,
};

void relay_assist_init(struct relay *r)
{
	relay_session_set_assist(r, &relay_assist_hooks);
}
