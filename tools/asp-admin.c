/*
 * asp-admin: the administrator's command line for a relay.
 *
 * It mints tokens from the relay's secret (`token`), and drives the
 * relay's admin HTTP API (docs/admin-api.md): user permissions, remote
 * assistance requests, the desktops online and the audit log.  One
 * command is one HTTP/1.1 request on a fresh blocking connection
 * (Connection: close), plain or TLS, so the client below stays small:
 * write the request, read until the server closes or the body is
 * complete, parse the status line and body.  Output is one line per
 * item, meant for people and for scripts (fields are KEY=VALUE after a
 * leading id; free text comes last).
 *
 * The relay and the credentials come from the options, else $ASP_RELAY
 * and $ASP_TOKEN, else ~/.config/asp-relay/admin.conf (read with libinih),
 * so an operator types them once.
 *
 * Exit status: 0 done, 1 local failure, 2 usage, 3 the relay refused the
 * request (its message is printed), 5 cannot connect or no valid answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "protocol/proto_error.h"
#include "protocol/proto_token.h"

enum admin_exit {
	ADMIN_EXIT_OK = 0,
	ADMIN_EXIT_FAIL = 1,
	ADMIN_EXIT_USAGE = 2,
	ADMIN_EXIT_REFUSED = 3,
	ADMIN_EXIT_CONNECT = 5,
};

#define ADMIN_DEFAULT_RELAY "http://127.0.0.1:8080"
#define ADMIN_USER "asp-admin"
#define ADMIN_API_TTL 300       /* seconds, tokens for our own calls */
#define ADMIN_DEFAULT_TTL 86400 /* seconds, `token` */
#define ADMIN_MAX_TTL (30 * 86400) /* the relay's default --max-token-life */
#define ADMIN_CONSOLE_USER "admin"
#define ADMIN_CONSOLE_TTL 28800 /* seconds, `console-link`: a working day */
#define ADMIN_IO_TIMEOUT 10     /* seconds per connect, read or write */
#define ADMIN_MAX_RESPONSE (8u << 20)

struct admin {
	const char *relay, *data, *token_opt;
	bool insecure;
	/* Read from admin.conf, owned. */
	char *conf_relay, *conf_data, *conf_token;
	char conf_path[4096];
	char token[PROTO_TOKEN_BUF];
	/* Parsed from relay. */
	bool tls;
	char host[256], port[8];
};

/* One connection: a socket, and TLS over it for https://. */
struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

struct http_resp {
	int status;
	char reason[64];
	char *raw;         /* headers and body as received */
	size_t raw_len;
	const char *body;  /* into raw (de-chunked in place) */
	size_t body_len;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: asp-admin [--relay URL] [--data DIR | --token TOKEN] [--insecure]\n"
"                 COMMAND ...\n"
"Administers an asp-relay through its admin API (docs/admin-api.md).\n"
"\n"
"Options:\n"
"  --relay URL      the relay, http://HOST:PORT or https://HOST:PORT\n"
"                   (default: $ASP_RELAY, else relay in admin.conf, else\n"
"                   " ADMIN_DEFAULT_RELAY ")\n"
"  --data DIR       the relay's data directory: asp-admin signs its own\n"
"                   admin token (user \"" ADMIN_USER "\", valid 300 s) with\n"
"                   DIR/secret.  Needs read access to that file.\n"
"  --token TOKEN    an admin token to send instead (from `asp-admin token`;\n"
"                   default: $ASP_TOKEN, else token or data in admin.conf)\n"
"  --insecure       with https://, accept any certificate\n"
"  -h, --help       this text\n"
"\n"
"admin.conf is $XDG_CONFIG_HOME/asp-relay/admin.conf, by default\n"
"~/.config/asp-relay/admin.conf: KEY = VALUE lines with the keys relay,\n"
"token, data (token and data exclude each other) and insecure = yes|no.\n"
"Options beat the environment, which beats the file.  Keep the file\n"
"private (chmod 600): a token in it is an administrator's key.\n"
"\n"
"Commands:\n"
"  token --user U --role user|admin [--desktop D] [--ttl SECONDS]\n"
"        Mints a token from DIR/secret (needs --data) and prints it as the\n"
"        last line.  --ttl defaults to 86400, at most 2592000 (30 days,\n"
"        the relay's default --max-token-life).  A host's token names its\n"
"        desktop with --desktop.\n"
"  policy get USER\n"
"        Prints \"USER help=on|off collab=on|off\".\n"
"  policy set USER [help=on|off] [collab=on|off]\n"
"        Turns a user's permissions on or off (remote assistance requests,\n"
"        shared collaboration); prints the result as `policy get` does.\n"
"  assist list\n"
"        Open assistance requests, one per line:\n"
"        \"ID desktop=D user=U state=S requested=TIME expires=TIME\".\n"
"  assist start DESKTOP\n"
"        Offers assistance to a desktop's user; prints the new request id.\n"
"  assist accept ID | assist decline ID | assist end ID\n"
"        Acts on a request; prints it as `assist list` does.\n"
"  desktops\n"
"        Desktops the relay knows, one per line:\n"
"        \"DESKTOP online=yes|no collaboration=on|off guest=\"NAME\"|- name=\"NAME\"\"\n"
"        (and node=ID on a cluster's relay).\n"
"  console-link [--user U] [--ttl SECONDS]\n"
"        Prints a link that opens the administrator's console (/admin) in a\n"
"        browser, signed in: with --data, as U (default \"" ADMIN_CONSOLE_USER "\") for\n"
"        --ttl seconds (default 28800); with --token, with that token.\n"
"  audit [--limit N]\n"
"        The latest N (default 50) audit events, oldest first:\n"
"        \"TIME ACTOR EVENT DESKTOP|- DETAIL\".\n"
"\n"
"Times are UTC, ISO 8601.  Exit status: 0 done, 1 local failure, 2 usage,\n"
"3 the relay refused (its message is printed), 5 cannot connect (or no\n"
"valid HTTP answer).\n");
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Says what was wrong with the command line; the usage exit status. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "asp-admin: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(asp-admin --help for usage)\n");
	return ADMIN_EXIT_USAGE;
}

