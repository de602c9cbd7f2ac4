/*
 * relay_alloc: out-of-memory is decided here, once.
 *
 * The relay cannot do anything useful for its sessions once malloc fails,
 * and half-handled allocation failures are where servers corrupt state.
 * Like Redis's zmalloc, these wrappers log and abort instead.  Sizes that
 * come from the network are bounded before they reach these calls.
 */
#ifndef ASP_RELAY_ALLOC_H
#define ASP_RELAY_ALLOC_H

#include <stddef.h>

void *relay_xmalloc(size_t n);
void *relay_xcalloc(size_t count, size_t size);
void *relay_xrealloc(void *p, size_t n);
char *relay_xstrdup(const char *s);

#endif
