/*
 * bench_hist: an HDR-style histogram of latencies in microseconds.
 *
 * Every sample is kept (counted, not stored): values below 128 us get a
 * bucket each, larger values fall in log-spaced buckets with 64 linear
 * sub-buckets per power of two, so any percentile is exact to within
 * 1/64 (1.6 %) of its value, whatever the number of samples.  Values
 * above 2^40 us (12 days) are clamped.  The histogram is a fixed-size
 * struct with no allocation, so it cannot fail.
 */
#ifndef ASP_BENCH_HIST_H
#define ASP_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_SUB (1 << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_MAX_EXP 40
#define BENCH_HIST_BUCKETS \
	(2 * BENCH_HIST_SUB + (BENCH_HIST_MAX_EXP - 7) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	int64_t min, max;
	double sum;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

void bench_hist_reset(struct bench_hist *h);
/* Records one value (negative values, from clock skew, count as 0). */
void bench_hist_add(struct bench_hist *h, int64_t us);
/* Adds every sample of src into dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at quantile q (0..1): the upper edge of the bucket holding
 * it, capped by the maximum seen; 0 when empty. */
int64_t bench_hist_quantile(const struct bench_hist *h, double q);
/* Writes {"count":..,"mean":..,"p50":..,"p90":..,"p99":..,"p999":..,
 * "max":..} (microseconds) to f. */
void bench_hist_json(const struct bench_hist *h, FILE *f);

#endif