/* ---- the relay URL ---- */

static int parse_relay(struct admin *a)
{
	const char *p = a->relay, *host, *end, *colon;
	size_t hlen;

	if (strncmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strncmp(p, "https://", 8) == 0) {
		p += 8;
		a->tls = true;
	} else {
		return usage_error("--relay %s: only http:// and https:// URLs",
				   a->relay);
	}
	end = p + strcspn(p, "/?#");
	if (*p == '[') { /* [IPv6]:port */
		host = p + 1;
		colon = memchr(p, ']', (size_t)(end - p));
		hlen = colon ? (size_t)(colon - host) : 0;
		colon = colon && colon + 1 < end && colon[1] == ':' ? colon + 1
								   : NULL;
	} else {
		host = p;
		colon = memchr(p, ':', (size_t)(end - p));
		hlen = (size_t)((colon ? colon : end) - host);
	}
	if (hlen == 0 || hlen >= sizeof a->host ||
	    (colon && (size_t)(end - colon - 1) >= sizeof a->port) ||
	    (*end && strcmp(end, "/") != 0))
		return usage_error("--relay %s: want SCHEME://HOST[:PORT]",
				   a->relay);
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	if (colon && colon + 1 < end)
		snprintf(a->port, sizeof a->port, "%.*s",
			 (int)(end - colon - 1), colon + 1);
	else
		snprintf(a->port, sizeof a->port, "%s", a->tls ? "443" : "80");
	return 0;
}

/* ---- one connection ---- */

static int tcp_connect(const struct admin *a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = ADMIN_IO_TIMEOUT };
	int fd = -1, rc, err = 0;

	rc = getaddrinfo(a->host, a->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "asp-admin: cannot connect to %s: %s\n",
			a->relay, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		/* On Linux SO_SNDTIMEO also bounds connect(). */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			err = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "asp-admin: cannot connect to %s: %s\n",
			a->relay, strerror(err));
	return fd;
}

static void tls_error(const struct admin *a, const char *what)
{
	unsigned long e = ERR_get_error();

	fprintf(stderr, "asp-admin: cannot connect to %s: %s%s%s\n", a->relay,
		what, e ? ": " : "", e ? ERR_reason_error_string(e) : "");
}

static bool host_is_ip(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 ||
	       inet_pton(AF_INET6, host, addr) == 1;
}

static int tls_start(const struct admin *a, struct conn *c)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	c->ssl = c->ctx ? SSL_new(c->ctx) : NULL;
	if (!c->ssl) {
		tls_error(a, "TLS setup failed");
		return -1;
	}
	if (!a->insecure) {
		SSL_CTX_set_default_verify_paths(c->ctx);
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
		/* An IP literal is checked against the certificate's IP
		 * addresses, a name against its DNS names. */
		if (host_is_ip(a->host))
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
						      a->host);
		else
			SSL_set1_host(c->ssl, a->host);
	}
	/* SNI carries host names only (RFC 6066). */
	if (!host_is_ip(a->host))
		SSL_set_tlsext_host_name(c->ssl, a->host);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1) {
		long v = SSL_get_verify_result(c->ssl);

		if (v != X509_V_OK)
			fprintf(stderr, "asp-admin: cannot connect to %s: "
				"certificate: %s (--insecure skips the check)\n",
				a->relay, X509_verify_cert_error_string(v));
		else
			tls_error(a, "TLS handshake failed");
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
}

