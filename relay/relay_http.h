/*
 * relay_http: plain HTTP on the relay's port: the web pages, /healthz,
 * the Prometheus /metrics text, the admin API and its live event stream.
 *
 * GET /api/events is a server-sent event stream for administrators' pages
 * (relay_events.h), so the console updates without polling.
 */
#ifndef ASP_RELAY_HTTP_H
#define ASP_RELAY_HTTP_H

#include <libwebsockets.h>

#include "relay/relay.h"
#include "relay/relay_events.h"

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
	char after[72];      /* ?after=, "" when absent */
	char state[16];      /* ?state=, "" when absent */
	char *req_body;
	size_t req_len;
	bool too_large;
	/* A server-sent event stream (GET /api/events). */
	bool sse;
	struct relay_events_sub ev;
};

int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len);

/* Renders the Prometheus exposition text; malloc'd, caller frees. */
char *relay_http_metrics_text(const struct relay *r, size_t *len);

#endif
