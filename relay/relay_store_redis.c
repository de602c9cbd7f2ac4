/*
 * relay_store_redis: the relay's durable state in Redis, shared by the
 * nodes of a cluster (docs/cluster.md, "The store in Redis", has the
 * keys).  See relay_store.h for the contract.
 *
 * The calls are synchronous (hiredis), each waiting at most the timeout
 * given at open, because the store's contract is synchronous and the
 * relay's event loop asks little of it outside session changes.  Every
 * op is one round trip: a Lua script of its own (SCRIPTS below, called
 * by its SHA-1 and sent whole only when Redis does not know it yet), so
 * an op touching several keys, and the guards it depends on, run
 * atomically on the server.  A batch (begin ... commit) is kept here as
 * the write script's arguments and sent at commit as one call, which
 * checks every guard of the batch before it writes anything: all or
 * nothing.
 *
 * A failed connection is dropped, and the next op connects again, but
 * not sooner than STORE_RETRY_MS after the failure: in between, ops fail
 * at once, so a dead Redis costs the loop one timeout per retry period,
 * not one per call.  Durability is Redis's: open refuses a server
 * without the append-only file, and a server restart then loses nothing
 * it acknowledged.
 */
#include "relay/relay_store_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "protocol/proto_error.h"
#include "protocol/proto_url.h"
#include "relay/relay_alloc.h"
#include "relay/relay_redis.h"

/* The least time between two attempts to connect. */
#define STORE_RETRY_MS 500
/* collab_load_all's page. */
#define STORE_PAGE 128
/* The most arguments a batch may grow to (a batch in the relay is a
 * write and its audit event: some 15). */
#define STORE_BATCH_ARGS 4096
/* Leading arguments of every script call: EVALSHA SHA 0 (no keys). */
#define STORE_CALL_HEAD 3
/* The order key of a request: its requested_at, 20 digits, ":", its id. */
#define OKEY_LEN (20 + 1 + RELAY_STORE_ID_MAX + 1)
/* Stream ids count milliseconds in a double inside the script. */
#define AUDIT_MAX_S (((int64_t)1 << 53) / 1000)

/* The scripts, one per op, each made of the fragments it needs (so that
 * a call runs only its own op's code), called by the SHA-1 of this text.
 * The reads are flagged no-writes; every script has a shebang, so Redis
 * refuses a writing one at once when it is out of memory rather than
 * half-way through. */
#define LUA_READ "#!lua flags=no-writes\n"
#define LUA_WRITE "#!lua\n"
/* Every script: the key prefix; an optional argument ("" for none, or
 * "+" and the value); a refusal the C side maps to -PROTO_E_<code>. */
#define LUA_BASE \
	"local P = 'asp:'\n" \
	"local function opt(v)\n" \
	"\tif v == '' then return false end\n" \
	"\treturn string.sub(v, 2)\n" \
	"end\n" \
	"local function bad(code, what)\n" \
	"\treturn redis.error_reply('ASP_' .. code .. ' ' .. what)\n" \
	"end\n"
/* The rows the reads answer: a collaboration {desktop, code, owner_key,
 * user}, a request {id, desktop, user, initiator, admin, requested_at,
 * expires_at, state} (false when its hash is gone), and the requests of
 * a list of ids or of ordered-set members "TIME:ID" (TIME 20 digits). */
#define LUA_ROWS \
	"local function collab_row(d)\n" \
	"\tif not d then return false end\n" \
	"\tlocal v = redis.call('HMGET', P .. 'collab:' .. d,\n" \
	"\t\t'code', 'owner_key', 'user')\n" \
	"\tif not v[2] then return false end\n" \
	"\treturn {d, v[1], v[2], v[3]}\n" \
	"end\n" \
	"local function assist_row(id)\n" \
	"\tlocal v = redis.call('HMGET', P .. 'assist:' .. id,\n" \
	"\t\t'desktop', 'user', 'initiator', 'admin',\n" \
	"\t\t'requested_at', 'expires_at', 'state')\n" \
	"\tif not v[1] then return false end\n" \
	"\ttable.insert(v, 1, id)\n" \
	"\treturn v\n" \
	"end\n" \
	"local function assist_rows(list, members)\n" \
	"\tlocal out = {}\n" \
	"\tfor _, m in ipairs(list) do\n" \
	"\t\tif members then m = string.sub(m, 22) end\n" \
	"\t\tlocal row = assist_row(m)\n" \
	"\t\tif row then out[#out + 1] = row end\n" \
	"\tend\n" \
	"\treturn out\n" \
	"end\n"
/* Takes a request out of every ordered set it may be in. */
#define LUA_UNINDEX \
	"local function assist_unindex(id, okey, state, desktop)\n" \
	"\tlocal a = P .. 'assist:'\n" \
	"\tredis.call('ZREM', a .. 'all', okey)\n" \
	"\tredis.call('ZREM', a .. 'state:' .. state, okey)\n" \
	"\tredis.call('ZREM', a .. 'finished', okey)\n" \
	"\tredis.call('ZREM', a .. 'open', okey)\n" \
	"\tredis.call('ZREM', a .. 'desk:' .. desktop, okey)\n" \
	"\tredis.call('ZREM', a .. 'due', id)\n" \
	"end\n"

enum store_script {
	SC_CFIND,
	SC_CPAGE,
	SC_PGET,
	SC_AGET,
	SC_ALIST,
	SC_AOPEN,
	SC_ADUE,
	SC_QAUDIT,
	SC_APRUNE,
	SC_PAUDIT,
	SC_WRITE,
	SC__COUNT
};

