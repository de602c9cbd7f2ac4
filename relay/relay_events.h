/*
 * relay_events: the live event stream administrators' pages subscribe to
 * (GET /api/events, served by relay_http as server-sent events).
 *
 * Every audited change (relay_audit) and a desktop going offline is
 * published as one event to every subscriber.  A subscriber's events wait
 * in its own bounded buffer, which is written only from the subscriber's
 * own writeable turn, so a slow page never blocks the loop or holds more
 * than the bound: past it, events are dropped and, once the buffer has
 * drained, one "resync" event tells the page to reload what it shows.
 * This module sits low in relay/: it knows lws and the clock only.
 */
#ifndef ASP_RELAY_EVENTS_H
#define ASP_RELAY_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

struct lws;
struct relay;

/* One subscriber, embedded in its HTTP request's state. */
struct relay_events_sub {
	struct lws *wsi;
	struct relay_events_sub *prev, *next; /* relay.events */
	char *buf;			      /* LWS_PRE + bound bytes */
	size_t len;
	bool lost; /* events dropped: resync */
	bool on;   /* subscribed */
};

/* What one subscriber may have waiting. */
#define RELAY_EVENTS_BUF (64 * 1024)

/* Subscribes wsi (headers already sent) and queues the hello event. */
void relay_events_subscribe(struct relay *r, struct relay_events_sub *sub,
			    struct lws *wsi);

/* Unsubscribes and frees the buffer; safe on one never subscribed. */
void relay_events_unsubscribe(struct relay *r, struct relay_events_sub *sub);

/* From the subscriber's HTTP_WRITEABLE: writes what waits, in one write.
 * 0, or -1 if the connection failed. */
int relay_events_write(struct relay_events_sub *sub);

/* Queues a keep-alive comment (proxies close silent streams). */
void relay_events_ping(struct relay_events_sub *sub);

/* Publishes one change: the audit event's name and fields ("" if none). */
void relay_events_publish(struct relay *r, const char *event, const char *actor,
			  const char *desktop, const char *detail);

/* Hands the event j (taken; its "op" and "from" are dropped) to this
 * node's subscribers only: what another node published. */
struct json_t;
void relay_events_deliver(struct relay *r, struct json_t *j);

#endif
