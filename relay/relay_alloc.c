/*
 * relay_alloc: allocation wrappers that abort on out-of-memory; see the
 * header for why.
 */
#include "relay/relay_alloc.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void relay_oom(size_t n)
{
	fprintf(stderr, "asp-relay: out of memory allocating %zu bytes\n", n);
	abort();
}

/* Larger than any message the relay accepts by default (4 MiB). */
#define RELAY_MMAP_THRESHOLD (16u << 20)

void relay_alloc_tune(void)
{
	mallopt(M_MMAP_THRESHOLD, RELAY_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, 2 * RELAY_MMAP_THRESHOLD);
}

#define RELAY_TRIM_FREE_MIN (64u << 20)

void relay_alloc_trim(void)
{
	struct mallinfo2 mi = mallinfo2();

	if (mi.fordblks >= RELAY_TRIM_FREE_MIN)
		malloc_trim(0);
}

void *relay_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		relay_oom(n);
	return p;
}

void *relay_xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		relay_oom(count * size);
	return p;
}

void *relay_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		relay_oom(n);
	return q;
}

char *relay_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = relay_xmalloc(n);
	memcpy(d, s, n);
	return d;
}
