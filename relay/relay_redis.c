/*
 * relay_redis: what the store and the cluster share of hiredis
 * (relay_redis.h).
 */
#include "relay/relay_redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <string.h>

bool relay_redis_closed(const struct redisContext *c)
{
	return c->err == REDIS_ERR_EOF ||
	       (c->err == REDIS_ERR_IO &&
		(!strcmp(c->errstr, strerror(ECONNRESET)) ||
		 !strcmp(c->errstr, strerror(EPIPE))));
}