static int conn_open(const struct admin *a, struct conn *c)
{
	memset(c, 0, sizeof *c);
	c->fd = tcp_connect(a);
	if (c->fd < 0)
		return -1;
	if (a->tls && tls_start(a, c) < 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static bool conn_write(struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = c->ssl ? SSL_write(c->ssl, buf, (int)len)
				   : send(c->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && !c->ssl && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Bytes read, 0 at end of stream, -1 on error. */
static ssize_t conn_read(struct conn *c, char *buf, size_t cap)
{
	ssize_t n;

	if (!c->ssl) {
		do
			n = recv(c->fd, buf, cap, 0);
		while (n < 0 && errno == EINTR);
		return n;
	}
	n = SSL_read(c->ssl, buf, (int)cap);
	if (n > 0)
		return n;
	/* Servers often close without a TLS close_notify; the body length
	 * tells whether anything is missing. */
	switch (SSL_get_error(c->ssl, (int)n)) {
	case SSL_ERROR_ZERO_RETURN:
	case SSL_ERROR_SYSCALL:
		return ERR_peek_error() ? -1 : 0;
	default:
		return -1;
	}
}

/* ---- HTTP/1.1 ---- */

/* Where the body starts in raw, or NULL while the headers are partial. */
static const char *resp_body_start(const struct http_resp *r)
{
	const char *end = memmem(r->raw, r->raw_len, "\r\n\r\n", 4);

	return end ? end + 4 : NULL;
}

/* The value of header name (case-insensitive), copied into out. */
static bool resp_header(const struct http_resp *r, const char *name,
			char *out, size_t cap)
{
	const char *p = strstr(r->raw, "\r\n"), *end = resp_body_start(r);
	size_t nlen = strlen(name);

	while (p && end && p + 2 < end) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;

			v += strspn(v, " \t");
			snprintf(out, cap, "%.*s", (int)(eol - v), v);
			return true;
		}
		p = eol;
	}
	return false;
}

/* Whether raw holds a whole response of known Content-Length. */
static bool resp_complete(struct http_resp *r)
{
	const char *body;
	char v[32];

	r->raw[r->raw_len] = '\0';
	body = resp_body_start(r);
	if (!body || !resp_header(r, "Content-Length", v, sizeof v))
		return false;
	return (size_t)(r->raw + r->raw_len - body) >= strtoull(v, NULL, 10);
}

static int resp_read(struct conn *c, struct http_resp *r)
{
	size_t cap = 16384;

	r->raw = malloc(cap + 1);
	while (r->raw && !resp_complete(r)) {
		ssize_t n;

		if (r->raw_len == cap) {
			char *more = cap < ADMIN_MAX_RESPONSE
					     ? realloc(r->raw, cap * 2 + 1)
					     : NULL;
			if (!more)
				return -1;
			r->raw = more;
			cap *= 2;
		}
		n = conn_read(c, r->raw + r->raw_len, cap - r->raw_len);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		r->raw_len += (size_t)n;
	}
	return r->raw ? 0 : -1;
}

/* Decodes a chunked body in place; false if it is malformed. */
static bool dechunk(char *body, size_t len, size_t *out_len)
{
	char *src = body, *end = body + len, *dst = body;

	for (;;) {
		char *eol;
		unsigned long n;

		eol = memmem(src, (size_t)(end - src), "\r\n", 2);
		if (!eol)
			return false;
		n = strtoul(src, NULL, 16);
		src = eol + 2;
		if (n == 0)
			break;
		if (n > (size_t)(end - src))
			return false;
		memmove(dst, src, n);
		dst += n;
		src += n + 2;
		if (src > end)
			return false;
	}
	*out_len = (size_t)(dst - body);
	return true;
}

static int resp_parse(struct http_resp *r)
{
	const char *body = resp_body_start(r);
	char v[32];
	int off = 0;

	if (!body || sscanf(r->raw, "HTTP/1.%*1[01] %3d %n", &r->status,
			    &off) != 1 || off == 0)
		return -1;
	snprintf(r->reason, sizeof r->reason, "%.*s",
		 (int)strcspn(r->raw + off, "\r\n"), r->raw + off);
	r->body = body;
	r->body_len = r->raw_len - (size_t)(body - r->raw);
	/* A body shorter than announced was cut off in transit. */
	if (resp_header(r, "Content-Length", v, sizeof v)) {
		if (strtoull(v, NULL, 10) > r->body_len)
			return -1;
		r->body_len = strtoull(v, NULL, 10);
	}
	if (resp_header(r, "Transfer-Encoding", v, sizeof v) &&
	    strcasecmp(v, "chunked") == 0 &&
	    !dechunk((char *)body, r->body_len, &r->body_len))
		return -1;
	return 0;
}

static char *request_text(const struct admin *a, const char *method,
			  const char *path, const char *body)
{
	bool v6 = strchr(a->host, ':') != NULL;
	char *req = NULL;
	int n;

	n = asprintf(&req,
		     "%s %s HTTP/1.1\r\n"
		     "Host: %s%s%s:%s\r\n"
		     "User-Agent: asp-admin\r\n"
		     "Accept: application/json\r\n"
		     "Authorization: Bearer %s\r\n"
		     "Connection: close\r\n"
		     "%s"
		     "Content-Length: %zu\r\n"
		     "\r\n%s",
		     method, path, v6 ? "[" : "", a->host, v6 ? "]" : "",
		     a->port, a->token,
		     body ? "Content-Type: application/json\r\n" : "",
		     body ? strlen(body) : 0, body ? body : "");
	return n < 0 ? NULL : req;
}

/* Sends one request and reads the response.  0, or an exit status. */
static int http_call(const struct admin *a, const char *method,
		     const char *path, const char *body, struct http_resp *r)
{
	struct conn c;
	char *req;
	int rc = ADMIN_EXIT_OK;

	memset(r, 0, sizeof *r);
	req = request_text(a, method, path, body);
	if (!req)
		return ADMIN_EXIT_FAIL;
	if (conn_open(a, &c) < 0) {
		free(req);
		return ADMIN_EXIT_CONNECT;
	}
	if (!conn_write(&c, req, strlen(req)) || resp_read(&c, r) < 0 ||
	    resp_parse(r) < 0) {
		fprintf(stderr, "asp-admin: %s %s: no valid HTTP response from "
			"%s\n", method, path, a->relay);
		rc = ADMIN_EXIT_CONNECT;
	}
	conn_close(&c);
	free(req);
	return rc;
}

/* Bytes of the character at s that must not reach a terminal: C0
 * controls and DEL, C1 controls (U+0080-U+009F, which some terminals
 * obey as escape sequences), and the bidi marks, embeddings, overrides
 * and isolates (U+200E-F, U+202A-E, U+2066-9, which reorder what a
 * person reads).  0 when the character is fine. */
static size_t unsafe_len(const unsigned char *s)
{
	if (s[0] < 0x20 || s[0] == 0x7f)
		return 1;
	if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
		return 2;
	if (s[0] == 0xe2 && s[1] == 0x80 &&
	    (s[2] == 0x8e || s[2] == 0x8f || (s[2] >= 0xaa && s[2] <= 0xae)))
		return 3;
	if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9)
		return 3;
	return 0;
}

/* Copies s into out (cap bytes) with each unsafe character replaced by
 * '?', so one item stays one line, in order, whatever a peer put in it. */
static const char *clean(const char *s, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	while (*p && o + 1 < cap) {
		size_t n = unsafe_len(p);

		if (n) {
			out[o++] = '?';
			p += n;
		} else {
			out[o++] = (char)*p++;
		}
	}
	out[o] = '\0';
	return out;
}

/* Prints the relay's refusal: its error message, else the status. */
static void print_refusal(const struct http_resp *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *msg = json_string_value(
		json_object_get(json_object_get(j, "error"), "message"));
	char buf[1024];

	if (msg)
		fprintf(stderr, "asp-admin: %s\n", clean(msg, buf, sizeof buf));
	else
		fprintf(stderr, "asp-admin: the relay answered %d %s\n",
			r->status, r->reason);
	json_decref(j);
}

/* One API call: body (if any) is sent as JSON; *out receives the parsed
 * response object (the caller decrefs).  0 or an exit status. */
static int api_call(const struct admin *a, const char *method,
		    const char *path, json_t *body, json_t **out)
{
	struct http_resp r;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	*out = NULL;
	rc = http_call(a, method, path, text, &r);
	free(text);
	if (rc == 0 && (r.status < 200 || r.status > 299)) {
		print_refusal(&r);
		rc = ADMIN_EXIT_REFUSED;
	}
	if (rc == 0) {
		*out = json_loadb(r.body, r.body_len, 0, NULL);
		if (!json_is_object(*out)) {
			fprintf(stderr, "asp-admin: %s %s: the relay's answer is "
				"not a JSON object\n", method, path);
			rc = ADMIN_EXIT_FAIL;
		}
	}
	free(r.raw);
	return rc;
}

/* ---- output ---- */

static const char *jstr(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : "-";
}

static const char *onoff(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key)) ? "on" : "off";
}

