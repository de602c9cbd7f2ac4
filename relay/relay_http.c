/*
 * relay_http: /healthz, /metrics, the static web pages, the admin API
 * and its event stream.
 *
 * Dynamic answers are rendered whole into a per-request buffer in
 * LWS_CALLBACK_HTTP and written in HTTP_WRITEABLE, as lws wants; they are
 * small (a few KiB).  Static files come from the web directory through
 * lws_serve_http_file, for a fixed set of plain file names only.
 */
#include "relay/relay_http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "relay/relay_admin.h"
#include "relay/relay_alloc.h"
#include "relay/relay_cluster.h"
#include "relay/relay_conn.h"
#include "relay/relay_events.h"
#include "relay/relay_guard.h"

/* Sent with every answer.  The page hands over control of a desktop,
 * so it must not be framed (clickjacking); it loads only its own files
 * and talks only to its own relay. */
#define RELAY_CSP \
	"default-src 'self'; connect-src 'self' ws: wss:; " \
	"img-src 'self' data: blob:; media-src 'self' blob:; " \
	"worker-src 'self' blob:; object-src 'none'; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'"
#define RELAY_SECURITY_HEADERS \
	"Content-Security-Policy: " RELAY_CSP "\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"X-Frame-Options: DENY\r\n"

static const struct {
	const char *name, *value;
} relay_security_headers[] = {
	{ "content-security-policy:", RELAY_CSP },
	{ "x-content-type-options:", "nosniff" },
	{ "referrer-policy:", "no-referrer" },
	{ "x-frame-options:", "DENY" },
};

struct relay_buf {
	char *p;
	size_t len, cap;
};

static void relay_buf_printf(struct relay_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void relay_buf_printf(struct relay_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->p = relay_xrealloc(b->p, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void relay_metric(struct relay_buf *b, const char *name,
			 const char *type, const char *help, uint64_t v)
{
	relay_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help,
			 name, type, name, (unsigned long long)v);
}

static void relay_metric_hist(struct relay_buf *b, const char *name,
			      const char *help, const struct relay_hist *h)
{
	relay_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
			 name);
	for (unsigned i = 0; i < h->n; i++)
		relay_buf_printf(b, "%s_bucket{le=\"%.9g\"} %llu\n", name,
				 relay_hist_bound(h, i),
				 (unsigned long long)relay_hist_cumulative(h, i));
	relay_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n"
			 "%s_count %llu\n", name,
			 (unsigned long long)h->count, name,
			 (double)h->sum * h->scale, name,
			 (unsigned long long)h->count);
}

/* A cluster node's series (docs/cluster.md). */
static void relay_http_cluster_metrics(struct relay_buf *b,
				       const struct relay *r)
{
	const struct relay_cluster_stats *cs = relay_cluster_stats(r);

	relay_buf_printf(b, "# HELP asp_cluster_node_info This node of the cluster.\n"
			 "# TYPE asp_cluster_node_info gauge\n"
			 "asp_cluster_node_info{node=\"%s\",url=\"%s\"} 1\n",
			 relay_cluster_node_id(r), relay_cluster_node_url(r));
	relay_metric(b, "asp_cluster_desktops", "gauge",
		     "Desktops whose lease this node holds.",
		     relay_cluster_leases(r));
	relay_metric(b, "asp_cluster_redis_up", "gauge",
		     "1 while Redis answers and the bus is subscribed.",
		     relay_cluster_redis_up(r));
	relay_metric(b, "asp_cluster_redirects_total", "counter",
		     "Hosts and viewers sent to the node holding their desktop.",
		     cs->redirects);
	relay_metric(b, "asp_cluster_lease_renewals_total", "counter",
		     "Lease renewals Redis confirmed.", cs->renewals);
	relay_metric(b, "asp_cluster_lease_losses_total", "counter",
		     "Leases lost (not renewed in time, or taken by another node).",
		     cs->losses);
	relay_metric(b, "asp_cluster_redis_errors_total", "counter",
		     "Redis calls that failed, and connections lost.",
		     cs->redis_errors);
	relay_metric_hist(b, "asp_cluster_redis_rtt_seconds",
			  "Synchronous Redis calls, sent to answered.",
			  &cs->rtt_us);
}

