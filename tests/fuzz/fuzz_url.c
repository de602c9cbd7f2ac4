/*
 * fuzz_url: libFuzzer driver for proto_url's two readers: the --redis
 * URL of every node of a cluster (proto_redis_url_parse) and the relay
 * URLs a node advertises and a client follows (proto_relay_url_check).
 *
 * The input is the URL.  A Redis URL that parses must name a host, a
 * port from 1 to 65535 and a database from 0 to 15, and must print back
 * (with brackets around an IPv6 host) to a URL that parses to the same
 * address.  A relay URL is checked with every combination of flags and
 * must be accepted exactly when the rule of proto_url.h, written out
 * again below, holds; a flag never makes a URL refused.  Every refusal
 * must be -PROTO_E_MALFORMED with a sentence, a relay URL's printable.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_error.h"
#include "protocol/proto_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIGITS "0123456789"
#define LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* The scheme's length if url starts with one flags take, else 0. */
static size_t rule_scheme(const char *url, unsigned flags)
{
	if (!strncmp(url, "ws://", 5))
		return 5;
	if (!strncmp(url, "wss://", 6))
		return 6;
	if (!(flags & PROTO_RELAY_URL_HTTP))
		return 0;
	if (!strncmp(url, "http://", 7))
		return 7;
	return !strncmp(url, "https://", 8) ? 8 : 0;
}

/* The rule (proto_url.h): scheme, host, optional port, then nothing or
 * "/" (a path of plain characters with PROTO_RELAY_URL_PATH). */
static bool rule_holds(const char *url, unsigned flags)
{
	size_t len = strlen(url), n;
	const char *p = url + rule_scheme(url, flags), *end;

	if (len == 0 || len >= PROTO_RELAY_URL_MAX || p == url)
		return false;
	if (*p == '[') {
		end = strchr(p, ']');
		n = end ? (size_t)(end - p - 1) : 0;
		if (!n || strspn(p + 1, DIGITS "abcdefABCDEF:.") != n)
			return false;
		p = end + 1;
	} else {
		n = strspn(p, LETTERS DIGITS ".-_");
		if (!n)
			return false;
		p += n;
	}
	if (*p == ':') {
		n = strspn(++p, DIGITS);
		if (n < 1 || n > 5 || (n > 1 && *p == '0') ||
		    atol(p) < 1 || atol(p) > 65535)
			return false;
		p += n;
	}
	if (!(flags & PROTO_RELAY_URL_PATH))
		return !*p || !strcmp(p, "/");
	return !*p || (*p == '/' &&
		       strspn(p, LETTERS DIGITS "/._~%-") == strlen(p));
}

static void fuzz_relay_url(const char *url)
{
	char why[256];
	unsigned flags;
	int err, was = -1;

	for (flags = 0; flags < 4; flags++) {
		why[0] = '\0';
		err = proto_relay_url_check(url, flags, why, sizeof(why));
		if ((err == 0) != rule_holds(url, flags))
			abort();
		if (err && (err != -PROTO_E_MALFORMED || !why[0]))
			abort();
		for (size_t i = 0; err && why[i]; i++)
			if (why[i] < 0x20 || why[i] >= 0x7f)
				abort();
		/* flags 1 and 2 each loosen 0, 3 loosens both. */
		if (flags == 0)
			was = err;
		else if (was == 0 && err)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_redis_addr a, again;
	char url[600], printed[600], why[256] = "";
	int err;

	/* A C string: an input with a NUL inside is the URL before it. */
	if (size >= sizeof(url) || memchr(data, 0, size))
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	fuzz_relay_url(url);
	err = proto_redis_url_parse(url, &a, why, sizeof(why));
	if (err) {
		if (err != -PROTO_E_MALFORMED || !why[0])
			abort();
		return 0;
	}
	if (!a.host[0] || a.port < 1 || a.port > 65535 || a.db < 0 ||
	    a.db > 15)
		abort();
	snprintf(printed, sizeof(printed), strchr(a.host, ':') ?
		 "redis://[%s]:%d/%d" : "redis://%s:%d/%d", a.host, a.port,
		 a.db);
	if (proto_redis_url_parse(printed, &again, why, sizeof(why)) != 0 ||
	    memcmp(&a, &again, sizeof(a)) != 0)
		abort();
	return 0;
}
