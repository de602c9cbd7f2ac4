/*
 * relay_retain: batched deletion of old rows; see the header.
 */
#include "relay/relay_retain.h"

#define RELAY_DAY_S (24 * 60 * 60)

/* Deletes one batch; true if it was full (there may be more). */
static bool relay_retain_batch(struct relay *r, const char *what,
			       int (*prune)(struct relay_store *, int64_t,
					    unsigned, unsigned *),
			       int days)
{
	unsigned n = 0;
	int err;

	if (days <= 0)
		return false;
	err = prune(r->store, relay_clock_s(r) - (int64_t)days * RELAY_DAY_S,
		    RELAY_RETAIN_BATCH, &n);
	if (err) {
		relay_log("store-error", "why=%s", r->store->ops->why(r->store));
		return false;
	}
	if (n)
		relay_log("retain", "%s=%u", what, n);
	return n == RELAY_RETAIN_BATCH;
}

void relay_retain_tick(struct relay *r)
{
	const struct relay_store_ops *ops = r->store->ops;
	int64_t now = relay_clock_s(r);
	bool more;

	if (now < r->retain_next_s)
		return;
	more = relay_retain_batch(r, "assist", ops->assist_prune,
				  r->cfg.retain_assist_days);
	more |= relay_retain_batch(r, "audit", ops->audit_prune,
				   r->cfg.retain_audit_days);
	r->retain_next_s = more ? now : now + RELAY_RETAIN_IDLE_S;
}
