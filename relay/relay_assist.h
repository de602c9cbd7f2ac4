/*
 * relay_assist: remote assistance between a desktop's user and an
 * administrator.
 *
 * The request's state lives in the store (relay_store.h), so it survives
 * a restart with its original expiry; the session only remembers which
 * request its guest slot serves while an administrator is connected.
 *
 *   user asks (assist_request)      -> pending, expires 180 min later
 *   admin accepts (API)             -> invited: the desktop is invited
 *   admin starts (API)              -> invited (admin-initiated)
 *   user accepts (assist_accept)    -> accepted: the admin may join
 *   admin's viewer joins            -> active: guest slot, with control
 *   user or admin ends, admin leaves-> ended
 *   declined by either side         -> declined
 *   not active 180 minutes after it
 *   was made (pending, invited or
 *   accepted)                       -> expired, the desktop is told
 *
 * An invitation is bound to its administrator (the one who accepted or
 * started it): only that administrator's viewer may join it.
 *
 * Assistance and collaboration exclude each other through the one guest
 * slot: while a guest is in, accepting, starting or joining assistance
 * is refused with the busy message, and a collaborator is refused while
 * an administrator is in.
 */
#ifndef ASP_RELAY_ASSIST_H
#define ASP_RELAY_ASSIST_H

#include "relay/relay.h"

/* How long a request waits for an administrator. */
#define RELAY_ASSIST_TTL_S (180 * 60)

#define RELAY_ASSIST_ACCEPTED_MSG \
	"You accepted remote assistance; the administrator can now connect."

/* Registers assistance with the session layer (relay_session_set_assist).
 * Call once, after relay_session_init. */
void relay_assist_init(struct relay *r);

/* Host messages (or the owner's, relay_owner.h) assist_request,
 * assist_accept, assist_decline,
 * assist_end. */
void relay_assist_host_msg(struct relay_conn *c, const struct proto_ctrl *m);

/* An administrator's viewer joins with {"type":"join","assist":id}. */
void relay_assist_join(struct relay_conn *c, const char *id);

/* The assisting administrator's viewer left or dropped. */
void relay_assist_guest_left(struct relay_session *s);

/* Admin API actions.  Each returns 0 or a negative -PROTO_E_* and, on
 * success, the request's new state in *out. */
int relay_assist_accept(struct relay *r, const char *id, const char *admin,
			struct relay_store_assist *out);
int relay_assist_decline(struct relay *r, const char *id, const char *admin,
			 struct relay_store_assist *out);
int relay_assist_end(struct relay *r, const char *id, const char *admin,
		     struct relay_store_assist *out);
int relay_assist_start(struct relay *r, const char *desktop,
		       const char *admin, struct relay_store_assist *out);

/* The desktop's open request (one at a time): 0, -PROTO_E_NOT_FOUND
 * when there is none, or the store's error. */
int relay_assist_open(struct relay *r, const char *desktop,
		      struct relay_store_assist *out);

/* The assist_requested notification for a, with the time left. */
char *relay_assist_requested_json(struct relay *r,
				  const struct relay_store_assist *a);

/* The assistance id on desktop ended (here, or told by the node whose
 * administrator API ended it): its administrator is closed with ended
 * and the host and owner told.  Quiet if the desktop is not here. */
void relay_assist_ended(struct relay *r, const char *desktop, const char *id);

/* Expires requests past their time, at most 16 a call (found by an
 * indexed query, whatever the store holds); called once a second. */
void relay_assist_tick(struct relay *r);

#endif