static const char *const SCRIPTS[SC__COUNT] = {
	/* collab_find: by desktop, code or owner key (ARGV: by, value). */
	[SC_CFIND] = LUA_READ LUA_BASE LUA_ROWS
	"local by, value = ARGV[1], ARGV[2]\n"
	"local d = value\n"
	"if by ~= 'desktop' then\n"
	"\td = redis.call('GET', P .. by .. ':' .. value)\n"
	"end\n"
	"local row = collab_row(d)\n"
	"if row and by == 'code' and row[2] ~= value then\n"
	"\treturn false\n"
	"end\n"
	"if row and by == 'owner' and row[3] ~= value then\n"
	"\treturn false\n"
	"end\n"
	"return row\n",
	/* collab_load_all's page after a desktop (ARGV: after, count); a
	 * desktop listed without its hash comes back alone, so the page goes
	 * on after it. */
	[SC_CPAGE] = LUA_READ LUA_BASE LUA_ROWS
	"local after, count = ARGV[1], ARGV[2]\n"
	"local from = after == '' and '-' or '(' .. after\n"
	"local out = {}\n"
	"local ds = redis.call('ZRANGEBYLEX', P .. 'collabs', from, '+',\n"
	"\t'LIMIT', 0, count)\n"
	"for _, d in ipairs(ds) do\n"
	"\tout[#out + 1] = collab_row(d) or {d}\n"
	"end\n"
	"return out\n",
	/* perm_get (ARGV: user). */
	[SC_PGET] = LUA_READ LUA_BASE
	"return redis.call('HMGET', P .. 'perm:' .. ARGV[1],\n"
	"\t'help', 'collab')\n",
	/* assist_get (ARGV: id). */
	[SC_AGET] = LUA_READ LUA_BASE LUA_ROWS
	"return assist_row(ARGV[1])\n",
	/* assist_list (ARGV: set, after, limit): after a request, by its
	 * order key. */
	[SC_ALIST] = LUA_READ LUA_BASE LUA_ROWS
	"local set, after, limit = ARGV[1], ARGV[2], ARGV[3]\n"
	"local from = '-'\n"
	"if after ~= '' then\n"
	"\tlocal k = redis.call('HGET', P .. 'assist:' .. after, 'okey')\n"
	"\tif not k then\n"
	"\t\treturn bad('NOT_FOUND', 'no request ' .. after)\n"
	"\tend\n"
	"\tfrom = '(' .. k\n"
	"end\n"
	"local ms = redis.call('ZRANGEBYLEX', P .. 'assist:' .. set, from,\n"
	"\t'+', 'LIMIT', 0, limit)\n"
	"return assist_rows(ms, true)\n",
	/* assist_open_for (ARGV: desktop): the oldest open one. */
	[SC_AOPEN] = LUA_READ LUA_BASE LUA_ROWS
	"local ms = redis.call('ZRANGE', P .. 'assist:desk:' .. ARGV[1],\n"
	"\t0, 0)\n"
	"return assist_rows(ms, true)[1] or false\n",
	/* assist_due (ARGV: now, cap): waiting requests by expiry. */
	[SC_ADUE] = LUA_READ LUA_BASE LUA_ROWS
	"return assist_rows(redis.call('ZRANGEBYSCORE', P .. 'assist:due',\n"
	"\t'-inf', ARGV[1], 'LIMIT', 0, ARGV[2]), false)\n",
	/* audit_query (ARGV: since_ms, since, limit): the latest `limit`
	 * events with time >= since, newest first.  An event's stream id is
	 * never below its time (the writes), so all of them are at or after
	 * since_ms; those whose id was raised above their time are filtered
	 * out here, over at most four pages. */
	[SC_QAUDIT] = LUA_READ LUA_BASE
	"local since_ms, since = ARGV[1], tonumber(ARGV[2])\n"
	"local limit = tonumber(ARGV[3])\n"
	"local out, from = {}, '+'\n"
	"for _ = 1, 4 do\n"
	"\tlocal es = redis.call('XREVRANGE', P .. 'audit', from,\n"
	"\t\tsince_ms, 'COUNT', limit)\n"
	"\tfor _, e in ipairs(es) do\n"
	"\t\tlocal f, ev = e[2], {}\n"
	"\t\tfor i = 1, #f, 2 do ev[f[i]] = f[i + 1] end\n"
	"\t\tif tonumber(ev.time) >= since then\n"
	"\t\t\tout[#out + 1] = {ev.time, ev.actor, ev.event,\n"
	"\t\t\t\tev.desktop, ev.detail}\n"
	"\t\t\tif #out == limit then return out end\n"
	"\t\tend\n"
	"\t\tfrom = '(' .. e[1]\n"
	"\tend\n"
	"\tif #es < limit then break end\n"
	"end\n"
	"return out\n",
	/* assist_prune (ARGV: before, limit): finished requests with
	 * requested_at < before (the 20 digits of an order key), oldest
	 * first. */
	[SC_APRUNE] = LUA_WRITE LUA_BASE LUA_UNINDEX
	"local ms = redis.call('ZRANGEBYLEX', P .. 'assist:finished', '-',\n"
	"\t'(' .. ARGV[1], 'LIMIT', 0, ARGV[2])\n"
	"for _, m in ipairs(ms) do\n"
	"\tlocal id = string.sub(m, 22)\n"
	"\tlocal k = P .. 'assist:' .. id\n"
	"\tlocal v = redis.call('HMGET', k, 'state', 'desktop')\n"
	"\tassist_unindex(id, m, v[1] or 'ended', v[2] or '')\n"
	"\tredis.call('DEL', k)\n"
	"end\n"
	"return #ms\n",
	/* audit_prune (ARGV: before_ms, limit): events whose id is below
	 * before_ms, so whose time is below before, oldest first. */
	[SC_PAUDIT] = LUA_WRITE LUA_BASE
	"local es = redis.call('XRANGE', P .. 'audit', '-',\n"
	"\t'(' .. ARGV[1] .. '-0', 'COUNT', ARGV[2])\n"
	"local ids = {}\n"
	"for i, e in ipairs(es) do ids[i] = e[1] end\n"
	"if #ids > 0 then\n"
	"\tredis.call('XDEL', P .. 'audit', unpack(ids))\n"
	"end\n"
	"return #ids\n",
	/* Every write, a batch of them (ARGV: op, its arguments, op, ...).
	 * First each write's guard, in order, each seeing the writes before
	 * it through the overlay o (nil: not read yet; false: absent), and
	 * nothing written; then every write.  An audit event's stream id has
	 * its time in ms, raised to the last id's when the clock went back,
	 * so ids stay in order and never fall below the time. */
	[SC_WRITE] = LUA_WRITE LUA_BASE LUA_UNINDEX
	"local STATE = {pending = 0, invited = 1, accepted = 2,\n"
	"\tactive = 3, ended = 4, declined = 5, expired = 6}\n"
	"local OPEN = {pending = true, invited = true, accepted = true,\n"
	"\tactive = true}\n"
	"local WAITING = {pending = true, invited = true, accepted = true}\n"
	"local ARITY = {cput = 4, cdel = 1, pset = 3, acreate = 9,\n"
	"\taset = 4, audit = 6}\n"
	"\n"
	"local function overlay()\n"
	"\tlocal o = {assist = {}, key = {}, desk = {}, at = {}, opens = {}}\n"
	"\tfunction o.state(id)\n"
	"\t\tif o.assist[id] == nil then\n"
	"\t\t\to.assist[id] = redis.call('HGET',\n"
	"\t\t\t\tP .. 'assist:' .. id, 'state')\n"
	"\t\tend\n"
	"\t\treturn o.assist[id]\n"
	"\tend\n"
	"\tfunction o.desktop(id)\n"
	"\t\tif o.at[id] == nil then\n"
	"\t\t\to.at[id] = redis.call('HGET',\n"
	"\t\t\t\tP .. 'assist:' .. id, 'desktop')\n"
	"\t\tend\n"
	"\t\treturn o.at[id]\n"
	"\tend\n"
	/* The requests that may be open for desktop d: the stored ones of
	 * its index, then those the batch opened; o.state says which still
	 * are. */
	"\tfunction o.open_ids(d)\n"
	"\t\tif o.opens[d] == nil then\n"
	"\t\t\tlocal ids = {}\n"
	"\t\t\tfor _, m in ipairs(redis.call('ZRANGE',\n"
	"\t\t\t\t\tP .. 'assist:desk:' .. d, 0, -1)) do\n"
	"\t\t\t\tids[#ids + 1] = string.sub(m, 22)\n"
	"\t\t\tend\n"
	"\t\t\to.opens[d] = ids\n"
	"\t\tend\n"
	"\t\treturn o.opens[d]\n"
	"\tend\n"
	/* Opens request id for desktop d, or says which request already is
	 * open there. */
	"\tfunction o.open(id, d)\n"
	"\t\tlocal ids = o.open_ids(d)\n"
	"\t\tfor _, other in ipairs(ids) do\n"
	"\t\t\tlocal st = o.state(other)\n"
	"\t\t\tif other ~= id and st and OPEN[st] then\n"
	"\t\t\t\treturn bad('STATE', 'desktop ' .. d ..\n"
	"\t\t\t\t\t' has open request ' .. other)\n"
	"\t\t\tend\n"
	"\t\tend\n"
	"\t\tids[#ids + 1] = id\n"
	"\tend\n"
	"\tfunction o.holder(k)\n"
	"\t\tif o.key[k] == nil then\n"
	"\t\t\to.key[k] = redis.call('GET', P .. k)\n"
	"\t\tend\n"
	"\t\treturn o.key[k]\n"
	"\tend\n"
	"\tfunction o.collab(d)\n"
	"\t\tif o.desk[d] == nil then\n"
	"\t\t\tlocal v = redis.call('HMGET', P .. 'collab:' .. d,\n"
	"\t\t\t\t'code', 'owner_key')\n"
	"\t\t\to.desk[d] = v[2] and {v[1], v[2]} or false\n"
	"\t\tend\n"
	"\t\treturn o.desk[d]\n"
	"\tend\n"
	"\tfunction o.release(d)\n"
	"\t\tlocal c = o.collab(d)\n"
	"\t\tif c and c[1] then o.key['code:' .. c[1]] = false end\n"
	"\t\tif c then o.key['owner:' .. c[2]] = false end\n"
	"\t\to.desk[d] = false\n"
	"\tend\n"
	"\treturn o\n"
	"end\n"
	"\n"
	"local CHECK = {}\n"
	"function CHECK.cput(o, d, code, key)\n"
	"\tcode = opt(code)\n"
	"\tlocal h = code and o.holder('code:' .. code)\n"
	"\tif h and h ~= d then\n"
	"\t\treturn bad('STATE', 'code held by ' .. h)\n"
	"\tend\n"
	"\th = o.holder('owner:' .. key)\n"
	"\tif h and h ~= d then\n"
	"\t\treturn bad('STATE', 'owner key held by ' .. h)\n"
	"\tend\n"
	"\to.release(d)\n"
	"\tif code then o.key['code:' .. code] = d end\n"
	"\to.key['owner:' .. key] = d\n"
	"\to.desk[d] = {code, key}\n"
	"end\n"
	"function CHECK.cdel(o, d)\n"
	"\to.release(d)\n"
	"end\n"
	"function CHECK.acreate(o, id, d, ...)\n"
	"\tlocal state = select(6, ...)\n"
	"\tif o.state(id) then\n"
	"\t\treturn bad('STATE', 'request ' .. id .. ' exists')\n"
	"\tend\n"
	"\tlocal err = OPEN[state] and o.open(id, d)\n"
	"\tif err then return err end\n"
	"\to.assist[id] = state\n"
	"\to.at[id] = d\n"
	"end\n"
	"function CHECK.aset(o, id, from, state)\n"
	"\tlocal cur = o.state(id)\n"
	"\tif not cur then return bad('NOT_FOUND', 'no request ' .. id) end\n"
	"\tlocal bit = STATE[cur]\n"
	"\tif not bit or math.floor(tonumber(from) / 2 ^ bit) % 2 == 0 then\n"
	"\t\treturn bad('STATE', 'request ' .. id .. ' is ' .. cur)\n"
	"\tend\n"
	"\tlocal err = OPEN[state] and not OPEN[cur] and\n"
	"\t\to.open(id, o.desktop(id))\n"
	"\tif err then return err end\n"
	"\to.assist[id] = state\n"
	"end\n"
	"\n"
	"local function assist_index(id, okey, state, desktop, exp)\n"
	"\tlocal a = P .. 'assist:'\n"
	"\tredis.call('ZADD', a .. 'all', 0, okey)\n"
	"\tredis.call('ZADD', a .. 'state:' .. state, 0, okey)\n"
	"\tif OPEN[state] then\n"
	"\t\tredis.call('ZADD', a .. 'open', 0, okey)\n"
	"\t\tredis.call('ZADD', a .. 'desk:' .. desktop, 0, okey)\n"
	"\telse\n"
	"\t\tredis.call('ZADD', a .. 'finished', 0, okey)\n"
	"\tend\n"
	"\tif WAITING[state] then\n"
	"\t\tredis.call('ZADD', a .. 'due', exp, id)\n"
	"\tend\n"
	"end\n"
	"\n"
	"local APPLY = {}\n"
	"function APPLY.cdel(d)\n"
	"\tlocal v = redis.call('HMGET', P .. 'collab:' .. d,\n"
	"\t\t'code', 'owner_key')\n"
	"\tfor i, k in ipairs({'code:', 'owner:'}) do\n"
	"\t\tlocal key = v[i] and P .. k .. v[i]\n"
	"\t\tif key and redis.call('GET', key) == d then\n"
	"\t\t\tredis.call('DEL', key)\n"
	"\t\tend\n"
	"\tend\n"
	"\tredis.call('DEL', P .. 'collab:' .. d)\n"
	"\tredis.call('ZREM', P .. 'collabs', d)\n"
	"end\n"
	"function APPLY.cput(d, code, key, user)\n"
	"\tAPPLY.cdel(d)\n"
	"\tcode, user = opt(code), opt(user)\n"
	"\tlocal h = {'owner_key', key}\n"
	"\tif code then\n"
	"\t\th[#h + 1] = 'code'\n"
	"\t\th[#h + 1] = code\n"
	"\t\tredis.call('SET', P .. 'code:' .. code, d)\n"
	"\tend\n"
	"\tif user then\n"
	"\t\th[#h + 1] = 'user'\n"
	"\t\th[#h + 1] = user\n"
	"\tend\n"
	"\tredis.call('HSET', P .. 'collab:' .. d, unpack(h))\n"
	"\tredis.call('SET', P .. 'owner:' .. key, d)\n"
	"\tredis.call('ZADD', P .. 'collabs', 0, d)\n"
	"end\n"
	"function APPLY.pset(user, help, collab)\n"
	"\tredis.call('HSET', P .. 'perm:' .. user,\n"
	"\t\t'help', help, 'collab', collab)\n"
	"end\n"
	"function APPLY.acreate(id, desktop, user, initiator, admin, req,\n"
	"\t\texp, state, okey)\n"
	"\tredis.call('HSET', P .. 'assist:' .. id, 'desktop', desktop,\n"
	"\t\t'user', user, 'initiator', initiator, 'admin', admin,\n"
	"\t\t'requested_at', req, 'expires_at', exp, 'state', state,\n"
	"\t\t'okey', okey)\n"
	"\tassist_index(id, okey, state, desktop, exp)\n"
	"end\n"
	"function APPLY.aset(id, from, state, admin)\n"
	"\tlocal k = P .. 'assist:' .. id\n"
	"\tlocal v = redis.call('HMGET', k, 'state', 'okey', 'desktop',\n"
	"\t\t'expires_at')\n"
	"\tassist_unindex(id, v[2], v[1], v[3])\n"
	"\tassist_index(id, v[2], state, v[3], v[4])\n"
	"\tadmin = opt(admin)\n"
	"\tif admin then\n"
	"\t\tredis.call('HSET', k, 'state', state, 'admin', admin)\n"
	"\telse\n"
	"\t\tredis.call('HSET', k, 'state', state)\n"
	"\tend\n"
	"end\n"
	"function APPLY.audit(time, ms, actor, event, desktop, detail)\n"
	"\tlocal k = P .. 'audit'\n"
	"\tif redis.call('EXISTS', k) == 1 then\n"
	"\t\tlocal info = redis.call('XINFO', 'STREAM', k)\n"
	"\t\tfor i = 1, #info, 2 do\n"
	"\t\t\tif info[i] == 'last-generated-id' then\n"
	"\t\t\t\tlocal last = string.match(info[i + 1], '^%d+')\n"
	"\t\t\t\tif tonumber(last) > tonumber(ms) then\n"
	"\t\t\t\t\tms = last\n"
	"\t\t\t\tend\n"
	"\t\t\tend\n"
	"\t\tend\n"
	"\tend\n"
	"\tredis.call('XADD', k, ms .. '-*', 'time', time,\n"
	"\t\t'actor', actor, 'event', event, 'desktop', desktop,\n"
	"\t\t'detail', detail)\n"
	"end\n"
	"\n"
	"local ops, i = {}, 1\n"
	"while i <= #ARGV do\n"
	"\tlocal n = ARITY[ARGV[i]]\n"
	"\tif not n or i + n > #ARGV then\n"
	"\t\treturn bad('MALFORMED', 'batch op ' .. ARGV[i])\n"
	"\tend\n"
	"\tops[#ops + 1] = {ARGV[i], {unpack(ARGV, i + 1, i + n)}}\n"
	"\ti = i + 1 + n\n"
	"end\n"
	"local o = overlay()\n"
	"for _, op in ipairs(ops) do\n"
	"\tlocal check = CHECK[op[1]]\n"
	"\tlocal err = check and check(o, unpack(op[2]))\n"
	"\tif err then return err end\n"
	"end\n"
	"for _, op in ipairs(ops) do APPLY[op[1]](unpack(op[2])) end\n"
	"return 0\n",
};