char *relay_http_metrics_text(const struct relay *r, size_t *len)
{
	const struct relay_stats *st = &r->stats;
	struct relay_buf b = { 0 };

	relay_metric(&b, "asp_sessions", "gauge",
		     "Desktops the relay holds a session for.",
		     r->by_desktop.count);
	relay_metric(&b, "asp_hosts", "gauge", "Connected hosts.", r->nhosts);
	relay_metric(&b, "asp_viewers", "gauge", "Connected viewers.",
		     r->nviewers);
	relay_metric(&b, "asp_collaborations", "gauge",
		     "Collaboration codes standing.", r->by_code.count);
	relay_metric(&b, "asp_bytes_in_total", "counter",
		     "Binary message bytes received.", st->bytes_in);
	relay_metric(&b, "asp_messages_in_total", "counter",
		     "Media and input messages received.", st->msgs_in);
	relay_metric(&b, "asp_bytes_out_total", "counter",
		     "Message bytes written to sockets.", st->bytes_out);
	relay_metric(&b, "asp_messages_out_total", "counter",
		     "Messages written to sockets.", st->msgs_out);
	relay_metric(&b, "asp_copied_bytes_total", "counter",
		     "Message bytes copied in user space by the relay.",
		     st->copied_bytes);
	relay_metric(&b, "asp_forwarded_bytes_total", "counter",
		     "Media and input bytes forwarded to peers.",
		     st->forwarded_bytes);
	relay_metric(&b, "asp_partial_writes_total", "counter",
		     "Writes the socket did not take whole (lws buffered the rest).",
		     st->partial_writes);
	relay_metric(&b, "asp_keyframe_requests_total", "counter",
		     "Keyframe requests sent to hosts.", st->keyframe_requests);
	relay_metric(&b, "asp_keyframe_mismatches_total", "counter",
		     "Video messages whose keyframe flag the bitstream contradicted.",
		     st->keyframe_mismatches);
	relay_metric(&b, "asp_build_failures_total", "counter",
		     "Control messages and API answers the relay failed to build.",
		     relay_log_build_failures());
	relay_buf_printf(&b, "# HELP asp_dropped_total Messages dropped for slow viewers.\n"
			 "# TYPE asp_dropped_total counter\n");
	for (int k = PROTO_KIND_VIDEO; k <= PROTO_KIND_CONTROL; k++)
		relay_buf_printf(&b, "asp_dropped_total{kind=\"%s\"} %llu\n",
				 proto_kind_name(k),
				 (unsigned long long)st->dropped[k]);
	relay_buf_printf(&b, "# HELP asp_refusals_total Refusals sent, by reason.\n"
			 "# TYPE asp_refusals_total counter\n");
	for (int e = 1; e < PROTO_E__COUNT; e++)
		relay_buf_printf(&b, "asp_refusals_total{reason=\"%s\"} %llu\n",
				 proto_err_info(e)->code,
				 (unsigned long long)st->refusals[e]);
	relay_metric_hist(&b, "asp_forward_latency_seconds",
			  "From the loop turn a message arrived in to the turn its "
			  "last byte was written, per peer.", &st->forward_us);
	relay_metric_hist(&b, "asp_viewer_queue_depth_messages",
			  "A viewer's send queue, in messages, after each "
			  "message queued.", &st->queue_depth);
	relay_metric_hist(&b, "asp_join_seconds",
			  "From a viewer's WebSocket opening to its joining a "
			  "session.", &st->join_us);
	if (relay_cluster_on(r))
		relay_http_cluster_metrics(&b, r);
	relay_buf_printf(&b, "# HELP asp_build_info The relay's version.\n"
			 "# TYPE asp_build_info gauge\n"
			 "asp_build_info{version=\"%s\",revision=\"%s\"} 1\n",
			 relay_version, relay_revision);
	*len = b.len;
	return b.p;
}

static int relay_http_security_headers(struct lws *wsi, unsigned char **p,
				       unsigned char *end)
{
	for (size_t i = 0; i < sizeof(relay_security_headers) /
				       sizeof(relay_security_headers[0]); i++) {
		const char *v = relay_security_headers[i].value;

		if (lws_add_http_header_by_name(wsi,
			(const unsigned char *)relay_security_headers[i].name,
			(const unsigned char *)v, (int)strlen(v), p, end))
			return 1;
	}
	return 0;
}

