/*
 * relay_http: plain HTTP on the relay's port: the web pages, /healthz,
 * the Prometheus /metrics text, the admin API and its live event stream.
 *
 * GET /api/events is a server-sent event stream for administrators' pages:
 * every audited change (and a desktop going offline) becomes one event,
 * so the console updates without polling.  Each subscriber has a bounded
 * buffer written only from its own HTTP_WRITEABLE callback; a subscriber
 * that falls behind by more than the bound loses events and is sent one
 * "resync" event once it catches up, telling the page to reload its lists.
 */
#ifndef ASP_RELAY_HTTP_H
#define ASP_RELAY_HTTP_H

#include <libwebsockets.h>

#include "relay/relay.h"

/* Per-request state lws allocates for the "http" protocol. */
struct relay_http {
	char *body;          /* the answer, written in HTTP_WRITEABLE */
	size_t len;
	/* An admin API request waiting for its body. */
	bool api;
	int method;          /* enum relay_admin_method */
	char path[256];
	char auth[PROTO_TOKEN_BUF + 16];
	long limit;
	long long since;
	char *req_body;
	size_t req_len;
	bool too_large;
	/* A server-sent event stream (GET /api/events). */
	bool sse;
	struct lws *wsi;
	struct relay_http *ev_prev, *ev_next; /* relay.events */
	char *ev_buf;
	size_t ev_len;
	bool ev_lost;        /* events were dropped: send resync */
};

/* Publishes one change to every event-stream subscriber: event is the
 * audit event name, the rest as in the audit log ("" when none). */
void relay_http_publish(struct relay *r, const char *event, const char *actor,
			const char *desktop, const char *detail);

int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len);

/* Renders the Prometheus exposition text; malloc'd, caller frees. */
char *relay_http_metrics_text(const struct relay *r, size_t *len);

#endif
