/*
 * relay_queue: a consumer's FIFO of frame references.
 *
 * Each connection the relay writes to has one queue.  It stores only
 * pointers (the frames are shared), grows its ring by doubling and never
 * shrinks it below its initial size, so the steady state allocates
 * nothing per message.  The queue counts its bytes and entries; the
 * policy of what to drop when a consumer falls behind lives with the
 * caller (relay_conn.c), which knows the message kinds.
 *
 * The head may be partly written (sent_off > 0): purge never removes a
 * partly written head, because a WebSocket message cannot be abandoned
 * halfway.
 */
#ifndef ASP_RELAY_QUEUE_H
#define ASP_RELAY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/relay_frame.h"

struct relay_queue {
	struct relay_frame **ring;
	uint32_t cap;      /* ring slots, a power of two */
	uint32_t head;     /* index of the oldest entry */
	uint32_t count;
	size_t bytes;      /* sum of len of queued frames */
	size_t sent_off;   /* bytes of the head already written */
};

void relay_queue_init(struct relay_queue *q);

/* Releases every queued reference and the ring. */
void relay_queue_free(struct relay_queue *q);

/* Appends f, taking over the caller's reference. */
void relay_queue_push(struct relay_queue *q, struct relay_frame *f);

/* The oldest entry, or NULL when empty. */
static inline struct relay_frame *relay_queue_head(const struct relay_queue *q)
{
	return q->count ? q->ring[q->head] : NULL;
}

/* Drops the head's reference and moves on; resets sent_off. */
void relay_queue_pop(struct relay_queue *q);

/* Removes every entry for which drop(f, arg) is true, except a partly
 * written head; keeps the order of the rest.  Returns how many were
 * removed and adds their bytes to *bytes_out when it is not NULL. */
uint32_t relay_queue_purge(struct relay_queue *q,
			   bool (*drop)(const struct relay_frame *f, void *arg),
			   void *arg, size_t *bytes_out);

#endif
