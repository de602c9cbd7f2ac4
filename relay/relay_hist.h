/*
 * relay_hist: fixed histograms with power-of-two buckets, for /metrics.
 *
 * Recording sits on the forwarding path, once per message, so it is a
 * count-leading-zeros and three increments: no allocation, no floating
 * point, no lock (one thread).  Bucket i holds the values up to
 * 2^(shift + i) units; values beyond the last bucket count in +Inf only.
 * /metrics prints them in Prometheus histogram form (cumulative _bucket
 * lines with le in the base unit, then _sum and _count).
 */
#ifndef ASP_RELAY_HIST_H
#define ASP_RELAY_HIST_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_HIST_MAX 24

struct relay_hist {
	uint8_t shift;  /* the first bucket's bound is 2^shift units */
	uint8_t n;      /* buckets, at most RELAY_HIST_MAX */
	double scale;   /* units to the base unit (1e-6: microseconds) */
	uint64_t count, sum;
	uint64_t b[RELAY_HIST_MAX + 1]; /* b[n]: beyond the last bound */
};

/* An empty histogram of n buckets from 2^shift units up. */
void relay_hist_init(struct relay_hist *h, unsigned shift, unsigned n,
		     double scale);

static inline void relay_hist_add(struct relay_hist *h, uint64_t v)
{
	unsigned i = 0;

	if (v > (1ull << h->shift))
		i = 64u - (unsigned)__builtin_clzll(v - 1) - h->shift;
	h->b[i < h->n ? i : h->n]++;
	h->count++;
	h->sum += v;
}

/* Bucket i's upper bound in the base unit. */
double relay_hist_bound(const struct relay_hist *h, unsigned i);

/* Bucket i's count plus those of the buckets below it. */
uint64_t relay_hist_cumulative(const struct relay_hist *h, unsigned i);

#endif