/* A script call's arguments: the first STORE_CALL_HEAD point at static
 * strings (the command, the SHA-1, the key count); the rest are owned. */
struct store_args {
	enum store_script script;
	const char **v;
	size_t *len;
	size_t n, cap;
};

struct store_redis {
	struct relay_store base; /* first, so the handle casts both ways */
	redisContext *c;         /* NULL while disconnected */
	char host[256];
	int port;
	int db;
	int timeout_ms;
	int sock_ms;             /* the socket timeout set now, or -1 */
	int64_t retry_at;        /* no connect before (monotonic ms) */
	char sha[SC__COUNT][41]; /* each script's SHA-1 in hex */
	bool in_batch;           /* between begin and commit */
	int batch_err;           /* the first failed write of the batch, or 0 */
	struct store_args batch; /* the batch's writes, one call */
	char why[256];
	/* Whether Redis answers, told without asking it (NULL: always
	 * ask): a Redis that hangs fails ops at once instead of each
	 * waiting for its timeout. */
	bool (*gate)(void *arg);
	void *gate_arg;
};

static struct store_redis *rd(struct relay_store *st)
{
	return (struct store_redis *)st;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

/* ---- arguments ------------------------------------------------------ */

static void args_init(struct store_args *a, enum store_script script)
{
	memset(a, 0, sizeof *a);
	a->script = script;
	a->cap = 16;
	a->v = relay_xmalloc(a->cap * sizeof *a->v);
	a->len = relay_xmalloc(a->cap * sizeof *a->len);
	a->n = STORE_CALL_HEAD;
	a->v[0] = a->v[1] = a->v[2] = "";
	a->len[0] = a->len[1] = a->len[2] = 0;
}

static void args_free(struct store_args *a)
{
	for (size_t i = STORE_CALL_HEAD; i < a->n; i++)
		free((char *)a->v[i]);
	free(a->v);
	free(a->len);
	memset(a, 0, sizeof *a);
}

static void args_add(struct store_args *a, const char *v)
{
	if (a->n == a->cap) {
		a->cap *= 2;
		a->v = relay_xrealloc(a->v, a->cap * sizeof *a->v);
		a->len = relay_xrealloc(a->len, a->cap * sizeof *a->len);
	}
	a->v[a->n] = relay_xstrdup(v);
	a->len[a->n++] = strlen(v);
}

static void args_addf(struct store_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void args_addf(struct store_args *a, const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	args_add(a, buf);
}

/* An optional string: "" for none, "+" and the value otherwise. */
static void args_opt(struct store_args *a, const char *v)
{
	size_t n;
	char *s;

	if (!v) {
		args_add(a, "");
		return;
	}
	n = strlen(v);
	s = relay_xmalloc(n + 2);
	s[0] = '+';
	memcpy(s + 1, v, n + 1);
	args_add(a, s);
	free(s);
}

/* ---- the connection ------------------------------------------------- */

/* Records why Redis failed, drops the connection and holds the next
 * attempt back for STORE_RETRY_MS. */
static int store_down(struct store_redis *s, const char *what,
		      const char *reason)
{
	proto_err_set(s->why, sizeof s->why, "redis at %s:%d: %s%s%s",
		      s->host, s->port, what, *what ? ": " : "", reason);
	if (s->c)
		redisFree(s->c);
	s->c = NULL;
	s->retry_at = mono_ms() + STORE_RETRY_MS;
	return -PROTO_E_STORAGE;
}

/* The connection's own failure (refused, timed out, closed). */
static int store_io_error(struct store_redis *s, const char *what)
{
	char reason[160];

	snprintf(reason, sizeof reason, "%s",
		 s->c && s->c->errstr[0] ? s->c->errstr : "connection lost");
	/* A socket timeout reads as EAGAIN, a connect timeout ETIMEDOUT. */
	if (strcmp(reason, strerror(EAGAIN)) == 0 ||
	    strcmp(reason, strerror(ETIMEDOUT)) == 0)
		snprintf(reason, sizeof reason, "no answer within %d ms",
			 s->timeout_ms);
	return store_down(s, what, reason);
}

/* Sets the socket's timeout to ms unless it is set so already. */
static void store_timeout(struct store_redis *s, int ms)
{
	if (ms < 1)
		ms = 1;
	if (ms != s->sock_ms && redisSetTimeout(s->c, ms_tv(ms)) == REDIS_OK)
		s->sock_ms = ms;
}

static int store_select(struct store_redis *s)
{
	redisReply *rep;
	int rc = 0;

	if (s->db == 0)
		return 0;
	rep = redisCommand(s->c, "SELECT %d", s->db);
	if (!rep)
		return store_io_error(s, "SELECT");
	if (rep->type == REDIS_REPLY_ERROR)
		rc = store_down(s, "SELECT", rep->str);
	freeReplyObject(rep);
	return rc;
}

/* Connects unless connected, within the time left until deadline. */
static int store_connect(struct store_redis *s, int64_t deadline)
{
	redisContext *c;
	int64_t now;

	if (s->c)
		return 0;
	now = mono_ms();
	if (now < s->retry_at)
		return -PROTO_E_STORAGE; /* why still says the last failure */
	c = redisConnectWithTimeout(s->host, s->port, ms_tv(s->timeout_ms));
	if (!c)
		return store_down(s, "", "cannot allocate a connection");
	s->c = c;
	s->sock_ms = -1;
	if (c->err)
		return store_io_error(s, "");
	store_timeout(s, (int)(deadline - mono_ms()));
	return store_select(s);
}

/* An error reply: the script's own refusals, Redis saying it cannot
 * write now (-PROTO_E_STORAGE: the connection is fine, the next call
 * tries again), or anything else (-PROTO_E_INTERNAL). */
static int store_reply_error(struct store_redis *s, const char *what,
			     const char *msg)
{
	static const struct {
		const char *prefix;
		int err;
	} MAP[] = {
		{ "ASP_STATE ", -PROTO_E_STATE },
		{ "ASP_NOT_FOUND ", -PROTO_E_NOT_FOUND },
		{ "ASP_MALFORMED ", -PROTO_E_MALFORMED },
		{ "LOADING ", -PROTO_E_STORAGE },
		{ "BUSY ", -PROTO_E_STORAGE },
		{ "MISCONF ", -PROTO_E_STORAGE },
		{ "READONLY ", -PROTO_E_STORAGE },
		{ "OOM ", -PROTO_E_STORAGE },
		{ "MASTERDOWN ", -PROTO_E_STORAGE },
		{ "NOREPLICAS ", -PROTO_E_STORAGE },
		{ "TRYAGAIN ", -PROTO_E_STORAGE },
	};
	int err = -PROTO_E_INTERNAL;

	for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++) {
		if (strncmp(msg, MAP[i].prefix, strlen(MAP[i].prefix)) == 0) {
			err = MAP[i].err;
			break;
		}
	}
	proto_err_set(s->why, sizeof s->why, "redis at %s:%d: %s: %s",
		      s->host, s->port, what, msg);
	return err;
}

/* One round trip of a's command, connecting first if need be; NULL with
 * *err set when it failed.  A connection Redis closed while it was idle
 * is replaced once at once: Redis did not read the command, and waiting
 * for the retry period would fail a call Redis is up for. */
static redisReply *store_roundtrip(struct store_redis *s,
				   const struct store_args *a,
				   const char *what, int *err)
{
	int64_t deadline = mono_ms() + s->timeout_ms;
	bool reused = s->c != NULL;
	redisReply *rep = NULL;

	if (s->gate && !s->gate(s->gate_arg)) {
		proto_err_set(s->why, sizeof s->why,
			      "redis at %s:%d: not answering (its last round of lease renewals went unanswered)",
			      s->host, s->port);
		*err = -PROTO_E_STORAGE;
		return NULL;
	}
	for (int tries = 0; !rep && tries < 2; tries++) {
		*err = store_connect(s, deadline);
		if (*err)
			return NULL;
		/* A new connection has what is left of the call's time. */
		store_timeout(s, reused ? s->timeout_ms
					: (int)(deadline - mono_ms()));
		rep = redisCommandArgv(s->c, (int)a->n, a->v, a->len);
		if (rep || !reused || !relay_redis_closed(s->c))
			break;
		redisFree(s->c);
		s->c = NULL;
		reused = false;
	}
	if (!rep)
		*err = store_io_error(s, what);
	return rep;
}

/* Calls the script with a's arguments: by its SHA-1, and whole if Redis
 * does not have it (a new or restarted server, SCRIPT FLUSH).  The reply
 * is not an error; NULL with *err set otherwise. */
static redisReply *store_eval(struct store_redis *s, struct store_args *a,
			      const char *what, int *err)
{
	redisReply *rep;

	a->v[0] = "EVALSHA";
	a->v[1] = s->sha[a->script];
	a->v[2] = "0";
	for (int i = 0; i < STORE_CALL_HEAD; i++)
		a->len[i] = strlen(a->v[i]);
	rep = store_roundtrip(s, a, what, err);
	if (rep && rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(rep);
		a->v[0] = "EVAL";
		a->v[1] = SCRIPTS[a->script];
		a->len[0] = 4;
		a->len[1] = strlen(SCRIPTS[a->script]);
		rep = store_roundtrip(s, a, what, err);
	}
	if (rep && rep->type == REDIS_REPLY_ERROR) {
		*err = store_reply_error(s, what, rep->str);
		freeReplyObject(rep);
		rep = NULL;
	}
	return rep;
}

/* A call whose reply is an integer (0 for the writes), into *n. */
static int store_eval_int(struct store_redis *s, struct store_args *a,
			  const char *what, long long *n)
{
	int err;
	redisReply *rep = store_eval(s, a, what, &err);

	if (!rep)
		return err;
	if (rep->type == REDIS_REPLY_INTEGER)
		*n = rep->integer;
	else
		err = store_reply_error(s, what, "not an integer reply");
	freeReplyObject(rep);
	return err;
}

/* ---- writes and batches --------------------------------------------- */

/* A batch remembers its first failure, whatever it was. */
static int batch_note(struct store_redis *s, int rc)
{
	if (rc && s->in_batch && !s->batch_err)
		s->batch_err = rc;
	return rc;
}

/* Where a write puts its op and arguments: the batch, or a call of its
 * own into *one; NULL when the batch failed already (*err says how). */
static struct store_args *write_begin(struct store_redis *s,
				      struct store_args *one, int *err)
{
	*err = 0;
	if (!s->in_batch) {
		args_init(one, SC_WRITE);
		return one;
	}
	if (s->batch_err) {
		*err = s->batch_err;
		return NULL;
	}
	return &s->batch;
}

/* Sends a write of its own, or leaves a batch's to commit. */
static int write_end(struct store_redis *s, struct store_args *a,
		     const char *what)
{
	long long n = 0;
	int err;

	if (a == &s->batch) {
		if (a->n <= STORE_BATCH_ARGS)
			return 0;
		proto_err_set(s->why, sizeof s->why,
			      "redis: a batch of more than %d arguments",
			      STORE_BATCH_ARGS);
		return batch_note(s, -PROTO_E_INTERNAL);
	}
	err = store_eval_int(s, a, what, &n);
	args_free(a);
	return err;
}

static int collab_put(struct relay_store *st, const char *desktop,
		      const char *code, const char *owner_key, const char *user)
{
	struct store_redis *s = rd(st);
	struct store_args one, *a;
	int err;

	if (!relay_store_id_ok(desktop) || !owner_key)
		return batch_note(s, -PROTO_E_MALFORMED);
	a = write_begin(s, &one, &err);
	if (!a)
		return err;
	args_add(a, "cput");
	args_add(a, desktop);
	args_opt(a, code);
	args_add(a, owner_key);
	args_opt(a, user);
	return write_end(s, a, "collab put");
}

static int collab_del(struct relay_store *st, const char *desktop)
{
	struct store_redis *s = rd(st);
	struct store_args one, *a;
	int err;

	if (!desktop)
		return batch_note(s, -PROTO_E_MALFORMED);
	a = write_begin(s, &one, &err);
	if (!a)
		return err;
	args_add(a, "cdel");
	args_add(a, desktop);
	return write_end(s, a, "collab del");
}

static int perm_set(struct relay_store *st, const char *user, bool help,
		    bool collab)
{
	struct store_redis *s = rd(st);
	struct store_args one, *a;
	int err;

	if (!relay_store_id_ok(user))
		return batch_note(s, -PROTO_E_MALFORMED);
	a = write_begin(s, &one, &err);
	if (!a)
		return err;
	args_add(a, "pset");
	args_add(a, user);
	args_add(a, help ? "1" : "0");
	args_add(a, collab ? "1" : "0");
	return write_end(s, a, "permission set");
}

/* The order key of a request: requested_at shifted into unsigned order
 * (so that negative times sort too), then the id; the ordered sets sort
 * by it as SQLite sorts by (requested_at, id). */
static void okey_time(char *out, size_t cap, int64_t t)
{
	snprintf(out, cap, "%020llu",
		 (unsigned long long)((uint64_t)t ^ ((uint64_t)1 << 63)));
}

static int assist_create(struct relay_store *st,
			 const struct relay_store_assist *a)
{
	struct store_redis *s = rd(st);
	struct store_args one, *w;
	char okey[OKEY_LEN];
	int err;

	if (!a || !relay_store_assist_valid(a))
		return batch_note(s, -PROTO_E_MALFORMED);
	w = write_begin(s, &one, &err);
	if (!w)
		return err;
	okey_time(okey, sizeof okey, a->requested_at);
	args_add(w, "acreate");
	args_add(w, a->id);
	args_add(w, a->desktop);
	args_add(w, a->user);
	args_add(w, a->initiator);
	args_add(w, a->admin);
	args_addf(w, "%lld", (long long)a->requested_at);
	args_addf(w, "%lld", (long long)a->expires_at);
	args_add(w, relay_assist_state_name(a->state));
	args_addf(w, "%s:%s", okey, a->id);
	return write_end(s, w, "assist create");
}

static int assist_set_state(struct relay_store *st, const char *id,
			    unsigned from, enum relay_assist_state state,
			    const char *admin)
{
	struct store_redis *s = rd(st);
	struct store_args one, *a;
	int err;

	if (!id || (unsigned)state >= RELAY_ASSIST__COUNT ||
	    !relay_store_from_ok(from))
		return batch_note(s, -PROTO_E_MALFORMED);
	a = write_begin(s, &one, &err);
	if (!a)
		return err;
	args_add(a, "aset");
	args_add(a, id);
	args_addf(a, "%u", from);
	args_add(a, relay_assist_state_name(state));
	args_opt(a, admin);
	return write_end(s, a, "assist state");
}

/* Milliseconds for a stream id: 0 up to what the script's doubles hold. */
static long long audit_ms(int64_t t)
{
	if (t <= 0)
		return 0;
	return (long long)(t < AUDIT_MAX_S ? t : AUDIT_MAX_S) * 1000;
}

static int audit_append(struct relay_store *st, int64_t time,
			const char *actor, const char *event,
			const char *desktop, const char *detail)
{
	struct store_redis *s = rd(st);
	struct store_args one, *a;
	int err;

	if (!actor || !event)
		return batch_note(s, -PROTO_E_MALFORMED);
	a = write_begin(s, &one, &err);
	if (!a)
		return err;
	args_add(a, "audit");
	args_addf(a, "%lld", (long long)time);
	args_addf(a, "%lld", audit_ms(time));
	args_add(a, actor);
	args_add(a, event);
	args_add(a, desktop ? desktop : "");
	args_add(a, detail ? detail : "");
	return write_end(s, a, "audit append");
}

static int store_begin(struct relay_store *st)
{
	struct store_redis *s = rd(st);

	if (s->in_batch)
		return -PROTO_E_STATE;
	s->in_batch = true;
	s->batch_err = 0;
	args_init(&s->batch, SC_WRITE);
	return 0;
}

static int store_commit(struct relay_store *st)
{
	struct store_redis *s = rd(st);
	long long n = 0;
	int rc;

	if (!s->in_batch)
		return -PROTO_E_STATE;
	s->in_batch = false;
	rc = s->batch_err;
	if (rc == 0 && s->batch.n > STORE_CALL_HEAD)
		rc = store_eval_int(s, &s->batch, "commit", &n);
	args_free(&s->batch);
	return rc;
}

/* ---- reads ---------------------------------------------------------- */

/* A read's call: not inside a batch (the contract has no reads there;
 * and a prune's count would not be known until commit). */
static redisReply *read_call(struct store_redis *s, struct store_args *a,
			     const char *what, int *err)
{
	redisReply *rep = NULL;

	if (s->in_batch)
		*err = -PROTO_E_STATE;
	else
		rep = store_eval(s, a, what, err);
	args_free(a);
	return rep;
}

static const char *rep_str(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[i]->str;
}

/* A collaboration row {desktop, code, owner_key, user} into *c. */
static bool collab_from(const redisReply *r, struct relay_store_collab *c)
{
	c->desktop = rep_str(r, 0);
	c->code = rep_str(r, 1);
	c->owner_key = rep_str(r, 2);
	c->user = rep_str(r, 3);
	return c->desktop && c->owner_key;
}

static int collab_find(struct relay_store *st, enum relay_collab_by by,
		       const char *value, relay_store_collab_cb cb, void *arg)
{
	static const char *const BY[] = {
		[RELAY_COLLAB_BY_DESKTOP] = "desktop",
		[RELAY_COLLAB_BY_CODE] = "code",
		[RELAY_COLLAB_BY_OWNER_KEY] = "owner",
	};
	struct store_redis *s = rd(st);
	struct relay_store_collab c;
	struct store_args a;
	redisReply *rep;
	int err;

	if (!value || !cb || (unsigned)by >= sizeof BY / sizeof BY[0])
		return -PROTO_E_MALFORMED;
	args_init(&a, SC_CFIND);
	args_add(&a, BY[by]);
	args_add(&a, value);
	rep = read_call(s, &a, "collab find", &err);
	if (!rep)
		return err;
	err = collab_from(rep, &c) ? cb(&c, arg) : -PROTO_E_NOT_FOUND;
	freeReplyObject(rep);
	return err;
}

/* One page of collab_load_all after the desktop *after (updated). */
static int collab_page(struct store_redis *s, char *after, size_t cap,
		       relay_store_collab_cb cb, void *arg, bool *more)
{
	struct relay_store_collab c;
	struct store_args a;
	redisReply *rep;
	int err = 0;

	args_init(&a, SC_CPAGE);
	args_add(&a, after);
	args_addf(&a, "%d", STORE_PAGE);
	rep = read_call(s, &a, "collab load", &err);
	if (!rep)
		return err;
	*more = rep->type == REDIS_REPLY_ARRAY && rep->elements == STORE_PAGE;
	for (size_t i = 0; !err && rep->type == REDIS_REPLY_ARRAY &&
			   i < rep->elements; i++) {
		const char *d = rep_str(rep->element[i], 0);

		if (d)
			snprintf(after, cap, "%s", d);
		if (collab_from(rep->element[i], &c))
			err = cb(&c, arg);
	}
	freeReplyObject(rep);
	return err;
}

static int collab_load_all(struct relay_store *st, relay_store_collab_cb cb,
			   void *arg)
{
	struct store_redis *s = rd(st);
	char after[RELAY_STORE_ID_MAX + 2] = "";
	bool more = true;
	int err = 0;

	if (!cb)
		return -PROTO_E_MALFORMED;
	while (!err && more)
		err = collab_page(s, after, sizeof after, cb, arg, &more);
	return err;
}

static int perm_get(struct relay_store *st, const char *user, bool *help,
		    bool *collab)
{
	struct store_redis *s = rd(st);
	struct store_args a;
	redisReply *rep;
	const char *h, *c;
	int err;

	*help = *collab = false;
	if (!user)
		return -PROTO_E_MALFORMED;
	args_init(&a, SC_PGET);
	args_add(&a, user);
	rep = read_call(s, &a, "permission get", &err);
	if (!rep)
		return err;
	h = rep_str(rep, 0);
	c = rep_str(rep, 1);
	*help = h && strcmp(h, "1") == 0;
	*collab = c && strcmp(c, "1") == 0;
	freeReplyObject(rep);
	return 0;
}

static bool copy_field(char *dst, size_t cap, const char *v)
{
	return v && (size_t)snprintf(dst, cap, "%s", v) < cap;
}

static bool int_field(int64_t *dst, const char *v)
{
	char *end;
	long long n;

	if (!v)
		return false;
	errno = 0;
	n = strtoll(v, &end, 10);
	*dst = n;
	return errno == 0 && end != v && *end == '\0';
}

/* A request row {id, desktop, user, initiator, admin, requested_at,
 * expires_at, state} into *a; false for a row this relay cannot read (a
 * state a later relay added, a broken hash). */
static bool assist_from(const redisReply *r, struct relay_store_assist *a)
{
	memset(a, 0, sizeof *a);
	return copy_field(a->id, sizeof a->id, rep_str(r, 0)) &&
	       copy_field(a->desktop, sizeof a->desktop, rep_str(r, 1)) &&
	       copy_field(a->user, sizeof a->user, rep_str(r, 2)) &&
	       copy_field(a->initiator, sizeof a->initiator, rep_str(r, 3)) &&
	       copy_field(a->admin, sizeof a->admin, rep_str(r, 4)) &&
	       int_field(&a->requested_at, rep_str(r, 5)) &&
	       int_field(&a->expires_at, rep_str(r, 6)) &&
	       relay_assist_state_parse(rep_str(r, 7), &a->state) == 0;
}

static int assist_unreadable(struct store_redis *s, const char *id)
{
	proto_err_set(s->why, sizeof s->why,
		      "redis at %s:%d: request %s cannot be read", s->host,
		      s->port, id);
	return -PROTO_E_INTERNAL;
}

/* A read of at most one request (by id, or a desktop's open one). */
static int assist_one(struct store_redis *s, enum store_script script,
		      const char *key, struct relay_store_assist *out,
		      const char *what)
{
	struct store_args a;
	redisReply *rep;
	int err;

	memset(out, 0, sizeof *out);
	if (!key)
		return -PROTO_E_MALFORMED;
	args_init(&a, script);
	args_add(&a, key);
	rep = read_call(s, &a, what, &err);
	if (!rep)
		return err;
	if (rep->type != REDIS_REPLY_ARRAY)
		err = -PROTO_E_NOT_FOUND;
	else if (!assist_from(rep, out))
		err = assist_unreadable(s, key);
	freeReplyObject(rep);
	return err;
}

static int assist_get(struct relay_store *st, const char *id,
		      struct relay_store_assist *out)
{
	return assist_one(rd(st), SC_AGET, id, out, "assist get");
}

static int assist_open_for(struct relay_store *st, const char *desktop,
			   struct relay_store_assist *out)
{
	return assist_one(rd(st), SC_AOPEN, desktop, out, "assist open");
}

/* The ordered set of requests whose states are mask, or NULL. */
static bool assist_set_of(unsigned mask, char *out, size_t cap)
{
	if (mask == RELAY_ASSIST_ALL) {
		snprintf(out, cap, "all");
		return true;
	}
	if (mask == RELAY_ASSIST_OPEN) {
		snprintf(out, cap, "open");
		return true;
	}
	for (int i = 0; i < RELAY_ASSIST__COUNT; i++) {
		if (mask == RELAY_ASSIST_BIT(i)) {
			snprintf(out, cap, "state:%s",
				 relay_assist_state_name(i));
			return true;
		}
	}
	return false;
}

static int assist_list(struct relay_store *st, unsigned mask,
		       const char *after, unsigned limit,
		       relay_store_assist_cb cb, void *arg)
{
	struct store_redis *s = rd(st);
	struct relay_store_assist row;
	struct store_args a;
	redisReply *rep;
	char set[32];
	int err = 0;

	if (!cb || limit == 0 || !assist_set_of(mask, set, sizeof set))
		return -PROTO_E_MALFORMED;
	args_init(&a, SC_ALIST);
	args_add(&a, set);
	args_add(&a, after ? after : "");
	args_addf(&a, "%u", limit);
	rep = read_call(s, &a, "assist list", &err);
	if (!rep)
		return err;
	/* Rows this relay cannot read are skipped, as SQLite's are. */
	for (size_t i = 0; !err && rep->type == REDIS_REPLY_ARRAY &&
			   i < rep->elements; i++) {
		if (assist_from(rep->element[i], &row))
			err = cb(&row, arg);
	}
	freeReplyObject(rep);
	return err;
}

static int assist_due(struct relay_store *st, int64_t now,
		      struct relay_store_assist *out, unsigned cap,
		      unsigned *n)
{
	struct store_redis *s = rd(st);
	struct store_args a;
	redisReply *rep;
	int err;

	*n = 0;
	if (!out || cap == 0)
		return -PROTO_E_MALFORMED;
	args_init(&a, SC_ADUE);
	args_addf(&a, "%lld", (long long)now);
	args_addf(&a, "%u", cap);
	rep = read_call(s, &a, "assist due", &err);
	if (!rep)
		return err;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY &&
			   i < rep->elements && *n < cap; i++) {
		if (assist_from(rep->element[i], &out[*n]))
			(*n)++;
	}
	freeReplyObject(rep);
	return 0;
}

