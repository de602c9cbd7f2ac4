/*
 * relay_cluster: leases, the desktop list and the bus in Redis; see the
 * header and docs/cluster.md.
 *
 * Keys: asp:node:ID (this node's URL while it lives), asp:lease:DESKTOP
 * (the holding node's id), asp:desktops (desktop -> JSON entry), and the
 * channel asp:bus.  Every lease operation is one Lua script, so each is
 * one atomic step on the server.
 */
#include "relay/relay_cluster.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_url.h"
#include "relay/relay.h"
#include "relay/relay_alloc.h"
#include "relay/relay_redis.h"

#define RELAY_BUS "asp:bus"
#define RELAY_DESKTOPS "asp:desktops"
/* After a failed call, no new connection attempt for this long. */
#define RELAY_REDIS_RETRY_US (500 * 1000)

/* Takes the lease if free or ours: {1} taken; {0, holder, pttl, url}. */
static const char RELAY_LUA_CLAIM[] =
	"local h = redis.call('GET', KEYS[1]) "
	"if not h or h == ARGV[1] then "
	"  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {1} end "
	"return {0, h, redis.call('PTTL', KEYS[1]), "
	"        redis.call('GET', 'asp:node:' .. h) or ''}";
/* Where the desktop is: {} nowhere; {holder, pttl, url}. */
static const char RELAY_LUA_LOCATE[] =
	"local h = redis.call('GET', KEYS[1]) "
	"if not h then return {} end "
	"return {h, redis.call('PTTL', KEYS[1]), "
	"        redis.call('GET', 'asp:node:' .. h) or ''}";
/* Renews the node key (KEYS[1], ARGV[3] its URL) and every lease of
 * KEYS[2..] still ours: an array of 1 (renewed) or 0 (lost), one per
 * lease. */
static const char RELAY_LUA_RENEW[] =
	"redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2]) local out = {} "
	"for i = 2, #KEYS do "
	"  if redis.call('GET', KEYS[i]) == ARGV[1] then "
	"    out[i - 1] = redis.call('PEXPIRE', KEYS[i], ARGV[2]) "
	"  else out[i - 1] = 0 end "
	"end return out";
