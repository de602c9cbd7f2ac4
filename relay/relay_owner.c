/*
 * relay_owner: the owner's requests and the desktop side's news; see the
 * header.
 */
#include "relay/relay_owner.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"
#include "relay/relay_conn.h"

void relay_owner_tell(struct relay_session *s, char *json)
{
	/* Who gets a copy is decided before anything is sent: a send may
	 * change the session. */
	struct relay_conn *owner = s->owner, *host = s->host;

	if (!json) {
		relay_log_build_failed("to=owner+host");
		return;
	}
	if (owner)
		relay_conn_send_json(owner, host ? relay_xstrdup(json) : json);
	if (host)
		relay_conn_send_json(host, json);
	else if (!owner)
		free(json);
}

char *relay_owner_notify_json(const char *event, const char *message,
			      const char *name)
{
	if (name)
		return proto_ctrl_build(PROTO_MSG_NOTIFY, "{s:s, s:s, s:s}",
					"event", event, "message", message,
					"name", name);
	return proto_ctrl_build(PROTO_MSG_NOTIFY, "{s:s, s:s}", "event", event,
				"message", message);
}

char *relay_owner_guest_json(const char *event, const char *message,
			     const struct relay_conn *g)
{
	return proto_ctrl_build(PROTO_MSG_NOTIFY, "{s:s, s:s, s:s, s:s}",
				"event", event, "message", message, "name",
				g->name, "user", g->who.user);
}

void relay_owner_notify(struct relay_session *s, const char *event,
			const char *message, const char *name)
{
	relay_owner_tell(s, relay_owner_notify_json(event, message, name));
}

const char *relay_owner_via(const struct relay_conn *c)
{
	return c->role == RELAY_ROLE_OWNER ? "owner" : "";
}

/* ---- replay -------------------------------------------------------- */

void relay_owner_replay(struct relay_session *s, struct relay_conn *o)
{
	struct relay_conn *g = s->guest;

	if (s->code[0]) {
		char shown[PROTO_CODE_DISPLAY_LEN];

		proto_code_display(s->code, shown);
		relay_conn_send_json(
		    o,
		    proto_ctrl_build(PROTO_MSG_CODE, "{s:s}", "code", shown));
	}
	if (g && g->role == RELAY_ROLE_ASSIST)
		relay_conn_send_json(
		    o, relay_owner_notify_json("assist_started",
					       "Remote assistance started.",
					       g->who.user));
	else if (g)
		relay_conn_send_json(
		    o, relay_owner_guest_json("collab_joined",
					      "Joined Shared Collaboration", g));
	if (g && g->role == RELAY_ROLE_GUEST && s->guest_control)
		relay_conn_send_json(
		    o, relay_owner_notify_json(
			   "control_granted",
			   "Control granted to the collaborator.", g->name));
}
