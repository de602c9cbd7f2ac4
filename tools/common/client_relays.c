/*
 * client_relays: the relay list, redirects and the reconnect backoff of
 * the client tools (see client_relays.h for the rules).
 */
#include "tools/common/client_relays.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this much of a URL is quoted in a message. */
#define CLIENT_URL_SHOWN 96

/* Once a session was reached, these refusals of a rejoin say the relay or
 * the desktop is passing through a failover or a hiccup, not that the
 * client is unwelcome: the host has not taken its desktop back yet
 * (offline), the connection could not keep up (slow), the relay failed
 * (internal), the hello was late on a slow network (hello_timeout). */
static const char *const client_rejoin_codes[] = {
	"offline", "slow", "internal", "hello_timeout",
};

/* Copies s into out for a message: unprintable bytes become '?', and a
 * long URL is cut with "...". */
static void client_relays_shown(const char *s,
				char out[CLIENT_URL_SHOWN + 4])
{
	size_t i;

	for (i = 0; s[i] && i < CLIENT_URL_SHOWN; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

static bool client_host_char(int ch)
{
	return isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

static bool client_path_char(int ch)
{
	return isalnum(ch) || strchr("/._~%-", ch);
}

/* Skips the host at p (a name or an [IPv6] literal); NULL if none. */
static const char *client_skip_host(const char *p)
{
	const char *start = p;

	if (*p == '[') {
		for (p++; isxdigit((unsigned char)*p) || *p == ':' || *p == '.';
		     p++)
			;
		return *p == ']' && p > start + 1 ? p + 1 : NULL;
	}
	while (*p && client_host_char((unsigned char)*p))
		p++;
	return p > start ? p : NULL;
}

/* Skips ":PORT" at p if there is one; NULL if it is not 1-65535. */
static const char *client_skip_port(const char *p)
{
	long port = 0;
	int digits = 0;

	if (*p != ':')
		return p;
	for (p++; isdigit((unsigned char)*p) && digits < 6; p++, digits++)
		port = port * 10 + (*p - '0');
	return digits && port >= 1 && port <= 65535 ? p : NULL;
}

/* The part after the scheme, or NULL if url has none we take. */
static const char *client_skip_scheme(const char *url, bool redirect)
{
	static const char *const schemes[] = {
		"ws://", "wss://", "http://", "https://",
	};
	size_t i, n = redirect ? 2 : 4, len;

	for (i = 0; i < n; i++) {
		len = strlen(schemes[i]);
		if (!strncmp(url, schemes[i], len))
			return url + len;
	}
	return NULL;
}

/* What may follow HOST[:PORT]: nothing or "/" for a redirect, a path of
 * plain characters for a --relay URL. */
static bool client_rest_ok(const char *p, bool redirect)
{
	if (redirect)
		return !*p || !strcmp(p, "/");
	if (*p && *p != '/')
		return false;
	for (; *p; p++)
		if (!client_path_char((unsigned char)*p))
			return false;
	return true;
}

int client_relays_check_url(const char *url, bool redirect, char *why,
			    size_t why_len)
{
	char shown[CLIENT_URL_SHOWN + 4];
	const char *p, *host;

	client_relays_shown(url, shown);
	if (!*url) {
		snprintf(why, why_len, "a relay URL is empty");
		return -EINVAL;
	}
	if (strlen(url) >= CLIENT_URL_MAX) {
		snprintf(why, why_len, "'%s' is longer than %d bytes", shown,
			 CLIENT_URL_MAX - 1);
		return -EINVAL;
	}
	host = client_skip_scheme(url, redirect);
	if (!host) {
		snprintf(why, why_len, "'%s' does not start with ws:// or "
			 "wss://", shown);
		return -EINVAL;
	}
	p = client_skip_host(host);
	if (!p) {
		snprintf(why, why_len, "'%s' has no host name or address",
			 shown);
		return -EINVAL;
	}
	p = client_skip_port(p);
	if (!p) {
		snprintf(why, why_len, "the port in '%s' is not a number from "
			 "1 to 65535", shown);
		return -EINVAL;
	}
	if (!client_rest_ok(p, redirect)) {
		snprintf(why, why_len, redirect ?
			 "'%s' is more than ws[s]://HOST:PORT" :
			 "'%s' has more than ws[s]://HOST:PORT/PATH (a user, "
			 "query or unusual character)", shown);
		return -EINVAL;
	}
	return 0;
}

int client_relays_init(struct client_relays *r, const char *list,
		       bool reconnect, char *why, size_t why_len)
{
	const char *p = list;
	size_t n;

	memset(r, 0, sizeof(*r));
	r->reconnect = reconnect;
	for (;;) {
		n = strcspn(p, ",");
		if (r->n == CLIENT_RELAYS_MAX) {
			snprintf(why, why_len, "more than %d relays",
				 CLIENT_RELAYS_MAX);
			return -EINVAL;
		}
		if (n >= CLIENT_URL_MAX) {
			snprintf(why, why_len, "a relay URL is longer than %d "
				 "bytes", CLIENT_URL_MAX - 1);
			return -EINVAL;
		}
		memcpy(r->list[r->n], p, n);
		r->list[r->n][n] = '\0';
		if (client_relays_check_url(r->list[r->n], false, why,
					    why_len))
			return -EINVAL;
		r->n++;
		if (!p[n])
			break;
		p += n + 1;
	}
	snprintf(r->target, sizeof(r->target), "%s", r->list[0]);
	return 0;
}

/* ---- what the relay says ---- */

static bool client_rejoin_code(const char *code)
{
	size_t i;

	for (i = 0; i < sizeof(client_rejoin_codes) /
		    sizeof(client_rejoin_codes[0]); i++)
		if (!strcmp(code, client_rejoin_codes[i]))
			return true;
	return false;
}

/* Whether a refusal with this machine code lets the client try again. */
static bool client_relays_retryable(const struct client_relays *r,
				    const char *code)
{
	return !strcmp(code, "redirect") || !strcmp(code, "unavailable") ||
	       (r->had_session && client_rejoin_code(code));
}

/* Our verdict on this attempt, said on stderr at once. */
static void client_relays_verdict(struct client_relays *r, const char *fmt,
				  ...) __attribute__((format(printf, 2, 3)));
static void client_relays_verdict(struct client_relays *r, const char *fmt,
				  ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", program_invocation_short_name, r->why);
	fflush(stderr);
}

/* A redirect: keeps a good URL to follow once the connection closes. */
static void client_relays_take_redirect(struct client_relays *r,
					const char *url)
{
	char why[200];
	char shown[CLIENT_URL_SHOWN + 4];

	if (!url) {
		client_relays_verdict(r, "the relay's redirect names no URL");
	} else if (client_relays_check_url(url, true, why, sizeof(why))) {
		client_relays_verdict(r, "the relay's redirect is not valid: "
				      "%s", why);
	} else if (r->hops >= CLIENT_REDIRECT_HOPS) {
		client_relays_shown(url, shown);
		snprintf(why, sizeof(why), "%d redirects in a row without "
			 "reaching a session; the last to %s",
			 CLIENT_REDIRECT_HOPS + 1, shown);
		client_relays_verdict(r, "redirect loop: %s", why);
	} else {
		snprintf(r->redirect, sizeof(r->redirect), "%s", url);
	}
}

bool client_relays_on_error(struct client_relays *r,
			    const struct proto_ctrl *m,
			    struct client_refusal *ref, bool before_session)
{
	const char *code = proto_ctrl_str(m, "code");

	if (!code)
		return false;
	if (!strcmp(code, "redirect")) {
		client_relays_take_redirect(r, proto_ctrl_str(m, "url"));
		snprintf(ref->code, sizeof(ref->code), "%s", code);
		return true;
	}
	/* `unavailable` ends the connection whenever it comes (admission,
	 * or a node that lost its lease); the rest only refuse a rejoin
	 * (an owner's request can be refused `offline` and stay). */
	if (strcmp(code, "unavailable") &&
	    !(before_session && client_relays_retryable(r, code)))
		return false;
	client_print_error(m, ref, false);
	return true;
}

void client_relays_session(struct client_relays *r)
{
	if (r->lost)
		client_say("reconnected");
	r->lost = false;
	r->in_session = true;
	r->had_session = true;
	r->hops = 0;
	r->retries = 0;
	r->failed = 0;
}

/* ---- after a close ---- */

/* A refusal that ends the client: the error it answered what we came for
 * with, or the close code the relay sent, unless retryable. */
static bool client_relays_final(const struct client_relays *r,
				const struct client_close_info *ci,
				const struct client_refusal *ref)
{
	const char *code = NULL;

	if (ref->fatal)
		code = ref->code;
	else if (ci->peer_code >= 4000 && ci->peer_code <= 4999)
		code = ci->peer_reason;
	return code && !client_relays_retryable(r, code);
}

/* 0.25 s doubling to 5 s, each drawn from [d/2, d]. */
static int64_t client_relays_delay(struct client_relays *r)
{
	int64_t d = CLIENT_RETRY_FIRST_US;
	unsigned i;

	for (i = 0; i < r->retries && d < CLIENT_RETRY_CAP_US; i++)
		d *= 2;
	if (d > CLIENT_RETRY_CAP_US)
		d = CLIENT_RETRY_CAP_US;
	r->retries++;
	return d / 2 + (int64_t)(random() % (d / 2 + 1));
}

static void client_relays_say_retry(const struct client_relays *r,
				    const struct client_close_info *ci,
				    const struct client_refusal *ref,
				    int64_t us)
{
	long long ms = (long long)(us / 1000);

	if (*r->why)
		client_say("reconnecting in %lld ms: %s", ms, r->why);
	else if (!ci->established)
		client_say("reconnecting in %lld ms: cannot connect to %s: %s",
			   ms, r->target, *ci->connect_error ?
			   ci->connect_error : "no reason given");
	else if (ci->peer_code)
		client_say("reconnecting in %lld ms: the relay closed the "
			   "connection (%d%s%s)", ms, ci->peer_code,
			   *ci->peer_reason ? " " : "", ci->peer_reason);
	else if (*ref->code)
		client_say("reconnecting in %lld ms: the relay answered %s",
			   ms, ref->code);
	else
		client_say("reconnecting in %lld ms: the connection was lost "
			   "(1006)", ms);
}

/* The client stops here.  A refusal it would have tried elsewhere (it
 * closed the connection itself for it) is the outcome then. */
static int64_t client_relays_give_up(struct client_refusal *ref)
{
	if (*ref->code)
		ref->fatal = true;
	return -1;
}

/* A failed attempt or a lost session: whether to go on, and after how
 * long (-1: the client is done). */
static int64_t client_relays_fail(struct client_relays *r,
				  const struct client_close_info *ci,
				  struct client_refusal *ref, bool was_session)
{
	int64_t delay;

	if (client_relays_final(r, ci, ref))
		return -1;
	if (was_session) {
		if (!r->reconnect)
			return client_relays_give_up(ref);
		r->lost = true;
	} else if (!r->had_session && ++r->failed >= r->n) {
		return client_relays_give_up(ref);
	}
	delay = client_relays_delay(r);
	client_relays_say_retry(r, ci, ref, delay);
	r->at = (r->at + 1) % r->n;
	snprintf(r->target, sizeof(r->target), "%s", r->list[r->at]);
	r->hops = 0;
	if (r->n > 1)
		client_say("next-relay: %s", r->target);
	return delay;
}

int client_relays_on_closed(struct client_relays *r, struct client *c,
			    struct client_refusal *ref)
{
	bool was_session = r->in_session;
	char why[300] = "the retry could not be scheduled";
	int64_t delay = 0;

	r->in_session = false;
	if (*r->redirect) {
		snprintf(r->target, sizeof(r->target), "%s", r->redirect);
		*r->redirect = '\0';
		r->hops++;
		client_say("redirected: %s", r->target);
	} else {
		delay = client_relays_fail(r, client_close_info(c), ref,
					   was_session);
		if (delay < 0)
			return -1;
	}
	*ref = (struct client_refusal){ 0 };
	*r->why = '\0';
	if (client_retarget(c, r->target, why, sizeof(why)) ||
	    client_reconnect(c, delay)) {
		fprintf(stderr, "%s: cannot connect again: %s\n",
			program_invocation_short_name, why);
		return -1;
	}
	return 0;
}

int client_relays_exit_status(const struct client_relays *r,
			      const struct client_close_info *ci,
			      const struct client_refusal *ref, bool left)
{
	/* Told to leave on the way elsewhere (the relay away, a redirect
	 * or a refusal worth another attempt): a clean exit. */
	if (left && !client_relays_final(r, ci, ref) &&
	    (r->lost || *r->redirect || *ref->code ||
	     (ci->peer_code >= 4000 && ci->peer_code <= 4999)))
		return CLIENT_EXIT_OK;
	if (*r->why) {
		fprintf(stderr, "cannot connect: %s\n", r->why);
		return CLIENT_EXIT_CONNECT;
	}
	return client_exit_status(ci, ref, left);
}