/* Gives a lease up if ours, with the desktop's entry. */
static const char RELAY_LUA_RELEASE[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then "
	"  redis.call('DEL', KEYS[1]) redis.call('HDEL', KEYS[2], ARGV[2]) "
	"  return 1 end return 0";
/* Writes the desktop's entry if the lease is ours. */
static const char RELAY_LUA_DESCRIBE[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then "
	"  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) return 1 end "
	"return 0";

/* The entries of desktops with a lease; the others (their node died
 * before it could remove them) are removed. */
static const char RELAY_LUA_LIST[] =
	"local all = redis.call('HGETALL', KEYS[1]) local out = {} "
	"for i = 1, #all, 2 do "
	"  if redis.call('EXISTS', 'asp:lease:' .. all[i]) == 1 then "
	"    out[#out + 1] = all[i] out[#out + 1] = all[i + 1] "
	"  else redis.call('HDEL', KEYS[1], all[i]) end "
	"end return out";

/* One desktop's entry if its lease exists (else it is removed). */
static const char RELAY_LUA_ENTRY[] =
	"if redis.call('EXISTS', 'asp:lease:' .. ARGV[1]) == 1 then "
	"  return redis.call('HGET', KEYS[1], ARGV[1]) end "
	"redis.call('HDEL', KEYS[1], ARGV[1]) return false";

#define RELAY_CL_OF(t, field)                                               \
	((struct relay_cluster *)(void *)((char *)(t) -                      \
		offsetof(struct relay_cluster, field)))

struct relay_lease {
	char desktop[RELAY_DESKTOP_MAX + 1];
	uint64_t valid_until_us; /* monotonic */
	uint64_t epoch;          /* which claim this is */
};

/* Leases renewed by one script call: a round sends as many as it needs. */
#define RELAY_RENEW_BATCH 256

/* One call on its way: its reply may come after a lease is gone. */
struct relay_renewal {
	struct relay_cluster *cl;
	uint64_t sent_us;
	size_t n;
	struct {
		char desktop[RELAY_DESKTOP_MAX + 1];
		uint64_t epoch;
	} lease[RELAY_RENEW_BATCH];
};

struct relay_cluster {
	struct relay *relay;
	const struct relay_cluster_hooks *hooks;
	char id[RELAY_NODE_ID_MAX + 1];
	char url[RELAY_NODE_URL_MAX + 1];
	char host[256];
	int port, db;
	uint32_t lease_ms, timeout_ms;

	redisContext *sync;
	uint64_t sync_retry_us; /* monotonic: no attempt before */
	bool sync_up;
	bool said_down;         /* redis-error logged since the last up */
	bool was_up;            /* what relay_cluster_note last logged */

	redisAsyncContext *cmd, *sub;
	bool cmd_up, sub_up;
	unsigned renewing;      /* renewal replies still to come */
	uint64_t round_sent_us; /* monotonic: when they were sent */
	struct relay_timer renew_timer, fence_timer, async_timer;
	void (*probe_cb)(struct relay *r); /* a probe's PING is out */

	struct relay_map leases; /* desktop -> struct relay_lease */
	uint64_t epoch;
	bool closing;
	struct relay_cluster_stats stats;
};

/* A lease counts as valid until lease_ms less this margin has passed
 * since the renewal Redis confirmed was sent: the margin covers the
 * renewal's way to Redis, timers that fire late, and a loop held up by
 * one synchronous call that waits its whole --redis-timeout-ms (twice:
 * a reconnect, then the call).  relay_cluster_open refuses settings that
 * leave less than half the lease valid. */
static uint64_t relay_cluster_safe_us(const struct relay_cluster *cl)
{
	uint64_t margin_ms = cl->lease_ms / 10;

	if (margin_ms < 2ull * cl->timeout_ms)
		margin_ms = 2ull * cl->timeout_ms;
	return ((uint64_t)cl->lease_ms - margin_ms) * 1000;
}

/* ---- the URL and the node ------------------------------------------ */

static void relay_cluster_default_url(struct relay_cluster *cl,
				      const struct relay *r, int port)
{
	const char *host = r->cfg.listen_host;

	if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
		/* Right only for nodes on one machine: every node would send
		 * clients to its own 127.0.0.1. */
		relay_log("cluster-warning",
			  "listen=%s node-url=ws://127.0.0.1:%d why=give --node-url for nodes on several machines",
			  host[0] ? host : "*", port);
		host = "127.0.0.1";
	}
	snprintf(cl->url, sizeof(cl->url), strchr(host, ':') ? "%s://[%s]:%d" :
		 "%s://%s:%d", r->tls ? "wss" : "ws", host, port);
}

static void relay_cluster_default_id(struct relay_cluster *cl)
{
	unsigned char rnd[4];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(cl->id, sizeof(cl->id), "n-%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3]);
}

/* ---- the synchronous connection ------------------------------------ */

static struct timeval relay_cluster_tv(uint32_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

static bool relay_cluster_healthy(const struct relay_cluster *cl);

/* Logs redis-up and redis-down as relay_cluster_redis_up changes. */
static void relay_cluster_note(struct relay_cluster *cl, const char *why)
{
	bool up = cl->sub_up && cl->cmd_up && relay_cluster_healthy(cl);

	if (up == cl->was_up)
		return;
	cl->was_up = up;
	if (up)
		relay_log("redis-up", "node=%s redis=%s:%d", cl->id, cl->host,
			  cl->port);
	else
		relay_log("redis-down", "node=%s redis=%s:%d why=%s", cl->id,
			  cl->host, cl->port, why);
}

static void relay_cluster_sync_down(struct relay_cluster *cl, const char *what)
{
	if (!cl->said_down)
		relay_log("redis-error", "node=%s redis=%s:%d why=%s", cl->id,
			  cl->host, cl->port, what);
	cl->said_down = true;
	cl->stats.redis_errors++;
	if (cl->sync)
		redisFree(cl->sync);
	cl->sync = NULL;
	cl->sync_up = false;
	cl->sync_retry_us = relay_mono_us() + RELAY_REDIS_RETRY_US;
}

/* The synchronous connection, made again when it is gone and the wait
 * after the last failure is over; NULL when Redis cannot be asked. */
static redisContext *relay_cluster_sync(struct relay_cluster *cl)
{
	redisReply *rep;

	if (cl->sync)
		return cl->sync;
	if (relay_mono_us() < cl->sync_retry_us)
		return NULL;
	cl->sync = redisConnectWithTimeout(cl->host, cl->port,
					   relay_cluster_tv(cl->timeout_ms));
	if (!cl->sync || cl->sync->err) {
		relay_cluster_sync_down(cl, cl->sync ? cl->sync->errstr :
						       "out of memory");
		return NULL;
	}
	redisSetTimeout(cl->sync, relay_cluster_tv(cl->timeout_ms));
	rep = redisCommand(cl->sync, "SELECT %d", cl->db);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		relay_cluster_sync_down(cl, rep ? rep->str : cl->sync->errstr);
		freeReplyObject(rep);
		return NULL;
	}
	freeReplyObject(rep);
	cl->sync_up = true;
	cl->said_down = false;
	return cl->sync;
}


static uint64_t relay_cluster_round_us(const struct relay_cluster *cl)
{
	return (uint64_t)cl->lease_ms * 1000 / 3;
}

/* Whether Redis looks alive without asking it: the renewal connection
 * is there (or being made) and its last round was answered in time.  A
 * hung Redis (stopped, or a network that drops packets) shows as a
 * round left unanswered; from then on no caller waits for a timeout. */
/* A round of renewals unanswered for a third of the lease, judged at
 * the start of this loop turn: an answer that came while the loop was
 * busy (a burst of changes, each a round trip) is read in the next turn,
 * before any other socket (relay_loop_attach_redis gives the Redis
 * watchers the highest priority), so a busy loop is not taken for a
 * hung Redis. */
static bool relay_cluster_overdue(const struct relay_cluster *cl)
{
	uint64_t turn = relay_turn_mono_us();

	return cl->renewing && turn > cl->round_sent_us &&
	       turn - cl->round_sent_us >= relay_cluster_round_us(cl);
}

/* Whether Redis looks alive without asking it: the renewal connection
 * is up and its last round was answered in time.  A hung Redis (stopped,
 * or a network that drops packets) shows as a round left unanswered; a
 * dead one as the connection gone.  From then on no caller waits for a
 * timeout. */
static bool relay_cluster_healthy(const struct relay_cluster *cl)
{
	return cl->cmd && cl->cmd_up && !relay_cluster_overdue(cl);
}

/* One command on the synchronous connection; NULL (and the connection
 * dropped) when Redis did not answer or answered an error. */
static redisReply *relay_cluster_call(struct relay_cluster *cl,
				      const char *fmt, ...)
{
	bool reused = cl->sync != NULL;
	/* A node leaving asks anyway (its renewal connection is gone by
	 * then): a failure pauses the next attempts, so a hung Redis costs
	 * the goodbye one timeout, not one per lease. */
	redisContext *c = relay_cluster_healthy(cl) || cl->closing ?
			  relay_cluster_sync(cl) : NULL;
	redisReply *rep;
	uint64_t t0;
	va_list ap;

	if (!c) {
		cl->stats.redis_errors++;
		return NULL;
	}
	t0 = relay_mono_us();
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	/* A connection Redis closed while it sat idle (a Redis restart)
	 * never saw the command: made again at once, and sent once more. */
	if (!rep && reused && relay_redis_closed(c)) {
		redisFree(cl->sync);
		cl->sync = NULL;
		c = relay_cluster_sync(cl);
		if (!c)
			return NULL; /* relay_cluster_sync said why */
		va_start(ap, fmt);
		rep = redisvCommand(c, fmt, ap);
		va_end(ap);
	}
	relay_hist_add(&cl->stats.rtt_us, relay_mono_us() - t0);
	if (!rep) {
		relay_cluster_sync_down(cl, c->errstr);
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		relay_log("redis-error", "node=%s why=%s", cl->id, rep->str);
		cl->stats.redis_errors++;
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* ---- leases --------------------------------------------------------- */

static void relay_cluster_fence_arm(struct relay_cluster *cl);

static struct relay_lease *relay_cluster_lease(const struct relay_cluster *cl,
					       const char *desktop)
{
	return relay_map_get(&cl->leases, desktop);
}

/* The lease is no longer ours: forget it and tell the layers above. */
static void relay_cluster_lose(struct relay_cluster *cl, const char *desktop,
			       const char *why)
{
	struct relay_lease *l = relay_map_del(&cl->leases, desktop);
	char d[RELAY_DESKTOP_MAX + 1];

	if (!l)
		return;
	snprintf(d, sizeof(d), "%s", l->desktop);
	free(l);
	cl->stats.losses++;
	relay_log("lease-lost", "node=%s desktop=%s why=%s", cl->id, d, why);
	if (cl->hooks && cl->hooks->lost)
		cl->hooks->lost(cl->relay, d);
}

/* Reads a {holder, pttl, url} tail of a script's array reply from i. */
static enum relay_where relay_cluster_where(const struct relay_cluster *cl,
					    const redisReply *rep, size_t i,
					    char *url, size_t url_len)
{
	const redisReply *h, *ttl, *u;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < i + 3)
		return RELAY_WHERE_NOWHERE;
	h = rep->element[i];
	ttl = rep->element[i + 1];
	u = rep->element[i + 2];
	if (h->type != REDIS_REPLY_STRING)
		return RELAY_WHERE_NOWHERE;
	if (!strcmp(h->str, cl->id))
		return RELAY_WHERE_HERE;
	/* A live node renews every third of the lease, so its lease never
	 * has less than two thirds left, give or take a late timer; one
	 * with less than that, less a tenth, missed a renewal (it died, or
	 * lost Redis), and one without its node key is gone.  Taking a live
	 * node for a stale one costs only a wait: the next look sees it
	 * renewed and redirects.  A node URL equal to ours is a setup error
	 * (two nodes given one --node-url): never a redirect to ourselves. */
	if (u->type != REDIS_REPLY_STRING || !u->len || !strcmp(u->str, cl->url) ||
	    ttl->type != REDIS_REPLY_INTEGER ||
	    ttl->integer < (long long)cl->lease_ms * 2 / 3 -
			   (long long)cl->lease_ms / 10)
		return RELAY_WHERE_STALE;
	snprintf(url, url_len, "%s", u->str);
	return RELAY_WHERE_THERE;
}

int relay_cluster_claim(struct relay *r, const char *desktop,
			enum relay_where *where, char *url, size_t url_len)
{
	struct relay_cluster *cl = r->cluster;
	uint64_t sent = relay_mono_us();
	redisReply *rep;
	struct relay_lease *l;

	rep = relay_cluster_call(cl, "EVAL %s 1 asp:lease:%s %s %u",
				 RELAY_LUA_CLAIM, desktop, cl->id, cl->lease_ms);
	if (!rep)
		return -PROTO_E_UNAVAILABLE;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return -PROTO_E_INTERNAL;
	}
	if (rep->element[0]->integer != 1) {
		*where = relay_cluster_where(cl, rep, 1, url, url_len);
		freeReplyObject(rep);
		/* Another node holds what this one thought it held: this
		 * node stops serving it at once. */
		if (relay_cluster_lease(cl, desktop))
			relay_cluster_lose(cl, desktop, "taken");
		if (*where == RELAY_WHERE_THERE)
			cl->stats.redirects++;
		/* HERE cannot come back from a refused claim; NOWHERE means
		 * the holder's lease ran out in between: try again. */
		if (*where == RELAY_WHERE_HERE || *where == RELAY_WHERE_NOWHERE)
			*where = RELAY_WHERE_STALE;
		return 0;
	}
	freeReplyObject(rep);
	l = relay_cluster_lease(cl, desktop);
	if (!l) {
		l = relay_xcalloc(1, sizeof(*l));
		snprintf(l->desktop, sizeof(l->desktop), "%s", desktop);
		l->epoch = ++cl->epoch;
		relay_map_put(&cl->leases, l->desktop, l);
		relay_log("lease-taken", "node=%s desktop=%s", cl->id, desktop);
	}
	l->valid_until_us = sent + relay_cluster_safe_us(cl);
	relay_cluster_fence_arm(cl);
	*where = RELAY_WHERE_HERE;
	return 0;
}

int relay_cluster_locate(struct relay *r, const char *desktop,
			 enum relay_where *where, char *url, size_t url_len)
{
	struct relay_cluster *cl = r->cluster;
	redisReply *rep;

	if (relay_cluster_lease(cl, desktop)) {
		*where = RELAY_WHERE_HERE;
		return 0;
	}
	rep = relay_cluster_call(cl, "EVAL %s 1 asp:lease:%s", RELAY_LUA_LOCATE,
				 desktop);
	if (!rep)
		return -PROTO_E_UNAVAILABLE;
	*where = relay_cluster_where(cl, rep, 0, url, url_len);
	freeReplyObject(rep);
	/* Held by this node in Redis but not here: a claim of ours whose
	 * renewal was refused as we gave it up; it runs out by itself. */
	if (*where == RELAY_WHERE_HERE)
		*where = RELAY_WHERE_STALE;
	if (*where == RELAY_WHERE_THERE)
		cl->stats.redirects++;
	return 0;
}

void relay_cluster_release(struct relay *r, const char *desktop)
{
	struct relay_cluster *cl = r->cluster;
	struct relay_lease *l = relay_map_del(&cl->leases, desktop);
	redisReply *rep;

	if (!l)
		return;
	free(l);
	rep = relay_cluster_call(cl, "EVAL %s 2 asp:lease:%s " RELAY_DESKTOPS
				 " %s %s", RELAY_LUA_RELEASE, desktop, cl->id,
				 desktop);
	/* Unreachable Redis: the lease runs out by itself. */
	freeReplyObject(rep);
	relay_log("lease-released", "node=%s desktop=%s", cl->id, desktop);
}

bool relay_cluster_holds(const struct relay *r, const char *desktop)
{
	const struct relay_lease *l = r->cluster ?
		relay_cluster_lease(r->cluster, desktop) : NULL;

	return l && l->valid_until_us > relay_mono_us();
}

void relay_cluster_drop(struct relay *r, const char *desktop)
{
	relay_cluster_lose(r->cluster, desktop, "taken");
}

size_t relay_cluster_leases(const struct relay *r)
{
	return r->cluster ? r->cluster->leases.count : 0;
}

/* ---- fencing --------------------------------------------------------- */

struct relay_fence_walk {
	uint64_t now, next;
	char (*expired)[RELAY_DESKTOP_MAX + 1];
	size_t n, cap;
};

static void relay_fence_one(const char *key, void *val, void *arg)
{
	struct relay_fence_walk *w = arg;
	const struct relay_lease *l = val;

	(void)key;
	if (l->valid_until_us <= w->now) {
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 16;
			w->expired = relay_xrealloc(w->expired,
						    w->cap * sizeof(*w->expired));
		}
		snprintf(w->expired[w->n++], sizeof(*w->expired), "%s",
			 l->desktop);
	} else if (!w->next || l->valid_until_us < w->next) {
		w->next = l->valid_until_us;
	}
}

/* Drops every lease whose time is up, then sleeps until the next one's. */
static void relay_cluster_fence(struct relay_cluster *cl)
{
	struct relay_fence_walk w = { .now = relay_mono_us() };

	relay_map_each(&cl->leases, relay_fence_one, &w);
	for (size_t i = 0; i < w.n; i++)
		relay_cluster_lose(cl, w.expired[i], "not-renewed");
	free(w.expired);
	if (w.next)
		relay_timer_start(&cl->fence_timer, w.next - w.now);
	else
		relay_timer_stop(&cl->fence_timer);
}

static void relay_cluster_fence_due(struct relay_timer *t)
{
	relay_cluster_fence(RELAY_CL_OF(t, fence_timer));
}

static void relay_cluster_fence_arm(struct relay_cluster *cl)
{
	if (!relay_timer_active(&cl->fence_timer))
		relay_cluster_fence(cl);
}

/* ---- the asynchronous connections ----------------------------------- */

static void relay_cluster_bus_msg(struct relay_cluster *cl, const char *text,
				  size_t len)
{
	json_error_t jerr;
	json_t *msg = json_loadb(text, len, 0, &jerr);
	const char *from = json_string_value(json_object_get(msg, "from"));

	if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "op"))) {
		relay_log("bus-malformed", "node=%s", cl->id);
	} else if (from && strcmp(from, cl->id) != 0 && cl->hooks &&
		   cl->hooks->bus) {
		cl->hooks->bus(cl->relay, msg);
	}
	json_decref(msg);
}