/* UTC ISO 8601 of a unix-seconds member ("-" when absent). */
static const char *jtime(json_t *obj, const char *key, char buf[32])
{
	json_t *v = json_object_get(obj, key);
	time_t t = (time_t)json_integer_value(v);
	struct tm tm;

	if (!json_is_integer(v) || !gmtime_r(&t, &tm) ||
	    !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "-");
	return buf;
}

static void put_clean(const char *s)
{
	char buf[2048];

	fputs(clean(s, buf, sizeof buf), stdout);
}

/* A string member as a quoted JSON string, or "-"; into buf. */
static const char *jquoted(json_t *obj, const char *key, char *buf,
			   size_t cap)
{
	json_t *v = json_object_get(obj, key);
	char *q = json_is_string(v) ? json_dumps(v, JSON_ENCODE_ANY) : NULL;

	clean(q ? q : "-", buf, cap);
	free(q);
	return buf;
}

static void print_assist(json_t *r)
{
	char t1[32], t2[32];

	printf("%s desktop=%s user=%s state=%s requested=%s expires=%s\n",
	       jstr(r, "id"), jstr(r, "desktop"), jstr(r, "user"),
	       jstr(r, "state"), jtime(r, "requested_at", t1),
	       jtime(r, "expires_at", t2));
}

