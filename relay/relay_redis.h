/*
 * relay_redis: what the relay's two users of hiredis share (the store in
 * Redis, relay_store_redis.c, and the cluster's connections,
 * relay_cluster.c).
 */
#ifndef ASP_RELAY_REDIS_H
#define ASP_RELAY_REDIS_H

#include <stdbool.h>

struct redisContext;

/* Whether c's error says Redis closed the connection (EOF, reset, broken
 * pipe), as a restart or an idle timeout does, rather than a timeout: a
 * command sent on it was not read, and may be sent again at once on a new
 * connection. */
bool relay_redis_closed(const struct redisContext *c);

#endif