static void relay_cluster_sub_cb(redisAsyncContext *ac, void *reply, void *arg)
{
	struct relay_cluster *cl = arg;
	redisReply *rep = reply;

	(void)ac;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
		return;
	if (rep->element[0]->type == REDIS_REPLY_STRING &&
	    !strcmp(rep->element[0]->str, "subscribe")) {
		cl->sub_up = true;
		relay_log("bus-subscribed", "node=%s", cl->id);
		relay_cluster_note(cl, "");
		if (cl->hooks && cl->hooks->resync && !cl->closing)
			cl->hooks->resync(cl->relay);
		return;
	}
	if (rep->element[2]->type == REDIS_REPLY_STRING)
		relay_cluster_bus_msg(cl, rep->element[2]->str,
				      rep->element[2]->len);
}

static void relay_cluster_async_free(redisAsyncContext *ac);

static void relay_cluster_async_gone(const redisAsyncContext *ac, int status)
{
	struct relay_cluster *cl = ac->data;

	(void)status;
	if (!cl)
		return;
	if (ac == cl->cmd) {
		cl->cmd = NULL;
		cl->cmd_up = false;
		cl->renewing = 0;
		/* The bus goes with it and is made again with it, so a
		 * subscriber on a connection that died quietly is not kept. */
		relay_cluster_async_free(cl->sub);
		cl->sub = NULL;
		cl->sub_up = false;
	} else if (ac == cl->sub) {
		cl->sub = NULL;
		cl->sub_up = false;
	}
	cl->stats.redis_errors++;
	relay_cluster_note(cl, ac->errstr[0] ? ac->errstr : "connection lost");
	if (!cl->closing)
		relay_timer_start(&cl->async_timer, RELAY_REDIS_RETRY_US);
}