/* A prune op: the script deletes at most limit and says how many. */
static int prune_call(struct store_redis *s, struct store_args *a,
		      const char *what, unsigned *n)
{
	long long got = 0;
	int err = -PROTO_E_STATE;

	if (!s->in_batch)
		err = store_eval_int(s, a, what, &got);
	args_free(a);
	*n = err == 0 && got > 0 ? (unsigned)got : 0;
	return err;
}

static int assist_prune(struct relay_store *st, int64_t before,
			unsigned limit, unsigned *n)
{
	struct store_args a;
	char okey[OKEY_LEN];

	*n = 0;
	if (limit == 0)
		return -PROTO_E_MALFORMED;
	okey_time(okey, sizeof okey, before);
	args_init(&a, SC_APRUNE);
	args_add(&a, okey);
	args_addf(&a, "%u", limit);
	return prune_call(rd(st), &a, "assist prune", n);
}

static int audit_prune(struct relay_store *st, int64_t before, unsigned limit,
		       unsigned *n)
{
	struct store_args a;

	*n = 0;
	if (limit == 0)
		return -PROTO_E_MALFORMED;
	if (audit_ms(before) == 0)
		return rd(st)->in_batch ? -PROTO_E_STATE : 0;
	args_init(&a, SC_PAUDIT);
	args_addf(&a, "%lld", audit_ms(before));
	args_addf(&a, "%u", limit);
	return prune_call(rd(st), &a, "audit prune", n);
}