static void print_policy(json_t *p, const char *user)
{
	printf("%s help=%s collab=%s\n",
	       json_is_string(json_object_get(p, "user")) ? jstr(p, "user")
							  : user,
	       onoff(p, "help"), onoff(p, "collab"));
}

static void print_desktop(json_t *d)
{
	char guest[160], name[160];

	printf("%s online=%s collaboration=%s guest=%s name=%s",
	       jstr(d, "desktop"),
	       json_is_true(json_object_get(d, "online")) ? "yes" : "no",
	       onoff(d, "collaboration"),
	       jquoted(d, "guest", guest, sizeof guest),
	       jquoted(d, "name", name, sizeof name));
	/* A cluster's relays name the node holding each desktop. */
	if (json_is_string(json_object_get(d, "node")))
		printf(" node=%s", jstr(d, "node"));
	putchar('\n');
}

static void print_event(json_t *e)
{
	const char *detail = json_string_value(json_object_get(e, "detail"));
	char t[32];

	printf("%s ", jtime(e, "time", t));
	put_clean(jstr(e, "actor"));
	putchar(' ');
	put_clean(jstr(e, "event"));
	putchar(' ');
	put_clean(jstr(e, "desktop"));
	if (detail && *detail) {
		putchar(' ');
		put_clean(detail);
	}
	putchar('\n');
}

/* Calls print for every element of the response's array `key`. */
static int print_list(const struct admin *a, const char *path,
		      const char *key, void (*print)(json_t *))
{
	json_t *resp, *arr, *item;
	size_t i;
	int rc = api_call(a, "GET", path, NULL, &resp);

	if (rc)
		return rc;
	arr = json_object_get(resp, key);
	if (!json_is_array(arr)) {
		fprintf(stderr, "asp-admin: GET %s: no \"%s\" list in the "
			"answer\n", path, key);
		rc = ADMIN_EXIT_FAIL;
	}
	json_array_foreach(arr, i, item)
		print(item);
	json_decref(resp);
	return rc;
}

/* ---- commands ---- */

/* Matches argv[*i] against --name VALUE or --name=VALUE. */
static bool opt_value(int argc, char **argv, int *i, const char *name,
		      const char **out)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return false;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return true;
	}
	if (argv[*i][n] != '\0' || *i + 1 >= argc)
		return false;
	*out = argv[++*i];
	return true;
}

static bool parse_uint(const char *s, unsigned long long max,
		       unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *out <= max;
}

static int load_secret(const struct admin *a, uint8_t secret[])
{
	int rc = proto_token_secret_load(a->data, false, secret);

	if (rc == -PROTO_E_NOT_FOUND)
		fprintf(stderr, "asp-admin: %s/secret does not exist (the relay "
			"creates it at its first start)\n", a->data);
	else if (rc == -PROTO_E_UNAUTHORIZED)
		fprintf(stderr, "asp-admin: %s/secret refused: it must be a "
			"32-byte file of mode 0600\n", a->data);
	else if (rc < 0)
		fprintf(stderr, "asp-admin: %s/secret: %s\n", a->data,
			strerror(errno));
	return rc < 0 ? ADMIN_EXIT_FAIL : 0;
}

static int mint(const struct admin *a, const struct proto_claims *c,
		char out[PROTO_TOKEN_BUF])
{
	uint8_t secret[PROTO_TOKEN_SECRET_LEN];
	int rc = load_secret(a, secret);

	if (rc == 0 && proto_token_mint(secret, sizeof secret, c, out,
					PROTO_TOKEN_BUF) < 0) {
		fprintf(stderr, "asp-admin: cannot mint the token\n");
		rc = ADMIN_EXIT_FAIL;
	}
	OPENSSL_cleanse(secret, sizeof secret);
	return rc;
}