static void relay_cluster_async_connected(const redisAsyncContext *ac,
					  int status)
{
	struct relay_cluster *cl = ac->data;

	if (status != REDIS_OK) { /* hiredis frees it and calls no more */
		relay_cluster_async_gone(ac, status);
		return;
	}
	if (ac == cl->cmd) {
		cl->cmd_up = true;
		/* Redis is back: the next call need not wait out the pause
		 * after the synchronous connection's last failure. */
		cl->sync_retry_us = 0;
	}
	relay_cluster_note(cl, "");
}

static redisAsyncContext *relay_cluster_async_new(struct relay_cluster *cl)
{
	redisAsyncContext *ac = redisAsyncConnect(cl->host, cl->port);

	if (!ac)
		return NULL;
	if (ac->err ||
	    relay_loop_attach_redis(cl->relay->loop, ac) != 0) {
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = cl;
	/* hiredis has no timeouts of its own on these connections: TCP
	 * keepalive finds one whose peer vanished (a machine gone). */
	redisEnableKeepAlive(&ac->c);
	redisAsyncSetConnectCallback(ac, relay_cluster_async_connected);
	redisAsyncSetDisconnectCallback(ac, relay_cluster_async_gone);
	redisAsyncCommand(ac, NULL, NULL, "SELECT %d", cl->db);
	return ac;
}

/* Makes whichever asynchronous connection is missing. */
static void relay_cluster_async_up(struct relay_cluster *cl)
{
	if (!cl->cmd)
		cl->cmd = relay_cluster_async_new(cl);
	if (!cl->sub) {
		cl->sub = relay_cluster_async_new(cl);
		if (cl->sub)
			redisAsyncCommand(cl->sub, relay_cluster_sub_cb, cl,
					  "SUBSCRIBE " RELAY_BUS);
	}
	if (!cl->cmd || !cl->sub)
		relay_timer_start(&cl->async_timer, RELAY_REDIS_RETRY_US);
}

static void relay_cluster_async_due(struct relay_timer *t)
{
	relay_cluster_async_up(RELAY_CL_OF(t, async_timer));
}

/* ---- renewals -------------------------------------------------------- */

static void relay_cluster_renewed(redisAsyncContext *ac, void *reply, void *arg)
{
	struct relay_renewal *rn = arg;
	struct relay_cluster *cl = rn->cl;
	redisReply *rep = reply;

	(void)ac;
	if (cl->renewing && !--cl->renewing)
		relay_cluster_note(cl, "");
	for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY &&
			   i < rn->n && i < rep->elements && !cl->closing; i++) {
		struct relay_lease *l = relay_cluster_lease(cl,
							    rn->lease[i].desktop);
		const redisReply *e = rep->element[i];

		if (!l || l->epoch != rn->lease[i].epoch ||
		    e->type != REDIS_REPLY_INTEGER)
			continue;
		if (e->integer == 1) {
			l->valid_until_us = rn->sent_us +
					    relay_cluster_safe_us(cl);
			cl->stats.renewals++;
		} else {
			relay_cluster_lose(cl, rn->lease[i].desktop, "taken");
		}
	}
	free(rn);
}

