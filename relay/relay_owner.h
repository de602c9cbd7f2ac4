/*
 * relay_owner: the desktop's own user, acting from its viewer.
 *
 * The owner's viewer (joined with the owner key) may do what the host
 * does for its desktop: share, discard, end, grant and revoke control,
 * ask for remote assistance, accept or decline an invitation and end
 * assistance.  Those requests run through the very same rules as the
 * host's own (relay_session, relay_assist), so they are refused with the
 * same codes and words; only the refusal goes back to the owner alone.
 * What changes the desktop's state is told to the desktop side, host and
 * owner alike, so each of them always knows what the other did, and an
 * owner who opens the page late is brought up to date (relay_owner_replay,
 * and relay_assist for the open request).
 *
 * The requests themselves are dispatched by relay_session; this module is
 * below it and below relay_assist, and calls neither.
 */
#ifndef ASP_RELAY_OWNER_H
#define ASP_RELAY_OWNER_H

#include "relay/relay.h"

/* Sends a built control message to the session's host and owner (either
 * may be absent); takes ownership of json. */
void relay_owner_tell(struct relay_session *s, char *json);

/* Builds a notification {"type":"notify"} (name may be NULL). */
char *relay_owner_notify_json(const char *event, const char *message,
			      const char *name);

/* A notification about collaborator g: the name g chose and, beside it,
 * the user id g signed in as. */
char *relay_owner_guest_json(const char *event, const char *message,
			     const struct relay_conn *g);

/* A notification for the desktop side (name may be NULL). */
void relay_owner_notify(struct relay_session *s, const char *event,
			const char *message, const char *name);

/* The audit detail that marks a request the owner made from its viewer
 * ("owner"), "" for the host's own. */
const char *relay_owner_via(const struct relay_conn *c);

/* Brings a newly joined owner up to date: the standing code, who is in
 * the guest slot and with what control. */
void relay_owner_replay(struct relay_session *s, struct relay_conn *owner);

#endif
