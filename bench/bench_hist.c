/*
 * bench_hist: log-bucketed latency histogram (see bench_hist.h).
 *
 * Bucket layout: values 0..127 map one to one onto buckets 0..127.  A
 * value v >= 128 with highest set bit e (7 <= e < 40) keeps its top
 * 1 + BENCH_HIST_SUB_BITS bits: bucket = 128 + (e - 7) * 64 + the 6 bits
 * below the top bit.  The bucket's upper edge is what a percentile
 * reports, so percentiles err upwards, never downwards.
 */
#include "bench/bench_hist.h"

#include <string.h>

void bench_hist_reset(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
}

static int bench_hist_index(uint64_t v)
{
	int e;

	if (v < 2 * BENCH_HIST_SUB)
		return (int)v;
	e = 63 - __builtin_clzll(v);
	if (e >= BENCH_HIST_MAX_EXP)
		return BENCH_HIST_BUCKETS - 1;
	return 2 * BENCH_HIST_SUB + (e - 7) * BENCH_HIST_SUB +
	       (int)((v >> (e - BENCH_HIST_SUB_BITS)) & (BENCH_HIST_SUB - 1));
}

/* The largest value that falls in bucket i. */
static int64_t bench_hist_upper(int i)
{
	int e, sub;
	uint64_t lo;

	if (i < 2 * BENCH_HIST_SUB)
		return i;
	e = 7 + (i - 2 * BENCH_HIST_SUB) / BENCH_HIST_SUB;
	sub = (i - 2 * BENCH_HIST_SUB) % BENCH_HIST_SUB;
	lo = (1ull << e) + ((uint64_t)sub << (e - BENCH_HIST_SUB_BITS));
	return (int64_t)(lo + (1ull << (e - BENCH_HIST_SUB_BITS)) - 1);
}

void bench_hist_add(struct bench_hist *h, int64_t us)
{
	if (us < 0)
		us = 0;
	if (h->count == 0 || us < h->min)
		h->min = us;
	if (us > h->max)
		h->max = us;
	h->count++;
	h->sum += (double)us;
	h->bucket[bench_hist_index((uint64_t)us)]++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	if (!src->count)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (int i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
}

int64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)(q * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->count)
		want = h->count;
	for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			int64_t up = bench_hist_upper(i);
			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}

void bench_hist_json(const struct bench_hist *h, FILE *f)
{
	fprintf(f,
		"{\"count\":%llu,\"mean\":%.1f,\"p50\":%lld,\"p90\":%lld,"
		"\"p99\":%lld,\"p999\":%lld,\"max\":%lld}",
		(unsigned long long)h->count,
		h->count ? h->sum / (double)h->count : 0.0,
		(long long)bench_hist_quantile(h, 0.50),
		(long long)bench_hist_quantile(h, 0.90),
		(long long)bench_hist_quantile(h, 0.99),
		(long long)bench_hist_quantile(h, 0.999),
		(long long)h->max);
}