/* Sends one call renewing the node key and rn's leases (taken). */
static void relay_cluster_renew_send(struct relay_cluster *cl,
				     struct relay_renewal *rn)
{
	/* EVAL script numkeys, the node key, the leases' keys, then the
	 * script's ARGV: the node id, the lease time and the node URL. */
	size_t argc = 4 + rn->n + 3, k = 0;
	const char **argv = relay_xmalloc(argc * sizeof(*argv));
	char (*keys)[RELAY_DESKTOP_MAX + 16] =
		relay_xmalloc((rn->n + 1) * sizeof(*keys));
	char nkeys[24], ttl[16];

	snprintf(nkeys, sizeof(nkeys), "%zu", rn->n + 1);
	snprintf(ttl, sizeof(ttl), "%u", cl->lease_ms);
	snprintf(keys[0], sizeof(*keys), "asp:node:%s", cl->id);
	argv[k++] = "EVAL";
	argv[k++] = RELAY_LUA_RENEW;
	argv[k++] = nkeys;
	argv[k++] = keys[0];
	for (size_t i = 0; i < rn->n; i++) {
		snprintf(keys[i + 1], sizeof(*keys), "asp:lease:%s",
			 rn->lease[i].desktop);
		argv[k++] = keys[i + 1];
	}
	argv[k++] = cl->id;
	argv[k++] = ttl;
	argv[k++] = cl->url;
	/* hiredis copies the command out before this returns. */
	if (redisAsyncCommandArgv(cl->cmd, relay_cluster_renewed, rn, (int)k,
				  argv, NULL) == REDIS_OK)
		cl->renewing++;
	else
		free(rn);
	free(keys);
	free(argv);
}

