/*
 * relay_map: a string-keyed hash map of pointers.
 *
 * Sessions are found by desktop id and by collaboration code; with ten
 * thousand sessions that must not be a list walk.  Keys are copied in;
 * values are borrowed (the map never frees them).  Chained buckets,
 * doubled when the load passes one entry per bucket.
 */
#ifndef ASP_RELAY_MAP_H
#define ASP_RELAY_MAP_H

#include <stddef.h>

struct relay_map_entry;

struct relay_map {
	struct relay_map_entry **bucket;
	size_t nbuckets;   /* a power of two */
	size_t count;
};

void relay_map_init(struct relay_map *m);
/* Frees the entries and keys, not the values. */
void relay_map_free(struct relay_map *m);

void *relay_map_get(const struct relay_map *m, const char *key);
/* Sets key to val, replacing any previous value. */
void relay_map_put(struct relay_map *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *relay_map_del(struct relay_map *m, const char *key);

/* Calls fn for every entry; fn must not change the map. */
void relay_map_each(const struct relay_map *m,
		    void (*fn)(const char *key, void *val, void *arg), void *arg);

#endif
