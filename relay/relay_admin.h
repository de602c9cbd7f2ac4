/*
 * relay_admin: the administrators' HTTP JSON API under /api/.
 *
 * relay_http does the lws work (method, headers, body); this module
 * authenticates the Bearer token (role admin), routes the request and
 * renders the answer.  Every answer is JSON; a refusal is a 4xx with
 * {"error":{"code":C,"message":M}} from the protocol's error table, so
 * bad JSON, unknown ids and missing auth never produce a 500.
 * docs/admin-api.md documents every endpoint.
 */
#ifndef ASP_RELAY_ADMIN_H
#define ASP_RELAY_ADMIN_H

#include <stddef.h>

#include "relay/relay.h"

enum relay_admin_method {
	RELAY_HTTP_GET,
	RELAY_HTTP_POST,
	RELAY_HTTP_PUT,
	RELAY_HTTP_OTHER,
};

struct relay_admin_req {
	enum relay_admin_method method;
	const char *path;      /* after "/api", e.g. "/assist/ab12/accept" */
	const char *auth;      /* the Authorization header, "" if none */
	const char *body;      /* NULL when there was none */
	size_t body_len;
	long limit;            /* ?limit=, -1 when absent */
	long long since;       /* ?since=, -1 when absent */
	const char *after;     /* ?after=, "" when absent */
	const char *state;     /* ?state=, "" when absent */
};

/* Handles one request: returns the HTTP status and sets *out to a
 * malloc'd JSON body the caller frees (never NULL). */
unsigned int relay_admin_handle(struct relay *r,
				const struct relay_admin_req *req, char **out);

/* Checks an event-stream subscriber's Authorization header as for every
 * endpoint: 200 (and "{}" in *out), or the refusal's status and body. */
unsigned int relay_admin_events_auth(struct relay *r, const char *auth,
				     char **out);

/* Renders a refusal from the error table ({"error":{...}}) into *out;
 * returns its HTTP status. */
unsigned int relay_admin_refuse(int err, const char *detail, char **out);

#endif
