/*
 * proto_url: the Redis URL a cluster's relays share (docs/cluster.md).
 *
 * redis://HOST:PORT[/DB] and nothing more: HOST a name, an IPv4 address
 * or an IPv6 address in brackets; PORT 1-65535 with no leading zero; DB
 * 0-15 (Redis's default count of databases); no credentials, no query.
 * Both the store (relay_store_redis.c) and the cluster's own connections
 * (relay_cluster.c) read --redis through this one parser.
 */
#ifndef ASP_PROTO_URL_H
#define ASP_PROTO_URL_H

#include <stddef.h>

struct proto_redis_addr {
	char host[256]; /* without brackets */
	int port;
	int db;
};

/* 0 and *out filled, or -PROTO_E_MALFORMED with a sentence in why saying
 * what is wrong (*out untouched). */
int proto_redis_url_parse(const char *url, struct proto_redis_addr *out,
			  char *why, size_t why_len);

#endif
