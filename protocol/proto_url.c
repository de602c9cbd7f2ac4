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

/* The host: a name or IPv4 address (letters, digits, '.', '-'), or an
 * IPv6 address in brackets; copied into host without the brackets. */
static bool url_host(const char **p, char *host, size_t cap)
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
		n = strspn(q, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
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
	if (!url_host(&p, a->host, sizeof a->host))
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
