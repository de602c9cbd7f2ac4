/*
 * relay_owner: the owner's requests and the desktop side's news; see the
 * header.
 */
#include "relay/relay_owner.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"
#include "relay/relay_assist.h"
#include "relay/relay_conn.h"
#include "relay/relay_session.h"

void relay_owner_tell(struct relay_session *s, char *json)
{
	if (!json)
		return;
	if (s->owner)
		relay_conn_send_json(s->owner, s->host ? relay_xstrdup(json) :
							 json);
	if (s->host)
		relay_conn_send_json(s->host, json);
	else if (!s->owner)
		free(json);
}

void relay_owner_notify(struct relay_session *s, const char *event,
			const char *message, const char *name)
{
	relay_owner_tell(s, relay_session_notify_json(event, message, name));
}

const char *relay_owner_via(const struct relay_conn *c)
{
	return c->role == RELAY_ROLE_OWNER ? "owner" : "";
}

void relay_owner_msg(struct relay_conn *c, const struct proto_ctrl *m)
{
	struct relay_session *s = c->session;

	switch (m->type) {
	case PROTO_MSG_SHARE:
	case PROTO_MSG_DISCARD:
	case PROTO_MSG_END:
	case PROTO_MSG_CONTROL:
	case PROTO_MSG_ASSIST_REQUEST:
	case PROTO_MSG_ASSIST_ACCEPT:
	case PROTO_MSG_ASSIST_DECLINE:
	case PROTO_MSG_ASSIST_END:
		break;
	default:
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		return;
	}
	/* The host carries out what its user decides: without it connected
	 * nothing could be told to it or shown to a guest. */
	if (!s->host) {
		relay_conn_send_error(c, -PROTO_E_OFFLINE, NULL);
		return;
	}
	relay_log("owner-request", "desktop=%s type=%s", s->desktop,
		  proto_msg_name(m->type));
	relay_session_host_msg(c, m);
}

/* ---- replay -------------------------------------------------------- */

static void relay_owner_replay_assist(struct relay_session *s,
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
		break; /* active: the guest slot below says it */
	}
}

void relay_owner_replay(struct relay_session *s, struct relay_conn *o)
{
	struct relay_conn *g = s->guest;

	if (s->code[0]) {
		char shown[PROTO_CODE_DISPLAY_LEN];

		proto_code_display(s->code, shown);
		relay_conn_send_json(o, proto_ctrl_build(PROTO_MSG_CODE,
			"{s:s}", "code", shown));
	}
	if (g && g->role == RELAY_ROLE_ASSIST)
		relay_session_notify(o, "assist_started",
				     "Remote assistance started.", g->who.user);
	else if (g)
		relay_session_notify(o, "collab_joined",
				     "Joined Shared Collaboration", g->name);
	if (g && g->role == RELAY_ROLE_GUEST && s->guest_control)
		relay_session_notify(o, "control_granted",
				     "Control granted to the collaborator.",
				     g->name);
	relay_owner_replay_assist(s, o);
}
