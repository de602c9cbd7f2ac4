/*
 * proto_url: the addresses an operator or a peer gives as URLs
 * (proto_url.h).
 */
#include "protocol/proto_url.h"

#include <stdbool.h>
#include <string.h>

#include "protocol/proto_error.h"

/* Reads a decimal number of at most max from *p, advancing it. */
static bool url_number(const char **p, long max, long *out)
{
	const char *q = *p;
	long n = 0;

	if (*q < '0' || *q > '9')
		return false;
	for (; *q >= '0' && *q <= '9'; q++) {
		n = n * 10 + (*q - '0');
		if (n > max)
			return false;
	}
	if (q - *p > 1 && **p == '0')
		return false; /* no leading zeros: "06379" is a typo */
	*p = q;
	*out = n;
	return true;
}

/* What a host name (or an IPv4 address) is made of. */
#define URL_NAME_CHARS                                                      \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"

/* The host: a name or IPv4 address (the bytes in names), or an IPv6
 * address in brackets; copied into host without the brackets. */
static bool url_host(const char **p, const char *names, char *host,
		     size_t cap)
{
	const char *q = *p, *end;
	size_t n;

	if (*q == '[') {
		end = strchr(q, ']');
		n = end ? (size_t)(end - q - 1) : 0;
		if (n == 0 || strspn(q + 1, "0123456789abcdefABCDEF:.") != n)
			return false;
		q++;
		*p = end + 1;
	} else {
		n = strspn(q, names);
		*p = q + n;
	}
	if (n == 0 || n >= cap)
		return false;
	memcpy(host, q, n);
	host[n] = '\0';
	return true;
}

/* What is wrong with url, or NULL if it is redis://HOST:PORT[/DB] and
 * nothing more: no credentials, no query, DB 0-15 (Redis's default
 * count of databases). */
static const char *url_fault(struct proto_redis_addr *a, const char *url)
{
	static const char SCHEME[] = "redis://";
	const char *p = url;
	long port = 0, db = 0;

	if (!url || strncmp(url, SCHEME, sizeof SCHEME - 1) != 0)
		return "it does not start with redis://";
	p += sizeof SCHEME - 1;
	if (strchr(p, '@'))
		return "credentials in the URL are not supported";
	if (!url_host(&p, URL_NAME_CHARS, a->host, sizeof a->host))
		return "the host is missing or not a name or address";
	if (*p++ != ':' || !url_number(&p, 65535, &port) || port == 0)
		return "the port (1-65535) is missing or not a number";
	if (*p == '/') {
		p++;
		if (!url_number(&p, 15, &db))
			return "the database is not a number from 0 to 15";
	}
	if (*p != '\0')
		return "something follows HOST:PORT[/DB]";
	a->port = (int)port;
	a->db = (int)db;
	return NULL;
}

int proto_redis_url_parse(const char *url, struct proto_redis_addr *out,
			  char *why, size_t why_len)
{
	struct proto_redis_addr a = { .port = 0 };
	const char *fault = url_fault(&a, url);

	if (fault) {
		proto_err_set(why, why_len,
			      "the Redis URL \"%.64s\" is not "
			      "redis://HOST:PORT[/DB]: %s", url ? url : "",
			      fault);
		return -PROTO_E_MALFORMED;
	}
	*out = a;
	return 0;
}

/* ---- relay URLs ---------------------------------------------------- */

/* The part of url after its scheme, or NULL if flags take none it has. */
static const char *relay_url_scheme(const char *url, unsigned flags)
{
	static const char *const schemes[] = {
		"ws://", "wss://", "http://", "https://",
	};
	size_t i, n = flags & PROTO_RELAY_URL_HTTP ? 4 : 2, len;

	for (i = 0; i < n; i++) {
		len = strlen(schemes[i]);
		if (!strncmp(url, schemes[i], len))
			return url + len;
	}
	return NULL;
}

/* Whether what follows HOST[:PORT] is nothing or "/", or with the path
 * flag a path of plain characters. */
static bool relay_url_rest_ok(const char *p, unsigned flags)
{
	if (!(flags & PROTO_RELAY_URL_PATH))
		return !*p || !strcmp(p, "/");
	return !*p || (*p == '/' && strspn(p, URL_NAME_CHARS "/_~%") ==
				    strlen(p));
}

/* What may be wrong with a relay URL, past the bounds on its length. */
enum relay_url_fault {
	RELAY_URL_OK,
	RELAY_URL_SCHEME,
	RELAY_URL_HOST,
	RELAY_URL_PORT,
	RELAY_URL_REST,
};

static enum relay_url_fault relay_url_fault(const char *url, unsigned flags)
{
	char host[PROTO_RELAY_URL_MAX];
	const char *p = relay_url_scheme(url, flags);
	long port;

	if (!p)
		return RELAY_URL_SCHEME;
	if (!url_host(&p, URL_NAME_CHARS "_", host, sizeof host))
		return RELAY_URL_HOST;
	if (*p == ':') {
		p++;
		if (!url_number(&p, 65535, &port) || port == 0)
			return RELAY_URL_PORT;
	}
	return relay_url_rest_ok(p, flags) ? RELAY_URL_OK : RELAY_URL_REST;
}

/* The sentence for fault, quoting the URL as shown; the clients' users
 * read it (and tests/e2e match it), so it stays put. */
static void relay_url_why(enum relay_url_fault fault, unsigned flags,
			  const char *shown, char *why, size_t why_len)
{
	switch (fault) {
	case RELAY_URL_SCHEME:
		proto_err_set(why, why_len, "'%s' does not start with ws:// "
			      "or wss://", shown);
		break;
	case RELAY_URL_HOST:
		proto_err_set(why, why_len, "'%s' has no host name or address",
			      shown);
		break;
	case RELAY_URL_PORT:
		proto_err_set(why, why_len, "the port in '%s' is not a number "
			      "from 1 to 65535", shown);
		break;
	default:
		proto_err_set(why, why_len, flags & PROTO_RELAY_URL_PATH ?
			      "'%s' has more than ws[s]://HOST:PORT/PATH (a "
			      "user, query or unusual character)" :
			      "'%s' is more than ws[s]://HOST:PORT", shown);
		break;
	}
}

int proto_relay_url_check(const char *url, unsigned flags, char *why,
			  size_t why_len)
{
	char shown[100];
	enum relay_url_fault fault;

	if (!url || !*url) {
		proto_err_set(why, why_len, "a relay URL is empty");
		return -PROTO_E_MALFORMED;
	}
	proto_url_shown(url, shown, sizeof shown);
	if (strlen(url) >= PROTO_RELAY_URL_MAX) {
		proto_err_set(why, why_len, "'%s' is longer than %d bytes",
			      shown, PROTO_RELAY_URL_MAX - 1);
		return -PROTO_E_MALFORMED;
	}
	fault = relay_url_fault(url, flags);
	if (fault != RELAY_URL_OK) {
		relay_url_why(fault, flags, shown, why, why_len);
		return -PROTO_E_MALFORMED;
	}
	return 0;
}

void proto_url_shown(const char *url, char *out, size_t cap)
{
	size_t i, max = cap - 4;

	for (i = 0; url[i] && i < max; i++)
		out[i] = url[i] >= 0x20 && url[i] < 0x7f ? url[i] : '?';
	if (url[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}