/* An event row {time, actor, event, desktop, detail} into *e. */
static bool event_from(const redisReply *r, struct relay_store_event *e)
{
	e->actor = rep_str(r, 1);
	e->event = rep_str(r, 2);
	e->desktop = rep_str(r, 3);
	e->detail = rep_str(r, 4);
	return int_field(&e->time, rep_str(r, 0)) && e->actor && e->event &&
	       e->desktop && e->detail;
}

/* The script answers newest first, in stream order; the contract wants
 * time order, oldest first, ties in the order appended.  Reversed, the
 * rows are in time order but for events whose clock went back, so an
 * insertion sort (stable) costs about one pass. */
static void events_order(struct relay_store_event *e, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		struct relay_store_event t = e[i];

		e[i] = e[n - 1 - i];
		e[n - 1 - i] = t;
	}
	for (size_t i = 1; i < n; i++) {
		struct relay_store_event t = e[i];
		size_t j = i;

		for (; j > 0 && e[j - 1].time > t.time; j--)
			e[j] = e[j - 1];
		e[j] = t;
	}
}

static int events_deliver(const redisReply *rep, relay_store_event_cb cb,
			  void *arg)
{
	struct relay_store_event *e;
	size_t n = 0;
	int err = 0;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
		return 0;
	e = relay_xcalloc(rep->elements, sizeof *e);
	for (size_t i = 0; i < rep->elements; i++) {
		if (event_from(rep->element[i], &e[n]))
			n++;
	}
	events_order(e, n);
	for (size_t i = 0; !err && i < n; i++)
		err = cb(&e[i], arg);
	free(e);
	return err;
}

