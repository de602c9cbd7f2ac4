/*
 * relay_cluster: this node's place in a cluster of relays through Redis
 * (docs/cluster.md).
 *
 * A desktop lives on the node holding its lease in Redis.  This module
 * takes, renews and releases leases, says where a desktop lives, fences
 * (a lease that could not be renewed in time is dropped here before
 * Redis can give it to another node), keeps the cluster-wide list of
 * desktops, and carries events between nodes on one pub/sub channel.
 * It knows nothing of sessions: what it must tell the layers above (a
 * lease lost, an event from another node) goes through the hooks they
 * register.
 *
 * Three Redis connections: a synchronous one for what a caller waits
 * for (claim, locate, release, publish; each call at most
 * --redis-timeout-ms, and after a failure no new attempt for 500 ms, so a
 * dead Redis costs a refusal, not a timeout per caller), and two on the
 * relay's libev loop through hiredis's adapter: one renews the leases
 * every third of --lease-ms with no wait in the loop, one is subscribed
 * to the bus.  Nothing here runs per media message.
 *
 * Every function returning int returns 0 or a negative -PROTO_E_*.
 */
#ifndef ASP_RELAY_CLUSTER_H
#define ASP_RELAY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/relay_hist.h"

struct relay;
struct json_t;

#define RELAY_NODE_ID_MAX 32
#define RELAY_NODE_URL_MAX 256

/* What relay_cluster_claim and relay_cluster_locate found. */
enum relay_where {
	RELAY_WHERE_HERE,    /* this node holds it (claim: now it does) */
	RELAY_WHERE_NOWHERE, /* no node holds it (locate only) */
	RELAY_WHERE_THERE,   /* a live node holds it: redirect to url */
	RELAY_WHERE_STALE,   /* a node that stopped renewing holds it: its
			      * lease runs out within --lease-ms; wait */
};

/* The layers above, told of what happens in the cluster. */
struct relay_cluster_hooks {
	/* The lease on desktop was lost (not renewed in time, or another
	 * node holds it): drop the desktop here now. */
	void (*lost)(struct relay *r, const char *desktop);
	/* An event another node published (msg is a JSON object with at
	 * least "op"; borrowed for the call). */
	void (*bus)(struct relay *r, const struct json_t *msg);
	/* The bus was (re)subscribed: what it carried while this node was
	 * not listening is lost, so the layers above check again what it
	 * would have told them. */
	void (*resync)(struct relay *r);
};

struct relay_cluster_stats {
	uint64_t redirects;
	uint64_t renewals, losses;
	uint64_t redis_errors;
	struct relay_hist rtt_us; /* synchronous calls, sent to answered */
};

/* Connects to Redis (r->cfg.redis), registers the node and subscribes to
 * the bus; r->cluster is set.  port is the one the server listens on
 * (for the node URL when --node-url is not given).  A Redis that is down at start is not an
 * error: the node starts refusing what needs it and joins when Redis
 * comes.  -PROTO_E_MALFORMED with a sentence in why for a bad URL. */
int relay_cluster_open(struct relay *r, int port, char *why, size_t why_len);
/* A clean stop begins: the node key and every lease are given up now,
 * so hosts told to go away find their desktops free elsewhere.  The
 * node then holds nothing and takes nothing. */
void relay_cluster_leave(struct relay *r);
/* Leaves (if not yet) and closes the connections. */
void relay_cluster_close(struct relay *r);
void relay_cluster_set_hooks(struct relay *r,
			     const struct relay_cluster_hooks *hooks);

bool relay_cluster_on(const struct relay *r);
const char *relay_cluster_node_id(const struct relay *r);
const char *relay_cluster_node_url(const struct relay *r);
/* Redis answers (the renewal connection is up and its last round was
 * answered in time) and the bus is subscribed. */
bool relay_cluster_redis_up(const struct relay *r);
/* Whether Redis answers, from what the renewal connection saw, without
 * a round trip (for relay_store_redis_gate; relay is a struct relay). */
bool relay_cluster_answers(void *relay);
size_t relay_cluster_leases(const struct relay *r);
const struct relay_cluster_stats *relay_cluster_stats(const struct relay *r);

/* Takes desktop's lease for this node: *where is HERE (taken or already
 * ours), THERE (url of the live holder filled in) or STALE.
 * -PROTO_E_UNAVAILABLE when Redis cannot be asked. */
int relay_cluster_claim(struct relay *r, const char *desktop,
			enum relay_where *where, char *url, size_t url_len);
/* Where desktop lives, without taking it. */
int relay_cluster_locate(struct relay *r, const char *desktop,
			 enum relay_where *where, char *url, size_t url_len);
/* Gives the lease up (compare-and-delete) and removes the desktop from
 * the cluster's list.  Quiet if this node does not hold it. */
void relay_cluster_release(struct relay *r, const char *desktop);
/* Whether this node holds desktop's lease now and its time is not up
 * (no Redis call). */
bool relay_cluster_holds(const struct relay *r, const char *desktop);
/* Another node showed it holds desktop: this node's lease is lost now
 * (the lost hook runs). */
void relay_cluster_drop(struct relay *r, const char *desktop);

/* The desktop's entry in the cluster-wide list (a JSON object this node
 * writes on every change of a desktop it holds). */
int relay_cluster_describe(struct relay *r, const char *desktop,
			   const char *json);
/* Calls cb with every desktop's JSON entry of the cluster-wide list;
 * entries whose lease is gone are skipped.  cb returns 0 to go on. */
int relay_cluster_each_desktop(struct relay *r,
			       int (*cb)(const char *desktop, const char *json,
					 void *arg),
			       void *arg);
/* The entry of one desktop whose lease exists, or -PROTO_E_NOT_FOUND;
 * *out is malloc'd. */
int relay_cluster_desktop(struct relay *r, const char *desktop, char **out);

/* Sends a PING on the renewal connection and calls cb when Redis
 * answers it: work that must wait for Redis synchronously (the tick's
 * expiry and retention) runs only right after Redis proved it answers,
 * so a Redis that hangs does not stall the loop.  Nothing happens if
 * the connection is down or the last probe is still unanswered. */
void relay_cluster_probe(struct relay *r, void (*cb)(struct relay *r));

/* Publishes msg (a JSON object, taken; "from" is added) to every other
 * node. */
int relay_cluster_publish(struct relay *r, struct json_t *msg);

#endif
