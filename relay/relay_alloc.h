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

/* Tunes glibc's malloc for the relay's frames; call once at start-up.
 * By default every buffer of 128 KiB or more is its own mmap, and free()
 * gives the top of the heap back as soon as 128 KiB are free there, so a
 * stream of 256 KiB messages (or a burst of 40 KiB ones) faulted in and
 * zeroed fresh pages for every message: a quarter of the relay's CPU in
 * clear_page and page faults.  Frames now come from the heap and stay
 * mapped; memory goes back to the system in one malloc_trim after a
 * session ends (relay_main.c), not on every free. */
void relay_alloc_tune(void);

/* Gives free heap memory back to the system when more than
 * RELAY_TRIM_FREE_MIN is free: after a busy session ends glibc held 143 MB
 * with no session at all (9 MB after malloc_trim).  Below that the free
 * memory is kept for the sessions still streaming, which would otherwise
 * fault in and zero fresh pages for their next frames (perf: 4 % of the
 * relay's CPU at 100 sessions when every session end trimmed). */
void relay_alloc_trim(void);

void *relay_xmalloc(size_t n);
void *relay_xcalloc(size_t count, size_t size);
void *relay_xrealloc(void *p, size_t n);
char *relay_xstrdup(const char *s);

#endif
