/*
 * relay_bus: what the other nodes of a cluster tell this one, handed to
 * the layers it concerns (relay_bus.h, docs/cluster.md).
 */
#include "relay/relay_bus.h"

#include <jansson.h>
#include <string.h>

#include "relay/relay.h"
#include "relay/relay_alloc.h"
#include "relay/relay_assist.h"
#include "relay/relay_cluster.h"
#include "relay/relay_events.h"
#include "relay/relay_session.h"

static const char *relay_bus_str(const json_t *msg, const char *key)
{
	const char *v = json_string_value(json_object_get(msg, key));

	return v ? v : "";
}

static void relay_bus_lost(struct relay *r, const char *desktop)
{
	relay_session_lease_lost(r, desktop);
}

static void relay_bus_msg(struct relay *r, const json_t *msg)
{
	const char *op = relay_bus_str(msg, "op");
	const char *desktop = relay_bus_str(msg, "desktop");

	if (!strcmp(op, "tell") && json_is_string(json_object_get(msg, "json")))
		relay_session_tell(r, desktop,
				   relay_xstrdup(relay_bus_str(msg, "json")));
	else if (!strcmp(op, "assist_end"))
		relay_assist_ended(r, desktop, relay_bus_str(msg, "id"));
	else if (!strcmp(op, "revoke"))
		relay_session_revoke_collab(r, relay_bus_str(msg, "user"));
	else if (!strcmp(op, "lease") && relay_bus_str(msg, "url")[0])
		relay_session_moved(r, desktop, relay_bus_str(msg, "url"));
	else if (!strcmp(op, "event"))
		relay_events_deliver(r, json_deep_copy(msg));
	else
		relay_log("bus-unknown", "op=%s from=%s", op,
			  relay_bus_str(msg, "from"));
}

static void relay_bus_events_out(struct relay *r, json_t *j)
{
	json_t *copy = json_deep_copy(j);

	json_object_set_new(copy, "op", json_string("event"));
	relay_cluster_publish(r, copy);
}

static const struct relay_cluster_hooks relay_bus_hooks = {
	.lost = relay_bus_lost,
	.bus = relay_bus_msg,
	.resync = relay_session_resync,
};

void relay_bus_init(struct relay *r)
{
	relay_cluster_set_hooks(r, &relay_bus_hooks);
	r->events_out = relay_bus_events_out;
}
