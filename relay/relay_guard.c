/*
 * relay_guard: names, token times, failed-join limits and connection
 * limits; see the header.
 */
#include "relay/relay_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "relay/relay.h"
#include "relay/relay_alloc.h"


/* ---- counts ---------------------------------------------------------- */

/* Counts are stored in the map's pointer itself: no entry to free. */
static size_t relay_count_get(const struct relay_map *m, const char *key)
{
	return (size_t)(uintptr_t)relay_map_get(m, key);
}

static void relay_count_add(struct relay_map *m, const char *key, int delta)
{
	size_t n = relay_count_get(m, key);

	if (delta < 0 && n <= (size_t)-delta) {
		relay_map_del(m, key);
		return;
	}
	relay_map_put(m, key, (void *)(uintptr_t)(n + (size_t)delta));
}

/* A fixed window of failures: `fails` since `until - window`. */
struct relay_fail {
	uint32_t fails;
	uint64_t until_us;
	bool tripped; /* audited once per window */
};

static void relay_free_fail(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	free(val);
}

void relay_guard_init(struct relay_guard *g)
{
	relay_map_init(&g->prehello);
	relay_map_init(&g->user_conns);
	relay_map_init(&g->token_desktops);
	relay_map_init(&g->fail_user);
	relay_map_init(&g->fail_addr);
}

void relay_guard_free(struct relay_guard *g)
{
	relay_map_each(&g->fail_user, relay_free_fail, NULL);
	relay_map_each(&g->fail_addr, relay_free_fail, NULL);
	relay_map_free(&g->fail_addr);
	relay_map_free(&g->fail_user);
	relay_map_free(&g->token_desktops);
	relay_map_free(&g->user_conns);
	relay_map_free(&g->prehello);
}

/* ---- names ------------------------------------------------------------ */

/* Decodes one UTF-8 character at s (strict: no overlongs, surrogates or
 * values above U+10FFFF); its length, or 0 for an invalid sequence. */
static size_t relay_utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t n, i;
	uint32_t v, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0)
		n = 2, v = s[0] & 0x1F, min = 0x80;
	else if ((s[0] & 0xF0) == 0xE0)
		n = 3, v = s[0] & 0x0F, min = 0x800;
	else if ((s[0] & 0xF8) == 0xF0)
		n = 4, v = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

/* Characters that would let a name hide or reorder what a person reads:
 * controls, and the bidi embeddings, overrides and isolates. */
static bool relay_char_dropped(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) ||
	       (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F;
}

size_t relay_guard_name(char *dst, size_t cap, const char *src)
{
	static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t out = 0;

	if (!cap)
		return 0;
	while (*s) {
		uint32_t cp;
		size_t n = relay_utf8_decode(s, &cp);
		const char *piece = (const char *)s;
		size_t len = n;

		if (!n) {
			piece = replacement;
			len = 3;
			n = 1;
		} else if (relay_char_dropped(cp)) {
			s += n;
			continue;
		}
		if (out + len >= cap)
			break; /* cut before the character, never inside it */
		memcpy(dst + out, piece, len);
		out += len;
		s += n;
	}
	dst[out] = '\0';
	return out;
}

/* ---- build failures --------------------------------------------------- */

/* ---- tokens ------------------------------------------------------------ */

int relay_guard_token_times(const struct relay *r,
			    const struct proto_claims *who, char *why,
			    size_t why_len)
{
	int64_t now = relay_clock_s(r);

	if ((int64_t)who->iat > now + r->cfg.token_skew_s) {
		snprintf(why, why_len,
			 "Sign-in failed: the token was issued "
			 "in the future (more than %d s ahead of the relay's "
			 "clock).",
			 r->cfg.token_skew_s);
		return -PROTO_E_UNAUTHORIZED;
	}
	if (who->exp > who->iat &&
	    who->exp - who->iat > (uint64_t)r->cfg.max_token_life_s) {
		snprintf(why, why_len,
			 "Sign-in failed: the token lives longer "
			 "than the relay accepts (%d s at most).",
			 r->cfg.max_token_life_s);
		return -PROTO_E_UNAUTHORIZED;
	}
	return 0;
}

/* ---- connection limits ------------------------------------------------- */

int relay_guard_open(struct relay *r, struct relay_conn *c)
{
	struct relay_guard_hold *h = &c->hold;

	if (!lws_get_peer_simple(c->wsi, h->addr, sizeof(h->addr)))
		snprintf(h->addr, sizeof(h->addr), "?");
	relay_count_add(&r->guard.prehello, h->addr, 1);
	h->prehello = true;
	if (r->cfg.max_prehello_per_addr &&
	    relay_count_get(&r->guard.prehello, h->addr) >
		r->cfg.max_prehello_per_addr) {
		relay_log("limit", "prehello address=%s", h->addr);
		return -PROTO_E_TOO_MANY;
	}
	return 0;
}

int relay_guard_user_check(struct relay *r, const struct relay_conn *c)
{
	if (r->cfg.max_user_conns &&
	    relay_count_get(&r->guard.user_conns, c->who.user) >=
		r->cfg.max_user_conns) {
		relay_log("limit", "user-conns user=%s", c->who.user);
		return -PROTO_E_TOO_MANY;
	}
	return 0;
}