struct relay_renew_walk {
	struct relay_cluster *cl;
	struct relay_renewal *rn; /* being filled */
	uint64_t now;
};

static struct relay_renewal *relay_renewal_new(struct relay_cluster *cl,
					       uint64_t now)
{
	struct relay_renewal *rn = relay_xcalloc(1, sizeof(*rn));

	rn->cl = cl;
	rn->sent_us = now;
	return rn;
}

static void relay_renew_one(const char *key, void *val, void *arg)
{
	struct relay_renew_walk *w = arg;
	const struct relay_lease *l = val;
	struct relay_renewal *rn = w->rn;

	(void)key;
	snprintf(rn->lease[rn->n].desktop, sizeof(rn->lease[rn->n].desktop),
		 "%s", l->desktop);
	rn->lease[rn->n++].epoch = l->epoch;
	if (rn->n == RELAY_RENEW_BATCH) {
		relay_cluster_renew_send(w->cl, rn);
		w->rn = relay_renewal_new(w->cl, w->now);
	}
}

/* Every third of the lease: the node key and every lease, RELAY_RENEW_BATCH
 * leases a call, pipelined on the asynchronous connection, so the loop
 * never waits for them.  A call still unanswered from the last round
 * means Redis is slow or gone: no new round piles up behind it (fencing
 * drops what runs out). */
static void relay_cluster_renew(struct relay_timer *t)
{
	struct relay_cluster *cl = RELAY_CL_OF(t, renew_timer);
	struct relay_renew_walk w = { .cl = cl, .now = relay_mono_us() };

	relay_timer_start(t, relay_cluster_round_us(cl));
	relay_cluster_note(cl, "no answer to the lease renewals within a third of --lease-ms");
	/* No answer for a whole lease: the connections are dropped and made
	 * again, in case the silence is a connection that died quietly. */
	if (cl->cmd && cl->renewing &&
	    w.now - cl->round_sent_us >= (uint64_t)cl->lease_ms * 1000) {
		relay_log("redis-reconnect", "node=%s why=no answer for a whole lease",
			  cl->id);
		relay_cluster_async_free(cl->cmd);
		relay_cluster_async_free(cl->sub);
		cl->cmd = cl->sub = NULL;
		cl->cmd_up = cl->sub_up = false;
		cl->renewing = 0;
		relay_cluster_note(cl, "no answer for a whole lease");
		relay_cluster_async_up(cl);
		return;
	}
	if (!cl->cmd || !cl->cmd_up || cl->renewing)
		return;
	cl->round_sent_us = w.now;
	/* The first call goes even with no lease: it renews the node key,
	 * and its answer tells a node with no desktop that Redis answers. */
	w.rn = relay_renewal_new(cl, w.now);
	relay_map_each(&cl->leases, relay_renew_one, &w);
	if (w.rn->n || !cl->renewing)
		relay_cluster_renew_send(cl, w.rn);
	else
		free(w.rn);
}