static int cmd_token(struct admin *a, int argc, char **argv)
{
	const char *user = NULL, *role = NULL, *desktop = "", *ttl = NULL;
	struct proto_claims c = { 0 };
	unsigned long long secs = ADMIN_DEFAULT_TTL;
	char tok[PROTO_TOKEN_BUF];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!opt_value(argc, argv, &i, "--user", &user) &&
		    !opt_value(argc, argv, &i, "--role", &role) &&
		    !opt_value(argc, argv, &i, "--desktop", &desktop) &&
		    !opt_value(argc, argv, &i, "--ttl", &ttl))
			return usage_error("token: unknown argument %s", argv[i]);
	}
	if (!a->data)
		return usage_error("token needs --data DIR");
	if (!user || !proto_token_user_valid(user))
		return usage_error("token: --user %s: want 1-64 of A-Z a-z 0-9 "
				   "._@-", user ? user : "(missing)");
	if (proto_role_parse(role, &c.role) < 0)
		return usage_error("token: --role %s: want user or admin",
				   role ? role : "(missing)");
	if (*desktop && !proto_token_desktop_valid(desktop))
		return usage_error("token: --desktop %s: want 1-64 of A-Z a-z "
				   "0-9 ._-", desktop);
	if (ttl && (!parse_uint(ttl, ADMIN_MAX_TTL, &secs) || !secs))
		return usage_error("token: --ttl %s: want 1 to %d seconds (the "
				   "relay's default --max-token-life)", ttl,
				   ADMIN_MAX_TTL);
	snprintf(c.user, sizeof c.user, "%s", user);
	snprintf(c.desktop, sizeof c.desktop, "%s", desktop);
	c.iat = (uint64_t)time(NULL);
	c.exp = c.iat + secs;
	rc = mint(a, &c, tok);
	if (rc == 0)
		printf("%s\n", tok);
	return rc;
}

/* Parses help=on|off or collab=on|off into the request body. */
static bool policy_arg(json_t *body, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char key[8];

	if (!eq || (size_t)(eq - arg) >= sizeof key)
		return false;
	snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
	if (strcmp(key, "help") != 0 && strcmp(key, "collab") != 0)
		return false;
	if (strcmp(eq + 1, "on") != 0 && strcmp(eq + 1, "off") != 0)
		return false;
	json_object_set_new(body, key, json_boolean(strcmp(eq + 1, "on") == 0));
	return true;
}

static int cmd_policy(struct admin *a, int argc, char **argv)
{
	bool set = argc >= 3 && strcmp(argv[1], "set") == 0;
	json_t *body = NULL, *resp = NULL;
	char path[128];
	int rc;

	if (argc < 3 || (!set && (strcmp(argv[1], "get") != 0 || argc != 3)) ||
	    (set && (argc < 4 || argc > 5)))
		return usage_error("policy get USER | policy set USER "
				   "[help=on|off] [collab=on|off]");
	if (!proto_token_user_valid(argv[2]))
		return usage_error("policy: bad user id %s", argv[2]);
	snprintf(path, sizeof path, "/api/policy/%s", argv[2]);
	if (set) {
		body = json_object();
		for (int i = 3; i < argc; i++)
			if (!policy_arg(body, argv[i])) {
				json_decref(body);
				return usage_error("policy set: %s: want help=on|off "
						   "or collab=on|off", argv[i]);
			}
	}
	rc = api_call(a, set ? "PUT" : "GET", path, body, &resp);
	if (rc == 0)
		print_policy(resp, argv[2]);
	json_decref(body);
	json_decref(resp);
	return rc;
}

/* A request id as the relay makes them: a safe URL path segment. */
static bool assist_id_valid(const char *id)
{
	return proto_token_desktop_valid(id);
}

static int assist_act(struct admin *a, const char *verb, const char *id)
{
	json_t *resp = NULL;
	char path[160];
	int rc;

	if (!assist_id_valid(id))
		return usage_error("assist: bad request id %s", id);
	snprintf(path, sizeof path, "/api/assist/%s/%s", id, verb);
	rc = api_call(a, "POST", path, NULL, &resp);
	if (rc == 0)
		print_assist(resp);
	json_decref(resp);
	return rc;
}