void relay_guard_hello_done(struct relay *r, struct relay_conn *c,
			    const char *token)
{
	struct relay_guard_hold *h = &c->hold;
	const char *dot = token ? strrchr(token, '.') : NULL;

	if (h->prehello) {
		relay_count_add(&r->guard.prehello, h->addr, -1);
		h->prehello = false;
	}
	if (!h->user) {
		relay_count_add(&r->guard.user_conns, c->who.user, 1);
		h->user = true;
	}
	snprintf(h->token_key, sizeof(h->token_key), "%s", dot ? dot + 1 : "");
}

/* The window of key in m, restarted when it is over. */
static struct relay_fail *relay_fail_get(struct relay_map *m, const char *key,
					 uint64_t now_us, bool create)
{
	struct relay_fail *f = relay_map_get(m, key);

	if (f && now_us >= f->until_us) {
		free(relay_map_del(m, key));
		f = NULL;
	}
	if (!f && create) {
		f = relay_xcalloc(1, sizeof(*f));
		relay_map_put(m, key, f);
	}
	return f;
}

static int64_t relay_fail_wait(struct relay_map *m, const char *key,
			       uint32_t burst, uint64_t now_us)
{
	struct relay_fail *f = relay_fail_get(m, key, now_us, false);

	if (!burst || !f || f->fails < burst)
		return 0;
	return (int64_t)((f->until_us - now_us + 999999) / 1000000);
}

int relay_guard_join_check(struct relay *r, const struct relay_conn *c,
			   int64_t *retry_after_s)
{
	const struct relay_config *cfg = &r->cfg;
	uint64_t now = relay_now_us();
	int64_t wu = relay_fail_wait(&r->guard.fail_user, c->who.user,
				     cfg->join_fail_user, now);
	int64_t wa = relay_fail_wait(&r->guard.fail_addr, c->hold.addr,
				     cfg->join_fail_addr, now);

	*retry_after_s = wu > wa ? wu : wa;
	if (*retry_after_s)
		return -PROTO_E_RATE_LIMITED;
	if (cfg->max_token_desktops && c->hold.token_key[0] &&
	    relay_count_get(&r->guard.token_desktops, c->hold.token_key) >=
		cfg->max_token_desktops) {
		relay_log("limit", "token-desktops user=%s", c->who.user);
		return -PROTO_E_TOO_MANY;
	}
	return 0;
}

void relay_guard_joined(struct relay *r, struct relay_conn *c)
{
	struct relay_guard_hold *h = &c->hold;

	if (h->token || !h->token_key[0])
		return;
	relay_count_add(&r->guard.token_desktops, h->token_key, 1);
	h->token = true;
}

static void relay_fail_count(struct relay *r, struct relay_map *m,
			     const char *key, uint32_t burst, const char *what,
			     const char *actor)
{
	uint64_t now = relay_now_us();
	struct relay_fail *f = relay_fail_get(m, key, now, true);
	char detail[128];

	if (!f->fails)
		f->until_us = now + (uint64_t)r->cfg.join_cooldown_s * 1000000;
	f->fails++;
	if (!burst || f->fails < burst || f->tripped)
		return;
	f->tripped = true;
	snprintf(detail, sizeof(detail), "%s=%s failures=%u", what, key,
		 f->fails);
	relay_log("rate-limited", "%s", detail);
	relay_audit(r, actor, "rate-limited", "", detail);
}

void relay_guard_join_failed(struct relay *r, const struct relay_conn *c)
{
	relay_fail_count(r, &r->guard.fail_user, c->who.user,
			 r->cfg.join_fail_user, "user", c->who.user);
	relay_fail_count(r, &r->guard.fail_addr, c->hold.addr,
			 r->cfg.join_fail_addr, "address", c->who.user);
}

void relay_guard_close(struct relay *r, struct relay_conn *c)
{
	struct relay_guard_hold *h = &c->hold;

	if (h->prehello)
		relay_count_add(&r->guard.prehello, h->addr, -1);
	if (h->user)
		relay_count_add(&r->guard.user_conns, c->who.user, -1);
	if (h->token)
		relay_count_add(&r->guard.token_desktops, h->token_key, -1);
	h->prehello = h->user = h->token = false;
}

/* ---- pruning ------------------------------------------------------------ */

struct relay_prune {
	uint64_t now_us;
	char (*keys)[RELAY_GUARD_ADDR_MAX + 64];
	size_t n, cap;
};

static void relay_prune_collect(const char *key, void *val, void *arg)
{
	struct relay_prune *p = arg;
	const struct relay_fail *f = val;

	if (p->now_us < f->until_us)
		return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->keys = relay_xrealloc(p->keys, p->cap * sizeof(*p->keys));
	}
	snprintf(p->keys[p->n++], sizeof(p->keys[0]), "%s", key);
}

static void relay_prune(struct relay_map *m, uint64_t now_us)
{
	struct relay_prune p = {.now_us = now_us};

	/* relay_map_each must not change the map: collect, then delete. */
	relay_map_each(m, relay_prune_collect, &p);
	for (size_t i = 0; i < p.n; i++)
		free(relay_map_del(m, p.keys[i]));
	free(p.keys);
}

void relay_guard_tick(struct relay *r)
{
	uint64_t now = relay_now_us();

	relay_prune(&r->guard.fail_user, now);
	relay_prune(&r->guard.fail_addr, now);
}
