/*
 * proto_url: the URLs an operator or a peer gives (docs/cluster.md).
 *
 * The Redis URL a cluster's relays share: redis://HOST:PORT[/DB] and
 * nothing more: HOST a name, an IPv4 address or an IPv6 address in
 * brackets; PORT 1-65535 with no leading zero; DB 0-15 (Redis's default
 * count of databases); no credentials, no query.  Both the store
 * (relay_store_redis.c) and the cluster's own connections
 * (relay_cluster.c) read --redis through this one parser.
 *
 * A relay URL: where a client connects (asp-host and asp-view --relay,
 * tools/common/client_relays.c) and where a cluster sends it (the url of
 * a redirect, which is a node's --node-url, relay_config.c).  The relay
 * checks its --node-url with the rule the clients follow a redirect by,
 * so a node cannot advertise a URL its clients refuse.
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

/* Bytes in a relay URL, its NUL included: the protocol's bound on a
 * string field, so every URL a relay sends fits. */
#define PROTO_RELAY_URL_MAX 256

/* What proto_relay_url_check lets a URL have beyond a node's. */
#define PROTO_RELAY_URL_NODE 0u /* a node's URL, a redirect's: none */
#define PROTO_RELAY_URL_HTTP 1u /* http:// and https:// (--relay) */
#define PROTO_RELAY_URL_PATH 2u /* a path of A-Z a-z 0-9 / . _ ~ % - */

/* Whether url is a relay URL: ws:// or wss:// (http:// or https:// too
 * with PROTO_RELAY_URL_HTTP; lower case), a host (a
 * name of A-Z a-z 0-9 . - _, an IPv4 address, or an IPv6 address in
 * brackets), an optional :PORT 1-65535 with no leading zero, then
 * nothing or a single "/" (or the path flags allows): no user, query,
 * fragment, space or control character; shorter than
 * PROTO_RELAY_URL_MAX.  0, or -PROTO_E_MALFORMED with a sentence in why
 * that quotes url as proto_url_shown does. */
int proto_relay_url_check(const char *url, unsigned flags, char *why,
			  size_t why_len);

/* Copies url into out (cap >= 8 bytes) to be quoted in a message: a
 * byte outside printable ASCII becomes '?', and a URL longer than
 * cap - 4 bytes is cut there and ends with "...". */
void proto_url_shown(const char *url, char *out, size_t cap);

#endif