static int assist_start(struct admin *a, const char *desktop)
{
	json_t *body, *resp = NULL;
	int rc;

	if (!proto_token_desktop_valid(desktop))
		return usage_error("assist start: bad desktop id %s", desktop);
	body = json_pack("{s:s}", "desktop", desktop);
	rc = api_call(a, "POST", "/api/assist", body, &resp);
	json_decref(body);
	if (rc == 0 && !json_is_string(json_object_get(resp, "id"))) {
		fprintf(stderr, "asp-admin: the relay's answer has no id\n");
		rc = ADMIN_EXIT_FAIL;
	}
	if (rc == 0)
		printf("%s\n", jstr(resp, "id"));
	json_decref(resp);
	return rc;
}

static int cmd_assist(struct admin *a, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (strcmp(sub, "list") == 0 && argc == 2)
		return print_list(a, "/api/assist?limit=1000", "requests",
				  print_assist);
	if (strcmp(sub, "start") == 0 && argc == 3)
		return assist_start(a, argv[2]);
	if ((strcmp(sub, "accept") == 0 || strcmp(sub, "decline") == 0 ||
	     strcmp(sub, "end") == 0) && argc == 3)
		return assist_act(a, sub, argv[2]);
	return usage_error("assist list | start DESKTOP | accept ID | "
			   "decline ID | end ID");
}

static int cmd_desktops(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return usage_error("desktops: unexpected argument %s", argv[1]);
	return print_list(a, "/api/desktops", "desktops", print_desktop);
}

static int cmd_audit(struct admin *a, int argc, char **argv)
{
	const char *limit = "50";
	unsigned long long n;
	char path[64];

	for (int i = 1; i < argc; i++)
		if (!opt_value(argc, argv, &i, "--limit", &limit))
			return usage_error("audit: unknown argument %s", argv[i]);
	if (!parse_uint(limit, 1000, &n) || n == 0)
		return usage_error("audit: --limit %s: want 1 to 1000", limit);
	snprintf(path, sizeof path, "/api/audit?limit=%llu", n);
	return print_list(a, path, "events", print_event);
}

/* The console's link carries its token in the fragment, which browsers
 * never send to a server; the page keeps it for its tab only. */
static int cmd_console_link(struct admin *a, int argc, char **argv)
{
	const char *user = ADMIN_CONSOLE_USER, *ttl = NULL;
	struct proto_claims c = { .role = PROTO_ROLE_ADMIN };
	unsigned long long secs = ADMIN_CONSOLE_TTL;
	char tok[PROTO_TOKEN_BUF];
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!opt_value(argc, argv, &i, "--user", &user) &&
		    !opt_value(argc, argv, &i, "--ttl", &ttl))
			return usage_error("console-link: unknown argument %s",
					   argv[i]);
	}
	if (a->token_opt) {
		if (strlen(a->token_opt) > PROTO_TOKEN_MAX)
			return usage_error("--token: longer than %d characters",
					   PROTO_TOKEN_MAX);
		snprintf(tok, sizeof tok, "%s", a->token_opt);
	} else if (!a->data) {
		return usage_error("console-link needs --data DIR or --token TOKEN");
	} else {
		if (!proto_token_user_valid(user))
			return usage_error("console-link: --user %s: want 1-64 of "
					   "A-Z a-z 0-9 ._@-", user);
		if (ttl && (!parse_uint(ttl, 10ull * 365 * 86400, &secs) || !secs))
			return usage_error("console-link: --ttl %s: want 1 to "
					   "315360000 seconds", ttl);
		snprintf(c.user, sizeof c.user, "%s", user);
		c.iat = (uint64_t)time(NULL);
		c.exp = c.iat + secs;
		rc = mint(a, &c, tok);
	}
	if (rc == 0)
		printf("%s://%s:%s/admin#token=%s\n", a->tls ? "https" : "http",
		       a->host, a->port, tok);
	return rc;
}

/* Gets the token API commands send: --token, or one minted from --data. */
static int api_token(struct admin *a)
{
	struct proto_claims c = { .role = PROTO_ROLE_ADMIN };

	if (a->token_opt) {
		if (strlen(a->token_opt) > PROTO_TOKEN_MAX)
			return usage_error("--token: longer than %d characters",
					   PROTO_TOKEN_MAX);
		snprintf(a->token, sizeof a->token, "%s", a->token_opt);
		return 0;
	}
	if (!a->data)
		return usage_error("this command needs --data DIR or --token "
				   "TOKEN ($ASP_TOKEN, or token or data in "
				   "admin.conf)");
	snprintf(c.user, sizeof c.user, "%s", ADMIN_USER);
	c.iat = (uint64_t)time(NULL);
	c.exp = c.iat + ADMIN_API_TTL;
	return mint(a, &c, a->token);
}

static const struct {
	const char *name;
	int (*run)(struct admin *a, int argc, char **argv);
} COMMANDS[] = {
	{ "token", cmd_token },       { "policy", cmd_policy },
	{ "assist", cmd_assist },     { "desktops", cmd_desktops },
	{ "audit", cmd_audit },       { "console-link", cmd_console_link },
};