static int relay_http_respond(struct lws *wsi, struct relay_http *h,
			      unsigned int status, const char *type,
			      char *body, size_t len)
{
	unsigned char buf[LWS_PRE + 1024];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;

	h->body = body;
	h->len = len;
	if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (unsigned char *)"no-store", 8, &p,
					 end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (unsigned char *)"close", 5, &p,
					 end) ||
	    relay_http_security_headers(wsi, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* One request per connection.  lws 4.1 mishandles a request pipelined
 * behind another: once the first is answered it parses the second from
 * its buffer, and one that announces a body (any Content-Length) made it
 * spin without returning to the loop, so a single client stopped the
 * relay.  Every answer says "Connection: close" and the connection ends
 * when it is written, so nothing pipelined is ever parsed. */
#define RELAY_HTTP_FILE_HEADERS \
	RELAY_SECURITY_HEADERS "connection: close\r\n"

static bool relay_http_file_name_ok(const char *name)
{
	if (!*name || *name == '.')
		return false;
	for (; *name; name++)
		if (!(('a' <= *name && *name <= 'z') ||
		      ('0' <= *name && *name <= '9') || *name == '.' ||
		      *name == '-' || *name == '_'))
			return false;
	return true;
}

static const char *relay_http_mime(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js") || !strcmp(dot, ".mjs"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".png"))
		return "image/png";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	return "application/octet-stream";
}

/* Pages with a path of their own; anything else is a file name. */
static const char *relay_http_page(const char *uri)
{
	if (!strcmp(uri, "/"))
		return "index.html";
	if (!strcmp(uri, "/admin"))
		return "admin.html";
	return uri + 1;
}

static int relay_http_file(struct lws *wsi, struct relay_http *h,
			   const struct relay *r, const char *uri)
{
	const char *name = relay_http_page(uri);
	char path[1024];
	struct stat st;

	if (!r->cfg.web_dir || !relay_http_file_name_ok(name))
		return relay_http_respond(wsi, h, HTTP_STATUS_NOT_FOUND,
					  "text/plain", relay_xstrdup("not found\n"),
					  10);
	snprintf(path, sizeof(path), "%s/%s", r->cfg.web_dir, name);
	/* lws's own 404 for a missing file leaves a keep-alive connection
	 * hanging, so missing files get ours. */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return relay_http_respond(wsi, h, HTTP_STATUS_NOT_FOUND,
					  "text/plain", relay_xstrdup("not found\n"),
					  10);
	if (lws_serve_http_file(wsi, path, relay_http_mime(name),
				RELAY_HTTP_FILE_HEADERS,
				(int)strlen(RELAY_HTTP_FILE_HEADERS)) < 0)
		return -1;
	return 0;
}

/* ---- the event stream ---------------------------------------------- */

#define RELAY_EVENTS_PING_US (20 * LWS_USEC_PER_SEC)
/* The kernel's share of a subscriber that stops reading: a fixed send
 * buffer (no autotuning to megabytes), events are small. */
#define RELAY_EVENTS_SNDBUF (16 * 1024)

static int relay_http_events_begin(struct lws *wsi, struct relay_http *h)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));
	unsigned char buf[LWS_PRE + 512];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;
	char *out = NULL;
	unsigned int status;

	status = relay_admin_events_auth(r, h->auth, &out);
	if (status != 200)
		return relay_http_respond(wsi, h, status, "application/json",
					  out, strlen(out));
	free(out);
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
					"text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (unsigned char *)"no-store", 8, &p,
					 end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	/* No more timeouts: the stream lives until the page goes away.
	 * (lws_http_mark_sse does the same but complains on HTTP/1.) */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	if (setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF,
		       &(int){ RELAY_EVENTS_SNDBUF }, sizeof(int)))
		relay_log("events-sndbuf", "errno=%d", errno);
	h->sse = true;
	relay_events_subscribe(r, &h->ev, wsi);
	lws_set_timer_usecs(wsi, RELAY_EVENTS_PING_US);
	return 0;
}

/* The admin API's answers are JSON; the request body is bounded. */
#define RELAY_API_BODY_MAX (64 * 1024)

static int relay_http_api_answer(struct lws *wsi, struct relay_http *h)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));
	struct relay_admin_req req = {
		.method = h->method, .path = h->path, .auth = h->auth,
		.body = h->req_body, .body_len = h->req_len,
		.limit = h->limit, .since = h->since,
		.after = h->after, .state = h->state,
	};
	char *out = NULL;
	unsigned int status = h->too_large ?
		relay_admin_refuse(-PROTO_E_TOO_LARGE, NULL, &out) :
		relay_admin_handle(r, &req, &out);

	free(h->req_body);
	h->req_body = NULL;
	h->api = false;
	return relay_http_respond(wsi, h, status, "application/json", out,
				  strlen(out));
}

