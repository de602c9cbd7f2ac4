/*
 * relay_retain: deletes, in small batches, what the operator asked the
 * relay not to keep.
 *
 * Finished assistance requests (ended, declined, expired) are kept for
 * --retain-assist days after they were made (default 30; 0 keeps them
 * forever), audit events for --retain-audit days (default 0: the audit
 * log is kept whole unless the operator asks).  Each tick deletes at most
 * RELAY_RETAIN_BATCH rows of each kind, so a backlog of a million rows
 * costs many short ticks, never one long one; once a batch comes back
 * short the next look is a minute later.
 */
#ifndef ASP_RELAY_RETAIN_H
#define ASP_RELAY_RETAIN_H

#include "relay/relay.h"

#define RELAY_RETAIN_BATCH 500
#define RELAY_RETAIN_IDLE_S 60

/* Called once a second from the event loop. */
void relay_retain_tick(struct relay *r);

#endif