static int admin_conf_key(void *user, const char *section, const char *name,
			  const char *value)
{
	struct admin *a = user;
	char **to = NULL;

	if (*section)
		return 0;
	if (!strcmp(name, "relay"))
		to = &a->conf_relay;
	else if (!strcmp(name, "data"))
		to = &a->conf_data;
	else if (!strcmp(name, "token"))
		to = &a->conf_token;
	else if (!strcmp(name, "insecure") &&
		 (!strcmp(value, "yes") || !strcmp(value, "no"))) {
		a->insecure = a->insecure || !strcmp(value, "yes");
		return 1;
	} else
		return 0;
	free(*to);
	*to = strdup(value);
	return *to != NULL;
}

/* Reads admin.conf if there is one; -1 (said) if it is bad. */
static int admin_conf_read(struct admin *a)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int rc;

	if (xdg && *xdg)
		snprintf(a->conf_path, sizeof a->conf_path,
			 "%s/asp-relay/admin.conf", xdg);
	else if (home && *home)
		snprintf(a->conf_path, sizeof a->conf_path,
			 "%s/.config/asp-relay/admin.conf", home);
	else
		return 0;
	rc = ini_parse(a->conf_path, admin_conf_key, a);
	if (rc == -1 && errno == ENOENT)
		return 0;
	if (rc == -1)
		fprintf(stderr, "asp-admin: cannot read %s: %s\n",
			a->conf_path, strerror(errno));
	else if (rc > 0)
		fprintf(stderr, "asp-admin: %s:%d: want relay, token, data or "
			"insecure = yes|no\n", a->conf_path, rc);
	else if (a->conf_data && a->conf_token)
		fprintf(stderr, "asp-admin: %s: token and data exclude each "
			"other\n", a->conf_path);
	else
		return 0;
	return -1;
}

/* Fills in what the options left out: $ASP_RELAY and $ASP_TOKEN, then
 * admin.conf, then the defaults. */
static int admin_defaults(struct admin *a)
{
	const char *env_relay = getenv("ASP_RELAY");
	const char *env_token = getenv("ASP_TOKEN");

	if (admin_conf_read(a))
		return -1;
	if (!a->relay)
		a->relay = env_relay && *env_relay ? env_relay
			 : a->conf_relay	   ? a->conf_relay
					      : ADMIN_DEFAULT_RELAY;
	if (a->data || a->token_opt)
		return 0;
	if (env_token && *env_token)
		a->token_opt = env_token;
	else if (a->conf_token)
		a->token_opt = a->conf_token;
	else
		a->data = a->conf_data;
	return 0;
}

static void admin_free(struct admin *a)
{
	free(a->conf_relay);
	free(a->conf_data);
	if (a->conf_token)
		OPENSSL_cleanse(a->conf_token, strlen(a->conf_token));
	free(a->conf_token);
}

/* Parses the options before the command; the command's index or -1. */
static int parse_global(struct admin *a, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--insecure") == 0)
			a->insecure = true;
		else if (strcmp(argv[i], "-h") == 0 ||
			 strcmp(argv[i], "--help") == 0)
			return -2;
		else if (!opt_value(argc, argv, &i, "--relay", &a->relay) &&
			 !opt_value(argc, argv, &i, "--data", &a->data) &&
			 !opt_value(argc, argv, &i, "--token", &a->token_opt))
			return usage_error("unknown option %s", argv[i]), -1;
	}
	if (a->data && a->token_opt)
		return usage_error("--data and --token exclude each other"), -1;
	if (i == argc)
		return usage_error("no command given"), -1;
	return i;
}

static int run(struct admin *a, int argc, char **argv)
{
	int cmd = parse_global(a, argc, argv), rc;

	if (cmd == -2) {
		usage(stdout);
		return ADMIN_EXIT_OK;
	}
	if (cmd < 0)
		return ADMIN_EXIT_USAGE;
	if (admin_defaults(a))
		return ADMIN_EXIT_USAGE;
	rc = parse_relay(a);
	for (size_t i = 0; rc == 0 && i < sizeof COMMANDS / sizeof *COMMANDS;
	     i++) {
		if (strcmp(argv[cmd], COMMANDS[i].name) != 0)
			continue;
		if (strcmp(argv[cmd], "token") != 0 &&
		    strcmp(argv[cmd], "console-link") != 0)
			rc = api_token(a);
		return rc ? rc : COMMANDS[i].run(a, argc - cmd, argv + cmd);
	}
	return rc ? rc : usage_error("unknown command %s", argv[cmd]);
}

int main(int argc, char **argv)
{
	struct admin a = { 0 };
	int rc = run(&a, argc, argv);

	admin_free(&a);
	return rc;
}
