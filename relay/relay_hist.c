/*
 * relay_hist: see relay_hist.h.  Only reading (for /metrics) is here;
 * recording is inline in the header.
 */
#include "relay/relay_hist.h"

#include <string.h>

void relay_hist_init(struct relay_hist *h, unsigned shift, unsigned n,
		     double scale)
{
	memset(h, 0, sizeof(*h));
	h->shift = (uint8_t)shift;
	h->n = (uint8_t)(n < RELAY_HIST_MAX ? n : RELAY_HIST_MAX);
	h->scale = scale;
}

double relay_hist_bound(const struct relay_hist *h, unsigned i)
{
	return (double)(1ull << (h->shift + i)) * h->scale;
}

uint64_t relay_hist_cumulative(const struct relay_hist *h, unsigned i)
{
	uint64_t c = 0;

	for (unsigned k = 0; k <= i && k <= h->n; k++)
		c += h->b[k];
	return c;
}
