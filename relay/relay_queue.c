/*
 * relay_queue: a growable ring of frame references; see the header.
 */
#include "relay/relay_queue.h"

#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"

#define RELAY_QUEUE_MIN 8

void relay_queue_init(struct relay_queue *q)
{
	memset(q, 0, sizeof(*q));
}

void relay_queue_free(struct relay_queue *q)
{
	while (q->count)
		relay_queue_pop(q);
	free(q->ring);
	memset(q, 0, sizeof(*q));
}

/* Doubles the ring, unrolling the entries to start at index 0. */
static void relay_queue_grow(struct relay_queue *q)
{
	uint32_t ncap = q->cap ? q->cap * 2 : RELAY_QUEUE_MIN;
	struct relay_frame **nring = relay_xmalloc(ncap * sizeof(*nring));

	for (uint32_t i = 0; i < q->count; i++)
		nring[i] = q->ring[(q->head + i) & (q->cap - 1)];
	free(q->ring);
	q->ring = nring;
	q->cap = ncap;
	q->head = 0;
}

void relay_queue_push(struct relay_queue *q, struct relay_frame *f)
{
	if (q->count == q->cap)
		relay_queue_grow(q);
	q->ring[(q->head + q->count) & (q->cap - 1)] = f;
	q->count++;
	q->bytes += f->len;
}

void relay_queue_pop(struct relay_queue *q)
{
	struct relay_frame *f;

	if (!q->count)
		return;
	f = q->ring[q->head];
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
	q->bytes -= f->len;
	q->sent_off = 0;
	relay_frame_unref(f);
}

uint32_t relay_queue_purge(struct relay_queue *q,
			   bool (*drop)(const struct relay_frame *f, void *arg),
			   void *arg, size_t *bytes_out)
{
	uint32_t keep = 0, removed = 0;
	uint32_t first = q->sent_off ? 1 : 0;

	/* Compact in place: entries [0, first) are never candidates. */
	keep = first;
	for (uint32_t i = first; i < q->count; i++) {
		uint32_t at = (q->head + i) & (q->cap - 1);
		struct relay_frame *f = q->ring[at];

		if (drop(f, arg)) {
			q->bytes -= f->len;
			if (bytes_out)
				*bytes_out += f->len;
			relay_frame_unref(f);
			removed++;
			continue;
		}
		q->ring[(q->head + keep) & (q->cap - 1)] = f;
		keep++;
	}
	q->count = keep;
	return removed;
}
