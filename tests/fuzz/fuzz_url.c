/*
 * fuzz_url: libFuzzer driver for proto_redis_url_parse, which reads the
 * --redis URL of every node of a cluster.
 *
 * The input is the URL.  A URL that parses must name a host, a port from
 * 1 to 65535 and a database from 0 to 15, and must print back (with
 * brackets around an IPv6 host) to a URL that parses to the same
 * address; a refusal must be -PROTO_E_MALFORMED with a sentence.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_error.h"
#include "protocol/proto_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
