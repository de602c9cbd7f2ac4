/*
 * relay_store: what every store backend shares: the names of the
 * assistance states (relay_store.h) and the argument checks of
 * relay_store_internal.h.
 */
#include "relay/relay_store_internal.h"

#include <string.h>

#include "protocol/proto_error.h"

static const char *const STATE_NAMES[RELAY_ASSIST__COUNT] = {
	"pending", "invited", "accepted", "active",
	"ended",   "declined", "expired",
};

const char *relay_assist_state_name(enum relay_assist_state s)
{
	return (unsigned)s < RELAY_ASSIST__COUNT ? STATE_NAMES[s] : "?";
}

int relay_assist_state_parse(const char *s, enum relay_assist_state *out)
{
	for (int i = 0; s && i < RELAY_ASSIST__COUNT; i++) {
		if (strcmp(s, STATE_NAMES[i]) == 0) {
			*out = (enum relay_assist_state)i;
			return 0;
		}
	}
	return -PROTO_E_MALFORMED;
}

bool relay_store_id_ok(const char *id)
{
	return id && *id && strnlen(id, RELAY_STORE_ID_MAX + 1) <=
				    RELAY_STORE_ID_MAX;
}

bool relay_store_assist_valid(const struct relay_store_assist *a)
{
	return relay_store_id_ok(a->id) && relay_store_id_ok(a->desktop) &&
	       relay_store_id_ok(a->user) &&
	       (strcmp(a->initiator, "user") == 0 ||
		strcmp(a->initiator, "admin") == 0) &&
	       (unsigned)a->state < RELAY_ASSIST__COUNT;
}

bool relay_store_from_ok(unsigned from)
{
	return from != 0 && (from & ~RELAY_ASSIST_ALL) == 0;
}
