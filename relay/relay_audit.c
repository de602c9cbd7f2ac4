/*
 * relay_audit: appends audit events to the store (relay_audit.h).
 */
#include "relay/relay_audit.h"

#include "relay/relay.h"
#include "relay/relay_clock.h"
#include "relay/relay_events.h"
#include "relay/relay_log.h"

void relay_audit(struct relay *r, const char *actor, const char *event,
		 const char *desktop, const char *detail)
{
	struct relay_store *st = r->store;

	if (st->ops->audit_append(st, relay_clock_s(r), actor, event, desktop,
				  detail))
		relay_log("store-error", "what=audit why=%s", st->ops->why(st));
	relay_events_publish(r, event, actor, desktop, detail);
}