static long long relay_http_arg(struct lws *wsi, const char *name)
{
	char buf[32];
	const char *val = lws_get_urlarg_by_name(wsi, name, buf, sizeof(buf));
	char *end;
	long long v;

	if (!val)
		return -1;
	v = strtoll(val, &end, 10);
	return (*end || end == val || v < 0) ? -2 : v;
}

/* lws delivers a body only when Content-Length is above zero. */
static long long relay_http_content_length(struct lws *wsi)
{
	char buf[24];

	if (lws_hdr_copy(wsi, buf, sizeof(buf),
			 WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return 0;
	return strtoll(buf, NULL, 10);
}

/* A string argument; "" when absent, "?" when too long to be valid. */
static void relay_http_arg_str(struct lws *wsi, const char *name, char *buf,
			       size_t len)
{
	char tmp[128];
	const char *val = lws_get_urlarg_by_name(wsi, name, tmp, sizeof(tmp));

	if (val && strlen(val) >= len)
		val = "?";
	snprintf(buf, len, "%s", val ? val : "");
}

static int relay_http_api_begin(struct lws *wsi, struct relay_http *h,
				const char *uri)
{
	char *u;
	int ulen, m = lws_http_get_uri_and_method(wsi, &u, &ulen);

	h->api = true;
	h->method = m == LWSHUMETH_GET ? RELAY_HTTP_GET :
		    m == LWSHUMETH_POST ? RELAY_HTTP_POST :
		    m == LWSHUMETH_PUT ? RELAY_HTTP_PUT : RELAY_HTTP_OTHER;
	snprintf(h->path, sizeof(h->path), "%s", uri + 4);
	if (lws_hdr_copy(wsi, h->auth, sizeof(h->auth),
			 WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		h->auth[0] = '\0';
	relay_http_arg_str(wsi, "after=", h->after, sizeof(h->after));
	relay_http_arg_str(wsi, "state=", h->state, sizeof(h->state));
	h->limit = (long)relay_http_arg(wsi, "limit=");
	h->since = relay_http_arg(wsi, "since=");
	if (h->limit == -2 || h->since == -2) {
		h->limit = 0; /* relay_admin refuses it with a clear message */
		h->since = -1;
	}
	h->req_body = NULL;
	h->req_len = 0;
	h->too_large = false;
	if (!strcmp(h->path, "/events") && h->method == RELAY_HTTP_GET) {
		h->api = false;
		return relay_http_events_begin(wsi, h);
	}
	if (relay_http_content_length(wsi) > 0)
		return 0; /* the answer waits for HTTP_BODY_COMPLETION */
	return relay_http_api_answer(wsi, h);
}

/* Collects the body; past the bound it is dropped and the answer will
 * be too_large. */
static void relay_http_api_body(struct relay_http *h, const void *in,
				size_t len)
{
	if (h->too_large || h->req_len + len > RELAY_API_BODY_MAX) {
		h->too_large = true;
		return;
	}
	h->req_body = relay_xrealloc(h->req_body, h->req_len + len);
	memcpy(h->req_body + h->req_len, in, len);
	h->req_len += len;
}

#define RELAY_METRICS_401 "/metrics needs its token (Authorization: Bearer).\n"

/* With --metrics-token-file, /metrics wants "Bearer TOKEN". */
static bool relay_http_metrics_allowed(struct lws *wsi, const struct relay *r)
{
	char auth[PROTO_TOKEN_BUF + 8];
	const char *want = r->cfg.metrics_token;
	size_t n;

	if (!want)
		return true;
	if (lws_hdr_copy(wsi, auth, sizeof(auth),
			 WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
	    strncmp(auth, "Bearer ", 7) != 0)
		return false;
	n = strlen(want);
	return strlen(auth + 7) == n && CRYPTO_memcmp(auth + 7, want, n) == 0;
}

static int relay_http_request(struct lws *wsi, struct relay_http *h,
			      const char *uri)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));
	size_t len;
	char *body;

	if (!strncmp(uri, "/api/", 5))
		return relay_http_api_begin(wsi, h, uri);
	if (!strcmp(uri, "/healthz"))
		return relay_http_respond(wsi, h, HTTP_STATUS_OK, "text/plain",
					  relay_xstrdup("ok\n"), 3);
	if (!strcmp(uri, "/metrics")) {
		if (!relay_http_metrics_allowed(wsi, r))
			return relay_http_respond(wsi, h, HTTP_STATUS_UNAUTHORIZED,
				"text/plain", relay_xstrdup(RELAY_METRICS_401),
				strlen(RELAY_METRICS_401));
		body = relay_http_metrics_text(r, &len);
		return relay_http_respond(wsi, h, HTTP_STATUS_OK,
			"text/plain; version=0.0.4", body, len);
	}
	return relay_http_file(wsi, h, r, uri);
}

static int relay_http_write_body(struct lws *wsi, struct relay_http *h)
{
	unsigned char *buf;

	if (!h->body)
		return 0;
	buf = relay_xmalloc(LWS_PRE + h->len);
	memcpy(buf + LWS_PRE, h->body, h->len);
	/* Written or not, the connection ends here (one request per
	 * connection, above); lws flushes what it buffered first. */
	lws_write(wsi, buf + LWS_PRE, h->len, LWS_WRITE_HTTP_FINAL);
	free(buf);
	free(h->body);
	h->body = NULL;
	return -1;
}

/* A refused WebSocket upgrade is answered with an HTTP status and the
 * reason, written at once (lws completes the transaction). */
static int relay_http_refuse_upgrade(struct lws *wsi, unsigned int status,
				     const char *reason)
{
	unsigned char buf[LWS_PRE + 2048];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;
	size_t n = strlen(reason);

	relay_log("refuse-upgrade", "status=%u", status);
	if (lws_add_http_common_headers(wsi, status, "text/plain", n + 1, &p,
					end) ||
	    relay_http_security_headers(wsi, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	memcpy(start, reason, n);
	start[n] = '\n';
	if (lws_write(wsi, start, n + 1, LWS_WRITE_HTTP_FINAL) < 0)
		return -1;
	return 1;
}

/* Whether the comma-separated list offers protocol. */
static bool relay_http_offers(const char *list, const char *protocol)
{
	size_t n = strlen(protocol);

	for (const char *p = list; *p;) {
		p += strspn(p, " ,");
		if (!strncmp(p, protocol, n) && (p[n] == '\0' || p[n] == ',' ||
						 p[n] == ' '))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* A WebSocket upgrade must name the subprotocol of its path. */
static int relay_http_confirm_upgrade(struct lws *wsi)
{
	char uri[64], protos[256];
	const char *want;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		uri[0] = '\0';
	if (lws_hdr_copy(wsi, protos, sizeof(protos), WSI_TOKEN_PROTOCOL) <= 0)
		protos[0] = '\0';
	want = !strcmp(uri, "/host") ? RELAY_PROTO_HOST :
	       !strcmp(uri, "/view") ? RELAY_PROTO_VIEW : NULL;
	if (!want)
		return relay_http_refuse_upgrade(wsi, HTTP_STATUS_NOT_FOUND,
			"WebSockets are served on /host and /view only.");
	if (!relay_http_offers(protos, want))
		return relay_http_refuse_upgrade(wsi, HTTP_STATUS_BAD_REQUEST,
			!strcmp(want, RELAY_PROTO_HOST) ?
			"A WebSocket on /host must offer the subprotocol asp.host.v1." :
			"A WebSocket on /view must offer the subprotocol asp.view.v1.");
	return 0;
}

int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len)
{
	struct relay_http *h = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return relay_http_request(wsi, h, in);
	case LWS_CALLBACK_HTTP_BODY:
		if (h->api)
			relay_http_api_body(h, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!h->api)
			return 0;
		/* Answered now, not on WRITEABLE: lws 4.1 keeps an HTTP/1
		 * connection in its body state until the transaction
		 * completes, and meanwhile calls BODY_COMPLETION again for
		 * every pipelined byte it holds, consuming none, so one
		 * client that pipelined a request after a body spun the
		 * loop forever. */
		if (relay_http_api_answer(wsi, h))
			return -1;
		return relay_http_write_body(wsi, h);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (h->sse)
			return relay_events_write(&h->ev);
		return relay_http_write_body(wsi, h);
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		return -1; /* one request per connection (above) */
	case LWS_CALLBACK_TIMER:
		if (h && h->sse) {
			relay_events_ping(&h->ev);
			lws_set_timer_usecs(wsi, RELAY_EVENTS_PING_US);
		}
		return 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (h) {
			relay_events_unsubscribe(
				lws_context_user(lws_get_context(wsi)), &h->ev);
			h->sse = false;
			free(h->body);
			free(h->req_body);
			h->body = NULL;
			h->req_body = NULL;
		}
		break;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* A WebSocket upgrade without one of our subprotocols. */
		return 1;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return relay_http_confirm_upgrade(wsi);
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