/* ---- probes ---------------------------------------------------------- */

static void relay_cluster_probed(redisAsyncContext *ac, void *reply, void *arg)
{
	struct relay_cluster *cl = arg;
	void (*cb)(struct relay *r) = cl->probe_cb;

	(void)ac;
	cl->probe_cb = NULL;
	if (reply && cb && !cl->closing)
		cb(cl->relay);
}

void relay_cluster_probe(struct relay *r, void (*cb)(struct relay *r))
{
	struct relay_cluster *cl = r->cluster;

	if (cl->probe_cb || !cl->cmd || !cl->cmd_up || cl->closing)
		return;
	if (redisAsyncCommand(cl->cmd, relay_cluster_probed, cl, "PING") ==
	    REDIS_OK)
		cl->probe_cb = cb;
}

/* ---- the desktop list and the bus ----------------------------------- */

int relay_cluster_describe(struct relay *r, const char *desktop,
			   const char *json)
{
	struct relay_cluster *cl = r->cluster;
	redisReply *rep;

	if (!relay_cluster_lease(cl, desktop))
		return -PROTO_E_STATE;
	rep = relay_cluster_call(cl, "EVAL %s 2 asp:lease:%s " RELAY_DESKTOPS
				 " %s %s %s", RELAY_LUA_DESCRIBE, desktop,
				 cl->id, desktop, json);
	if (!rep)
		return -PROTO_E_UNAVAILABLE;
	freeReplyObject(rep);
	return 0;
}

int relay_cluster_each_desktop(struct relay *r,
			       int (*cb)(const char *desktop, const char *json,
					 void *arg),
			       void *arg)
{
	struct relay_cluster *cl = r->cluster;
	redisReply *rep = relay_cluster_call(cl, "EVAL %s 1 " RELAY_DESKTOPS,
					     RELAY_LUA_LIST);
	int rc = 0;

	if (!rep)
		return -PROTO_E_UNAVAILABLE;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY &&
			   i + 1 < rep->elements && !rc; i += 2)
		rc = cb(rep->element[i]->str, rep->element[i + 1]->str, arg);
	freeReplyObject(rep);
	return rc;
}

int relay_cluster_desktop(struct relay *r, const char *desktop, char **out)
{
	redisReply *rep = relay_cluster_call(r->cluster, "EVAL %s 1 "
					     RELAY_DESKTOPS " %s",
					     RELAY_LUA_ENTRY, desktop);
	int rc = -PROTO_E_NOT_FOUND;

	*out = NULL;
	if (!rep)
		return -PROTO_E_UNAVAILABLE;
	if (rep->type == REDIS_REPLY_STRING) {
		*out = relay_xstrdup(rep->str);
		rc = 0;
	}
	freeReplyObject(rep);
	return rc;
}

int relay_cluster_publish(struct relay *r, json_t *msg)
{
	struct relay_cluster *cl = r->cluster;
	char *text;
	int err;

	if (!msg) {
		relay_log_build_failed("to=bus");
		return -PROTO_E_INTERNAL;
	}
	json_object_set_new(msg, "from", json_string(cl->id));
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text) {
		relay_log_build_failed("to=bus");
		return -PROTO_E_INTERNAL;
	}
	/* On the renewal connection, answer unread: a publish is one
	 * write, not a round trip the loop waits for. */
	err = relay_cluster_healthy(cl) &&
	      redisAsyncCommand(cl->cmd, NULL, NULL, "PUBLISH " RELAY_BUS " %s",
				text) == REDIS_OK ? 0 : -PROTO_E_UNAVAILABLE;
	free(text);
	if (err)
		cl->stats.redis_errors++;
	return err;
}

/* ---- life ------------------------------------------------------------ */

