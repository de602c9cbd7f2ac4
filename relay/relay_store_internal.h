/*
 * relay_store_internal: what the store backends share (relay_store.c),
 * so that both check an argument the same way.  Not for callers of the
 * store, who see relay_store.h only.
 */
#ifndef ASP_RELAY_STORE_INTERNAL_H
#define ASP_RELAY_STORE_INTERNAL_H

#include <stdbool.h>

#include "relay/relay_store.h"

/* A non-empty id of at most RELAY_STORE_ID_MAX bytes. */
bool relay_store_id_ok(const char *id);

/* A request assist_create may store: ids, initiator and state valid. */
bool relay_store_assist_valid(const struct relay_store_assist *a);

/* A from-mask assist_set_state accepts: some state, and no bit beyond
 * them. */
bool relay_store_from_ok(unsigned from);

#endif
