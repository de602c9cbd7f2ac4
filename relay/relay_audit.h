/*
 * relay_audit: the audit log's one writer.
 *
 * Every state change a person could ask about later (codes, joins,
 * permissions, assistance) is appended to the store's audit log with the
 * relay's clock.  A store failure is logged, never fatal: the state
 * change it records has already happened.  Each event is also published
 * to the console's live stream (relay_events.h).  A change made of
 * several writes goes between relay_audit_begin and relay_audit_commit
 * (the store's begin and commit, relay_store.h): a failure fails the
 * commit too, so a change and its event are stored together or not at
 * all, and the batch's events reach the console only once it is stored
 * (a change another relay of a cluster won is never shown).
 */
#ifndef ASP_RELAY_AUDIT_H
#define ASP_RELAY_AUDIT_H

struct relay;

/* Appends an audit event (actor, event, desktop, detail) and publishes
 * it. */
void relay_audit(struct relay *r, const char *actor, const char *event,
		 const char *desktop, const char *detail);

/* The store's begin and commit, with the batch's events held until the
 * commit stored them (then published) or failed (then dropped).  Each
 * returns 0 or the store's -PROTO_E_*. */
int relay_audit_begin(struct relay *r);
int relay_audit_commit(struct relay *r);

#endif
