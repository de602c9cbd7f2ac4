/*
 * relay_map: chained string hash map; see the header.
 */
#include "relay/relay_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"

struct relay_map_entry {
	struct relay_map_entry *next;
	void *val;
	char key[];
};

static uint64_t relay_map_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

void relay_map_init(struct relay_map *m)
{
	m->nbuckets = 16;
	m->count = 0;
	m->bucket = relay_xcalloc(m->nbuckets, sizeof(*m->bucket));
}

void relay_map_free(struct relay_map *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct relay_map_entry *e = m->bucket[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->bucket);
	memset(m, 0, sizeof(*m));
}

static struct relay_map_entry **relay_map_slot(const struct relay_map *m,
					       const char *key)
{
	struct relay_map_entry **pp =
		&m->bucket[relay_map_hash(key) & (m->nbuckets - 1)];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

void *relay_map_get(const struct relay_map *m, const char *key)
{
	struct relay_map_entry *e = *relay_map_slot(m, key);

	return e ? e->val : NULL;
}

static void relay_map_grow(struct relay_map *m)
{
	size_t n = m->nbuckets * 2;
	struct relay_map_entry **b = relay_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct relay_map_entry *e = m->bucket[i], *next;

		for (; e; e = next) {
			size_t at = relay_map_hash(e->key) & (n - 1);

			next = e->next;
			e->next = b[at];
			b[at] = e;
		}
	}
	free(m->bucket);
	m->bucket = b;
	m->nbuckets = n;
}

void relay_map_put(struct relay_map *m, const char *key, void *val)
{
	struct relay_map_entry **pp = relay_map_slot(m, key), *e;
	size_t klen;

	if (*pp) {
		(*pp)->val = val;
		return;
	}
	klen = strlen(key) + 1;
	e = relay_xmalloc(sizeof(*e) + klen);
	memcpy(e->key, key, klen);
	e->val = val;
	e->next = NULL;
	*pp = e;
	if (++m->count > m->nbuckets)
		relay_map_grow(m);
}

void *relay_map_del(struct relay_map *m, const char *key)
{
	struct relay_map_entry **pp = relay_map_slot(m, key), *e = *pp;
	void *val;

	if (!e)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e);
	m->count--;
	return val;
}

void relay_map_each(const struct relay_map *m,
		    void (*fn)(const char *key, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct relay_map_entry *e = m->bucket[i]; e; e = e->next)
			fn(e->key, e->val, arg);
}