int relay_cluster_open(struct relay *r, int port, char *why, size_t why_len)
{
	struct relay_cluster *cl;
	struct proto_redis_addr addr;
	int err = proto_redis_url_parse(r->cfg.redis, &addr, why, why_len);

	if (err)
		return err;
	cl = relay_xcalloc(1, sizeof(*cl));
	snprintf(cl->host, sizeof(cl->host), "%s", addr.host);
	cl->port = addr.port;
	cl->db = addr.db;
	cl->relay = r;
	cl->lease_ms = r->cfg.lease_ms;
	cl->timeout_ms = r->cfg.redis_timeout_ms;
	if (r->cfg.node_url)
		snprintf(cl->url, sizeof(cl->url), "%s", r->cfg.node_url);
	else
		relay_cluster_default_url(cl, r, port);
	if (r->cfg.node_id)
		snprintf(cl->id, sizeof(cl->id), "%s", r->cfg.node_id);
	else
		relay_cluster_default_id(cl);
	relay_map_init(&cl->leases);
	relay_hist_init(&cl->stats.rtt_us, 4, 16, 1e-6);
	relay_timer_init(&cl->renew_timer, r->loop, relay_cluster_renew);
	relay_timer_init(&cl->fence_timer, r->loop, relay_cluster_fence_due);
	relay_timer_init(&cl->async_timer, r->loop, relay_cluster_async_due);
	r->cluster = cl;
	relay_log("cluster", "node=%s url=%s redis=%s:%d/%d lease_ms=%u", cl->id,
		  cl->url, cl->host, cl->port, cl->db, cl->lease_ms);
	relay_cluster_async_up(cl);
	/* The node key at once, so redirects to this node work from the
	 * start; then the regular rounds. */
	/* On the synchronous connection, before the renewal connection is
	 * up (relay_cluster_call would wait for that). */
	if (relay_cluster_sync(cl))
		freeReplyObject(redisCommand(cl->sync, "SET asp:node:%s %s PX %u",
					     cl->id, cl->url, cl->lease_ms));
	relay_timer_start(&cl->renew_timer, relay_cluster_round_us(cl));
	return 0;
}

static void relay_cluster_release_one(const char *key, void *val, void *arg)
{
	struct relay_cluster *cl = arg;
	redisReply *rep;

	(void)key;
	rep = relay_cluster_call(cl, "EVAL %s 2 asp:lease:%s " RELAY_DESKTOPS
				 " %s %s", RELAY_LUA_RELEASE,
				 ((struct relay_lease *)val)->desktop, cl->id,
				 ((struct relay_lease *)val)->desktop);
	freeReplyObject(rep);
	free(val);
}

void relay_cluster_leave(struct relay *r)
{
	struct relay_cluster *cl = r->cluster;
	redisReply *rep;

	if (cl->closing)
		return;
	cl->closing = true;
	relay_log("cluster-leave", "node=%s desktops=%zu", cl->id,
		  cl->leases.count);
	/* The renewal connection first, so no renewal of ours lands after
	 * the node key is gone. */
	relay_cluster_async_free(cl->cmd);
	relay_cluster_async_free(cl->sub);
	cl->cmd = cl->sub = NULL;
	cl->cmd_up = cl->sub_up = false;
	rep = relay_cluster_call(cl, "DEL asp:node:%s", cl->id);
	freeReplyObject(rep);
	relay_map_each(&cl->leases, relay_cluster_release_one, cl);
	relay_map_free(&cl->leases);
	relay_map_init(&cl->leases);
	relay_timer_stop(&cl->renew_timer);
	relay_timer_stop(&cl->fence_timer);
}

static void relay_cluster_lease_free(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	free(val);
}

static void relay_cluster_async_free(redisAsyncContext *ac)
{
	if (!ac)
		return;
	ac->data = NULL; /* no reconnect from the disconnect callback */
	redisAsyncFree(ac); /* pending callbacks get a NULL reply */
}

void relay_cluster_close(struct relay *r)
{
	struct relay_cluster *cl = r->cluster;

	if (!cl)
		return;
	relay_cluster_leave(r);
	relay_timer_stop(&cl->renew_timer);
	relay_timer_stop(&cl->fence_timer);
	relay_timer_stop(&cl->async_timer);
	relay_cluster_async_free(cl->cmd);
	relay_cluster_async_free(cl->sub);
	if (cl->sync)
		redisFree(cl->sync);
	relay_map_each(&cl->leases, relay_cluster_lease_free, NULL);
	relay_map_free(&cl->leases);
	free(cl);
	r->cluster = NULL;
}

void relay_cluster_set_hooks(struct relay *r,
			     const struct relay_cluster_hooks *hooks)
{
	r->cluster->hooks = hooks;
}

bool relay_cluster_on(const struct relay *r)
{
	return r->cluster != NULL;
}

const char *relay_cluster_node_id(const struct relay *r)
{
	return r->cluster->id;
}

const char *relay_cluster_node_url(const struct relay *r)
{
	return r->cluster->url;
}

bool relay_cluster_redis_up(const struct relay *r)
{
	const struct relay_cluster *cl = r->cluster;

	/* The asynchronous connections say: the synchronous one is made
	 * again by the next call that needs it. */
	return cl->sub_up && cl->cmd_up && relay_cluster_healthy(cl);
}

bool relay_cluster_answers(void *relay)
{
	const struct relay *r = relay;

	return r->cluster && relay_cluster_healthy(r->cluster);
}

const struct relay_cluster_stats *relay_cluster_stats(const struct relay *r)
{
	return &r->cluster->stats;
}