static int audit_query(struct relay_store *st, int64_t since, unsigned limit,
		       relay_store_event_cb cb, void *arg)
{
	struct store_redis *s = rd(st);
	struct store_args a;
	redisReply *rep;
	int err;

	if (!cb)
		return -PROTO_E_MALFORMED;
	if (limit == 0)
		return s->in_batch ? -PROTO_E_STATE : 0;
	args_init(&a, SC_QAUDIT);
	if (audit_ms(since) == 0)
		args_add(&a, "-");
	else
		args_addf(&a, "%lld", audit_ms(since));
	args_addf(&a, "%lld", (long long)since);
	args_addf(&a, "%u", limit);
	rep = read_call(s, &a, "audit query", &err);
	if (!rep)
		return err;
	err = events_deliver(rep, cb, arg);
	freeReplyObject(rep);
	return err;
}

/* ---- open and close ------------------------------------------------- */

static const char *store_why(const struct relay_store *st)
{
	return ((const struct store_redis *)st)->why;
}

static void store_close(struct relay_store *st)
{
	struct store_redis *s = rd(st);

	if (!st)
		return;
	if (s->in_batch)
		args_free(&s->batch);
	if (s->c)
		redisFree(s->c);
	free(s);
}

static const struct relay_store_ops REDIS_OPS = {
	.close = store_close,
	.why = store_why,
	.collab_put = collab_put,
	.collab_del = collab_del,
	.collab_load_all = collab_load_all,
	.collab_find = collab_find,
	.perm_get = perm_get,
	.perm_set = perm_set,
	.begin = store_begin,
	.commit = store_commit,
	.assist_create = assist_create,
	.assist_set_state = assist_set_state,
	.assist_get = assist_get,
	.assist_list = assist_list,
	.assist_open_for = assist_open_for,
	.assist_due = assist_due,
	.assist_prune = assist_prune,
	.audit_append = audit_append,
	.audit_query = audit_query,
	.audit_prune = audit_prune,
};


