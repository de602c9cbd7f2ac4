/*
 * relay_audit: appends audit events to the store (relay_audit.h).
 */
#include "relay/relay_audit.h"

#include <stdlib.h>

#include "relay/relay.h"
#include "relay/relay_alloc.h"
#include "relay/relay_clock.h"
#include "relay/relay_events.h"
#include "relay/relay_log.h"

/* An event of the open batch, shown once the batch is stored. */
struct relay_audit_held {
	struct relay_audit_held *next;
	char *actor, *event, *desktop, *detail;
};

static char *relay_audit_dup(const char *s)
{
	return relay_xstrdup(s ? s : "");
}

void relay_audit(struct relay *r, const char *actor, const char *event,
		 const char *desktop, const char *detail)
{
	struct relay_store *st = r->store;
	struct relay_audit_held *h, **tail;

	if (st->ops->audit_append(st, relay_clock_s(r), actor, event, desktop,
				  detail) && !r->audit_batch)
		relay_log("store-error", "what=audit why=%s", st->ops->why(st));
	if (!r->audit_batch) {
		relay_events_publish(r, event, actor, desktop, detail);
		return;
	}
	h = relay_xcalloc(1, sizeof(*h));
	h->actor = relay_audit_dup(actor);
	h->event = relay_audit_dup(event);
	h->desktop = relay_audit_dup(desktop);
	h->detail = relay_audit_dup(detail);
	for (tail = &r->audit_held; *tail; tail = &(*tail)->next)
		;
	*tail = h;
}

int relay_audit_begin(struct relay *r)
{
	int err = r->store->ops->begin(r->store);

	r->audit_batch = !err;
	return err;
}

int relay_audit_commit(struct relay *r)
{
	int err = r->store->ops->commit(r->store);
	struct relay_audit_held *h = r->audit_held, *next;

	r->audit_batch = false;
	r->audit_held = NULL;
	for (; h; h = next) {
		next = h->next;
		if (!err)
			relay_events_publish(r, h->event, h->actor, h->desktop,
					     h->detail);
		free(h->actor);
		free(h->event);
		free(h->desktop);
		free(h->detail);
		free(h);
	}
	return err;
}