/* The value of "field:" in an INFO reply, or NULL. */
static const char *info_field(const char *info, const char *field,
			      char *out, size_t cap)
{
	size_t n = strlen(field);
	const char *p = info;

	while (p && *p) {
		if (strncmp(p, field, n) == 0 && p[n] == ':') {
			size_t len = strcspn(p + n + 1, "\r\n");

			snprintf(out, cap, "%.*s", (int)len, p + n + 1);
			return out;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* The server must be Redis 7 (stream ids "MS-*") with the append-only
 * file on, or an acknowledged write could be lost by its restart.  A
 * server that hides INFO is taken at its word. */
static int store_check_server(struct store_redis *s)
{
	char version[32], aof[8];
	redisReply *rep = redisCommand(s->c, "INFO server persistence");
	int rc = 0;

	if (!rep)
		return store_io_error(s, "INFO");
	if (rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		return 0;
	}
	if (info_field(rep->str, "redis_version", version, sizeof version) &&
	    atoi(version) < 7) {
		proto_err_set(s->why, sizeof s->why,
			      "redis at %s:%d: version %s; the relay needs "
			      "Redis 7 or later", s->host, s->port, version);
		rc = -PROTO_E_INTERNAL;
	} else if (info_field(rep->str, "aof_enabled", aof, sizeof aof) &&
		   strcmp(aof, "1") != 0) {
		proto_err_set(s->why, sizeof s->why,
			      "redis at %s:%d: appendonly is off, so a Redis "
			      "restart would lose what the relay stored; "
			      "run it with appendonly yes", s->host, s->port);
		rc = -PROTO_E_INTERNAL;
	}
	freeReplyObject(rep);
	return rc;
}

static void script_sha(const char *script, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	EVP_Digest(script, strlen(script), md, &len, EVP_sha1(), NULL);
	for (unsigned i = 0; i < len && i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int relay_store_redis_open(const char *url, int timeout_ms,
			   struct relay_store **out, char *why, size_t why_len)
{
	struct store_redis *s = relay_xcalloc(1, sizeof *s);
	struct proto_redis_addr addr;
	int rc;

	*out = NULL;
	s->base.ops = &REDIS_OPS;
	s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	for (int i = 0; i < SC__COUNT; i++)
		script_sha(SCRIPTS[i], s->sha[i]);
	rc = proto_redis_url_parse(url, &addr, why, why_len);
	if (!rc) {
		snprintf(s->host, sizeof s->host, "%s", addr.host);
		s->port = addr.port;
		s->db = addr.db;
	}
	if (rc == 0)
		rc = store_connect(s, mono_ms() + s->timeout_ms);
	if (rc == 0)
		rc = store_check_server(s);
	if (rc < 0) {
		if (s->why[0])
			proto_err_set(why, why_len, "%s", s->why);
		store_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}

void relay_store_redis_gate(struct relay_store *st, bool (*up)(void *arg),
			    void *arg)
{
	rd(st)->gate = up;
	rd(st)->gate_arg = arg;
}
