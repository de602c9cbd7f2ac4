/*
 * Unit tests for relay_store, every shared test run against both
 * backends: SQLite in a scratch directory, and Redis in a redis-server
 * the tests start on a free loopback port (emptied before each test):
 * what is put comes back, survives close + open and a SIGKILLed writer,
 * lists filter and order as documented, guards and batches are all or
 * nothing.  Then what only one backend has: SQLite's file is private, in
 * WAL mode, migrated, refused when it comes from a newer relay; Redis
 * going away fails ops with storage_unavailable within the timeout and
 * comes back by itself, a Redis restart loses nothing acknowledged, and
 * the URL is parsed strictly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <fcntl.h>
#include <ftw.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "protocol/proto_error.h"
#include "relay/relay_store.h"

/* How long the Redis store waits for an answer in these tests. */
#define REDIS_TIMEOUT_MS 250

struct fixture {
	char dir[64]; /* SQLite's data directory */
	struct relay_store *st;
};

/* A redis-server of the tests' own. */
struct redis_server {
	pid_t pid; /* 0 while stopped */
	int port;
	char dir[64];
};

static struct redis_server redis;

/* The backend the running group tests: false for SQLite. */
static bool on_redis;

static void redis_url(char *out, size_t cap, const struct redis_server *r,
		      int db)
{
	snprintf(out, cap, "redis://127.0.0.1:%d/%d", r->port, db);
}

static struct relay_store *store_open(struct fixture *f)
{
	struct relay_store *st = NULL;
	char why[256] = "", url[64];
	int rc;

	if (on_redis) {
		redis_url(url, sizeof url, &redis, 0);
		rc = relay_store_redis_open(url, REDIS_TIMEOUT_MS, &st, why,
					    sizeof why);
	} else {
		rc = relay_store_sqlite_open(f->dir, &st, why, sizeof why);
	}
	if (rc != 0)
		fail_msg("open %s: %d (%s)", on_redis ? url : f->dir, rc, why);
	return st;
}

/* Closes and reopens the store, as a relay restart does. */
static void restart(struct fixture *f)
{
	f->st->ops->close(f->st);
	f->st = store_open(f);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A command to the test's Redis on a connection of its own; true if
 * Redis answered without an error. */
static bool redis_say(const struct redis_server *r, const char *cmd)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
	redisReply *rep = NULL;
	bool ok = false;

	if (c && !c->err) {
		redisSetTimeout(c, tv);
		rep = redisCommand(c, cmd);
	}
	ok = rep && rep->type != REDIS_REPLY_ERROR;
	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
	return ok;
}

/* A port nothing listens on now: the kernel's pick for a socket bound
 * to port 0, closed again. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void redis_exec(const struct redis_server *r, bool aof)
{
	char port[16], log[96];
	int fd;

	snprintf(port, sizeof port, "%d", r->port);
	snprintf(log, sizeof log, "%s/redis.log", r->dir);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execlp("redis-server", "redis-server", "--port", port, "--bind",
	       "127.0.0.1", "--save", "", "--appendonly", aof ? "yes" : "no",
	       "--dir", r->dir, "--daemonize", "no", (char *)NULL);
	_exit(127);
}

/* Starts redis-server on r's port and directory and waits until it
 * answers PING (5 s at most); false if it did not come up. */
static bool redis_start(struct redis_server *r, bool aof)
{
	int status;

	r->pid = fork();
	if (r->pid < 0) {
		r->pid = 0;
		return false;
	}
	if (r->pid == 0)
		redis_exec(r, aof);
	for (int i = 0; i < 500; i++) {
		if (redis_say(r, "PING"))
			return true;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid)
			break;
		usleep(10000);
	}
	if (waitpid(r->pid, &status, WNOHANG) == 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, &status, 0);
	}
	r->pid = 0;
	return false;
}

/* Stops the server: SHUTDOWN (the append-only file is flushed and
 * synced first), or SIGKILL if it does not go within 5 s. */
static void redis_stop(struct redis_server *r)
{
	int status;

	if (r->pid == 0)
		return;
	kill(r->pid, SIGCONT); /* in case a test stopped it */
	redis_say(r, "SHUTDOWN");
	for (int i = 0; i < 500; i++) {
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &status, 0);
	r->pid = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A scratch directory and a free port, then the server; a few tries in
 * case another process takes the port in between. */
static bool redis_new(struct redis_server *r, bool aof)
{
	snprintf(r->dir, sizeof r->dir, "/tmp/asp-redis-XXXXXX");
	if (!mkdtemp(r->dir))
		return false;
	for (int tries = 0; tries < 5; tries++) {
		r->port = free_port();
		if (r->port && redis_start(r, aof))
			return true;
	}
	fprintf(stderr, "redis-server did not start (see %s/redis.log)\n",
		r->dir);
	return false;
}

static void redis_gone(struct redis_server *r)
{
	redis_stop(r);
	if (r->dir[0])
		nftw(r->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	r->dir[0] = '\0';
}

static int redis_group_setup(void **state)
{
	(void)state;
	on_redis = true;
	return redis_new(&redis, true) ? 0 : -1;
}

static int redis_group_teardown(void **state)
{
	(void)state;
	redis_gone(&redis);
	on_redis = false;
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/asp-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* Each test starts from an empty store (and a running server: a
	 * test that stopped it may have failed before starting it). */
	if (on_redis && ((!redis.pid && !redis_start(&redis, true)) ||
			 !redis_say(&redis, "FLUSHALL")))
		return -1;
	f->st = store_open(f);
	*state = f;
	return 0;
}

static void rm_files(const char *dir)
{
	static const char *const names[] = { "relay.db", "relay.db-wal",
					     "relay.db-shm" };
	char path[128];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->st)
		f->st->ops->close(f->st);
	rm_files(f->dir);
	free(f);
	return 0;
}

/* Collects load_all rows into one "desktop code key user;" string. */
static int collab_cat(const struct relay_store_collab *c, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s %s %s %s;", c->desktop,
		 c->code ? c->code : "-", c->owner_key, c->user ? c->user : "-");
	return 0;
}

static void expect_collabs(struct relay_store *st, const char *want)
{
	char got[512] = "";

	assert_int_equal(st->ops->collab_load_all(st, collab_cat, got), 0);
	assert_string_equal(got, want);
}

static void test_collab_put_load_del(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;

	expect_collabs(st, "");
	assert_int_equal(st->ops->collab_put(st, "desk-2", "K7M4Q2XW9PDH",
					     "00ff", "dana"), 0);
	assert_int_equal(st->ops->collab_put(st, "desk-1", NULL, "aa11", NULL),
			 0);
	expect_collabs(st, "desk-1 - aa11 -;desk-2 K7M4Q2XW9PDH 00ff dana;");
	/* A new code for the same desktop replaces the old one. */
	assert_int_equal(st->ops->collab_put(st, "desk-2", "222222222222",
					     "00ff", "dana"), 0);
	restart(f);
	st = f->st;
	expect_collabs(st, "desk-1 - aa11 -;desk-2 222222222222 00ff dana;");
	assert_int_equal(st->ops->collab_del(st, "desk-1"), 0);
	assert_int_equal(st->ops->collab_del(st, "desk-1"), 0);
	restart(f);
	expect_collabs(f->st, "desk-2 222222222222 00ff dana;");
	assert_int_equal(f->st->ops->collab_put(f->st, NULL, "c", "k", "u"),
			 -PROTO_E_MALFORMED);
	assert_int_equal(f->st->ops->collab_put(f->st, "d", "c", NULL, "u"),
			 -PROTO_E_MALFORMED);
}

static void expect_events(struct relay_store *st, int64_t since,
			  unsigned limit, const char *want);

/* collab_find's row as "desktop code key user", into arg (512 bytes). */
static int collab_one(const struct relay_store_collab *c, void *arg)
{
	*(char *)arg = '\0';
	return collab_cat(c, arg);
}

static void expect_find(struct relay_store *st, enum relay_collab_by by,
			const char *value, const char *want)
{
	char got[512] = "";
	int rc = st->ops->collab_find(st, by, value, collab_one, got);

	if (!want) {
		if (rc != -PROTO_E_NOT_FOUND)
			fail_msg("find %d %s: %d \"%s\", want not found", by,
				 value, rc, got);
		return;
	}
	if (rc != 0)
		fail_msg("find %d %s: %d (%s), want \"%s\"", by, value, rc,
			 st->ops->why(st), want);
	assert_string_equal(got, want);
}

static int collab_stop(const struct relay_store_collab *c, void *arg)
{
	(void)c;
	(void)arg;
	return 7;
}

/* Each of the three keys finds its one row, follows put and del, and
 * survives a restart. */
static void test_collab_find(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	char got[512] = "";

	assert_int_equal(st->ops->collab_put(st, "desk-1", "K7M4Q2XW9PDH",
					     "k1", "dana"), 0);
	assert_int_equal(st->ops->collab_put(st, "desk-2", NULL, "k2", NULL),
			 0);
	expect_find(st, RELAY_COLLAB_BY_DESKTOP, "desk-1",
		    "desk-1 K7M4Q2XW9PDH k1 dana;");
	expect_find(st, RELAY_COLLAB_BY_CODE, "K7M4Q2XW9PDH",
		    "desk-1 K7M4Q2XW9PDH k1 dana;");
	expect_find(st, RELAY_COLLAB_BY_OWNER_KEY, "k2", "desk-2 - k2 -;");
	expect_find(st, RELAY_COLLAB_BY_DESKTOP, "desk-3", NULL);
	expect_find(st, RELAY_COLLAB_BY_CODE, "222222222222", NULL);
	expect_find(st, RELAY_COLLAB_BY_OWNER_KEY, "k3", NULL);
	/* A code is matched as stored, not normalised by the store. */
	expect_find(st, RELAY_COLLAB_BY_CODE, "k7m4q2xw9pdh", NULL);
	assert_int_equal(st->ops->collab_put(st, "desk-1", "222222222222",
					     "k1", "dana"), 0);
	expect_find(st, RELAY_COLLAB_BY_CODE, "K7M4Q2XW9PDH", NULL);
	restart(f);
	st = f->st;
	expect_find(st, RELAY_COLLAB_BY_CODE, "222222222222",
		    "desk-1 222222222222 k1 dana;");
	expect_find(st, RELAY_COLLAB_BY_OWNER_KEY, "k1",
		    "desk-1 222222222222 k1 dana;");
	assert_int_equal(st->ops->collab_find(st, RELAY_COLLAB_BY_DESKTOP,
					      "desk-1", collab_stop, NULL), 7);
	assert_int_equal(st->ops->collab_del(st, "desk-1"), 0);
	expect_find(st, RELAY_COLLAB_BY_CODE, "222222222222", NULL);
	expect_find(st, RELAY_COLLAB_BY_OWNER_KEY, "k1", NULL);
	expect_find(st, RELAY_COLLAB_BY_DESKTOP, "desk-1", NULL);
	assert_int_equal(st->ops->collab_find(st, RELAY_COLLAB_BY_CODE, NULL,
					      collab_one, got),
			 -PROTO_E_MALFORMED);
	assert_int_equal(st->ops->collab_find(st, (enum relay_collab_by)9,
					      "desk-2", collab_one, got),
			 -PROTO_E_MALFORMED);
}

/* A code, and an owner key, belong to one desktop: another desktop's
 * put of it is refused and stores nothing, alone or in a batch. */
static void test_collab_unique(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	int rc;

	assert_int_equal(st->ops->collab_put(st, "desk-1", "AAAAAAAAAAAA",
					     "k1", "dana"), 0);
	assert_int_equal(st->ops->collab_put(st, "desk-2", "AAAAAAAAAAAA",
					     "k2", "eve"), -PROTO_E_STATE);
	assert_int_equal(st->ops->collab_put(st, "desk-2", "BBBBBBBBBBBB",
					     "k1", "eve"), -PROTO_E_STATE);
	expect_collabs(st, "desk-1 AAAAAAAAAAAA k1 dana;");
	/* Its own code and key again, or a new key: fine. */
	assert_int_equal(st->ops->collab_put(st, "desk-1", "AAAAAAAAAAAA",
					     "k3", "dana"), 0);
	expect_find(st, RELAY_COLLAB_BY_OWNER_KEY, "k1", NULL);
	assert_int_equal(st->ops->begin(st), 0);
	rc = st->ops->collab_put(st, "desk-2", "AAAAAAAAAAAA", "k2", "eve");
	if (rc != 0 && rc != -PROTO_E_STATE)
		fail_msg("put in a batch: %d", rc);
	st->ops->audit_append(st, 10, "eve", "collab_start", "desk-2", NULL);
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);
	expect_events(st, 0, 10, "");
	expect_collabs(st, "desk-1 AAAAAAAAAAAA k3 dana;");
	/* Once desk-1 lets go of the code, desk-2 may have it. */
	assert_int_equal(st->ops->collab_put(st, "desk-1", NULL, "k3", "dana"),
			 0);
	assert_int_equal(st->ops->collab_put(st, "desk-2", "AAAAAAAAAAAA",
					     "k2", "eve"), 0);
	expect_find(st, RELAY_COLLAB_BY_CODE, "AAAAAAAAAAAA",
		    "desk-2 AAAAAAAAAAAA k2 eve;");
}

static void expect_perm(struct relay_store *st, const char *user, bool help,
			bool collab)
{
	bool h = !help, c = !collab;

	assert_int_equal(st->ops->perm_get(st, user, &h, &c), 0);
	if (h != help || c != collab)
		fail_msg("%s: help=%d collab=%d, want help=%d collab=%d", user,
			 h, c, help, collab);
}

static void test_permissions(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;

	expect_perm(st, "nobody", false, false);
	assert_int_equal(st->ops->perm_set(st, "dana@x.org", true, false), 0);
	assert_int_equal(st->ops->perm_set(st, "eve", false, true), 0);
	expect_perm(st, "dana@x.org", true, false);
	assert_int_equal(st->ops->perm_set(st, "dana@x.org", true, true), 0);
	restart(f);
	expect_perm(f->st, "dana@x.org", true, true);
	expect_perm(f->st, "eve", false, true);
	expect_perm(f->st, "nobody", false, false);
	assert_int_equal(f->st->ops->perm_set(f->st, "", true, true),
			 -PROTO_E_MALFORMED);
}

static struct relay_store_assist assist_of(const char *id, int64_t t,
					   enum relay_assist_state s)
{
	struct relay_store_assist a;

	memset(&a, 0, sizeof a);
	snprintf(a.id, sizeof a.id, "%s", id);
	snprintf(a.desktop, sizeof a.desktop, "desk-%s", id);
	snprintf(a.user, sizeof a.user, "user-%s", id);
	snprintf(a.initiator, sizeof a.initiator, "user");
	a.requested_at = t;
	a.expires_at = t + 600;
	a.state = s;
	return a;
}

static int assist_cat(const struct relay_store_assist *a, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s:%s%s%s;", a->id,
		 relay_assist_state_name(a->state), a->admin[0] ? ":" : "",
		 a->admin);
	return 0;
}

static void expect_assists(struct relay_store *st, unsigned mask,
			   const char *want)
{
	char got[512] = "";

	assert_int_equal(st->ops->assist_list(st, mask, NULL, 100, assist_cat,
					      got), 0);
	assert_string_equal(got, want);
}

/* One page of at most limit after `after`. */
static void expect_page(struct relay_store *st, unsigned mask,
			const char *after, unsigned limit, const char *want)
{
	char got[512] = "";

	assert_int_equal(st->ops->assist_list(st, mask, after, limit,
					      assist_cat, got), 0);
	assert_string_equal(got, want);
}

static void test_assist_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 1000, RELAY_ASSIST_PENDING);
	struct relay_store_assist b = assist_of("r2", 900, RELAY_ASSIST_PENDING);
	struct relay_store_assist got;

	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->assist_create(st, &b), 0);
	assert_int_equal(st->ops->assist_create(st, &a), -PROTO_E_STATE);
	assert_int_equal(st->ops->assist_get(st, "r1", &got), 0);
	assert_memory_equal(&got, &a, sizeof a);
	assert_int_equal(st->ops->assist_set_state(st, "r1", RELAY_ASSIST_ALL,
						   RELAY_ASSIST_ACCEPTED, "root"),
			 0);
	/* A NULL admin keeps the one recorded. */
	assert_int_equal(st->ops->assist_set_state(st, "r1", RELAY_ASSIST_ALL,
						   RELAY_ASSIST_ACTIVE, NULL),
			 0);
	assert_int_equal(st->ops->assist_set_state(st, "r2", RELAY_ASSIST_ALL,
						   RELAY_ASSIST_DECLINED, "ops"),
			 0);
	restart(f);
	st = f->st;
	assert_int_equal(st->ops->assist_get(st, "r1", &got), 0);
	assert_int_equal(got.state, RELAY_ASSIST_ACTIVE);
	assert_string_equal(got.admin, "root");
	assert_int_equal(got.expires_at, 1600);
	expect_assists(st, RELAY_ASSIST_ALL, "r2:declined:ops;r1:active:root;");
	expect_assists(st, RELAY_ASSIST_OPEN, "r1:active:root;");
	expect_assists(st, RELAY_ASSIST_BIT(RELAY_ASSIST_PENDING), "");
	assert_int_equal(st->ops->assist_get(st, "nope", &got),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(st->ops->assist_set_state(st, "nope", RELAY_ASSIST_ALL,
						   RELAY_ASSIST_ENDED, NULL),
			 -PROTO_E_NOT_FOUND);
	a = assist_of("r3", 1, RELAY_ASSIST_PENDING);
	snprintf(a.initiator, sizeof a.initiator, "robot");
	assert_int_equal(st->ops->assist_create(st, &a), -PROTO_E_MALFORMED);
}

static void expect_state(struct relay_store *st, const char *id,
			 enum relay_assist_state state, const char *admin)
{
	struct relay_store_assist got;

	assert_int_equal(st->ops->assist_get(st, id, &got), 0);
	assert_string_equal(relay_assist_state_name(got.state),
			    relay_assist_state_name(state));
	assert_string_equal(got.admin, admin);
}

#define B(s) RELAY_ASSIST_BIT(RELAY_ASSIST_##s)

/* set_state changes a request only from a state in its from-mask: of
 * two administrators accepting one request, or two relays expiring it,
 * one wins and the other is told -PROTO_E_STATE. */
static void test_assist_from_mask(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);

	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->assist_set_state(st, "r1", B(INVITED),
						   RELAY_ASSIST_ACCEPTED, "x"),
			 -PROTO_E_STATE);
	expect_state(st, "r1", RELAY_ASSIST_PENDING, "");
	assert_int_equal(st->ops->assist_set_state(st, "r1",
						   B(PENDING) | B(INVITED),
						   RELAY_ASSIST_INVITED, "root"),
			 0);
	assert_int_equal(st->ops->assist_set_state(st, "r1", B(PENDING),
						   RELAY_ASSIST_INVITED, "ops"),
			 -PROTO_E_STATE);
	expect_state(st, "r1", RELAY_ASSIST_INVITED, "root");
	assert_int_equal(st->ops->assist_set_state(st, "r1", B(INVITED),
						   RELAY_ASSIST_EXPIRED, NULL),
			 0);
	assert_int_equal(st->ops->assist_set_state(st, "r1", B(INVITED),
						   RELAY_ASSIST_EXPIRED, NULL),
			 -PROTO_E_STATE);
	expect_state(st, "r1", RELAY_ASSIST_EXPIRED, "root");
	/* The unknown id is not found whatever the mask says. */
	assert_int_equal(st->ops->assist_set_state(st, "nope", B(PENDING),
						   RELAY_ASSIST_ENDED, NULL),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(st->ops->assist_set_state(st, "r1", 0,
						   RELAY_ASSIST_ENDED, NULL),
			 -PROTO_E_MALFORMED);
	assert_int_equal(st->ops->assist_set_state(st, "r1",
						   RELAY_ASSIST_ALL + 1,
						   RELAY_ASSIST_ENDED, NULL),
			 -PROTO_E_MALFORMED);
	expect_state(st, "r1", RELAY_ASSIST_EXPIRED, "root");
}

/* Inside a batch, a failed guard fails the batch: commit says so and
 * nothing of it is stored; a write may have returned 0 before. */
static void test_batch_guard(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	struct relay_store_assist b = assist_of("r2", 20, RELAY_ASSIST_PENDING);
	int rc;

	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->assist_create(st, &b), 0);
	rc = st->ops->assist_set_state(st, "r1", B(ACCEPTED),
				       RELAY_ASSIST_ENDED, NULL);
	if (rc != 0 && rc != -PROTO_E_STATE)
		fail_msg("set_state in a batch: %d", rc);
	/* A write after a failed one returns its error, untried. */
	assert_int_equal(st->ops->audit_append(st, 10, "a", "ended", NULL,
					       "r1"), rc);
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);
	expect_state(st, "r1", RELAY_ASSIST_PENDING, "");
	expect_assists(st, RELAY_ASSIST_ALL, "r1:pending;");
	expect_events(st, 0, 10, "");

	/* The create of an id that exists, found at commit at the latest. */
	assert_int_equal(st->ops->begin(st), 0);
	st->ops->audit_append(st, 10, "a", "created", NULL, "r1");
	st->ops->assist_create(st, &a);
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);
	expect_events(st, 0, 10, "");

	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->assist_set_state(st, "r1", B(PENDING),
						   RELAY_ASSIST_INVITED, "root"),
			 0);
	assert_int_equal(st->ops->audit_append(st, 10, "root", "invited",
					       "desk-r1", "r1"), 0);
	assert_int_equal(st->ops->commit(st), 0);
	expect_state(st, "r1", RELAY_ASSIST_INVITED, "root");
	expect_events(st, 0, 10, "10 root invited desk-r1 r1;");
}

/* A guard sees the writes before it in its batch: a request created
 * and moved, a code let go and taken by another desktop. */
static void test_batch_sees_itself(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);

	assert_int_equal(st->ops->begin(st), 0);
	st->ops->assist_create(st, &a);
	st->ops->assist_set_state(st, "r1", B(PENDING), RELAY_ASSIST_INVITED,
				  "root");
	st->ops->assist_set_state(st, "r1", B(PENDING), RELAY_ASSIST_ENDED,
				  NULL);
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);
	assert_int_equal(st->ops->assist_get(st, "r1", &a),
			 -PROTO_E_NOT_FOUND);

	a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	assert_int_equal(st->ops->collab_put(st, "desk-1", "AAAAAAAAAAAA",
					     "k1", NULL), 0);
	assert_int_equal(st->ops->begin(st), 0);
	st->ops->assist_create(st, &a);
	st->ops->assist_set_state(st, "r1", B(PENDING), RELAY_ASSIST_INVITED,
				  "root");
	st->ops->assist_set_state(st, "r1", B(INVITED), RELAY_ASSIST_ACCEPTED,
				  NULL);
	st->ops->collab_put(st, "desk-1", NULL, "k1", NULL);
	st->ops->collab_put(st, "desk-2", "AAAAAAAAAAAA", "k2", "eve");
	st->ops->collab_del(st, "desk-1");
	st->ops->collab_put(st, "desk-3", "BBBBBBBBBBBB", "k1", NULL);
	assert_int_equal(st->ops->commit(st), 0);
	expect_state(st, "r1", RELAY_ASSIST_ACCEPTED, "root");
	expect_assists(st, RELAY_ASSIST_BIT(RELAY_ASSIST_ACCEPTED),
		       "r1:accepted:root;");
	expect_collabs(st, "desk-2 AAAAAAAAAAAA k2 eve;"
			   "desk-3 BBBBBBBBBBBB k1 -;");
	expect_find(st, RELAY_COLLAB_BY_OWNER_KEY, "k1",
		    "desk-3 BBBBBBBBBBBB k1 -;");
}

/* Two relays sharing the store: both load a pending request, both
 * accept it; one wins. */
static void test_two_relays_one_winner(void **state)
{
	struct fixture *f = *state;
	struct relay_store *one = f->st, *two = store_open(f);
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	int rc1, rc2;

	assert_int_equal(one->ops->assist_create(one, &a), 0);
	assert_int_equal(one->ops->begin(one), 0);
	one->ops->assist_set_state(one, "r1", B(PENDING), RELAY_ASSIST_INVITED,
				   "root");
	rc1 = one->ops->commit(one);
	assert_int_equal(two->ops->begin(two), 0);
	two->ops->assist_set_state(two, "r1", B(PENDING), RELAY_ASSIST_INVITED,
				   "ops");
	rc2 = two->ops->commit(two);
	two->ops->close(two);
	assert_int_equal(rc1, 0);
	assert_int_equal(rc2, -PROTO_E_STATE);
	expect_state(one, "r1", RELAY_ASSIST_INVITED, "root");
}

/* A request for desktop d, else as assist_of. */
static struct relay_store_assist assist_for(const char *id, const char *d,
					    int64_t t,
					    enum relay_assist_state s)
{
	struct relay_store_assist a = assist_of(id, t, s);

	snprintf(a.desktop, sizeof a.desktop, "%s", d);
	return a;
}

/* A desktop has one open request at most: a second create (or a
 * finished request reopened) is refused and stores nothing, alone or in
 * a batch; a finished one may be added, and once the open one is closed
 * (earlier in the same batch too) a new one may be opened. */
static void test_assist_one_open_per_desktop(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist
		a = assist_for("r1", "d", 10, RELAY_ASSIST_PENDING),
		b = assist_for("r2", "d", 20, RELAY_ASSIST_INVITED),
		c = assist_for("r3", "d", 5, RELAY_ASSIST_ENDED), e1, e2, got;

	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->assist_create(st, &b), -PROTO_E_STATE);
	assert_int_equal(st->ops->assist_get(st, "r2", &got),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(st->ops->assist_create(st, &c), 0);
	assert_int_equal(st->ops->assist_set_state(st, "r3", RELAY_ASSIST_ALL,
						   RELAY_ASSIST_PENDING, NULL),
			 -PROTO_E_STATE);
	expect_state(st, "r3", RELAY_ASSIST_ENDED, "");
	/* An open request moving between open states is no second one. */
	assert_int_equal(st->ops->assist_set_state(st, "r1", B(PENDING),
						   RELAY_ASSIST_INVITED, "root"),
			 0);

	assert_int_equal(st->ops->begin(st), 0);
	st->ops->assist_create(st, &b);
	st->ops->audit_append(st, 20, "root", "assist-create", "d", "r2");
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);
	assert_int_equal(st->ops->assist_get(st, "r2", &got),
			 -PROTO_E_NOT_FOUND);
	expect_events(st, 0, 100, "");
	expect_assists(st, RELAY_ASSIST_OPEN, "r1:invited:root;");

	/* Two new ones for a desktop with none, in one batch. */
	e1 = assist_for("e1", "e", 30, RELAY_ASSIST_PENDING);
	e2 = assist_for("e2", "e", 31, RELAY_ASSIST_ACTIVE);
	assert_int_equal(st->ops->begin(st), 0);
	st->ops->assist_create(st, &e1);
	st->ops->assist_create(st, &e2);
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);
	assert_int_equal(st->ops->assist_open_for(st, "e", &got),
			 -PROTO_E_NOT_FOUND);

	assert_int_equal(st->ops->begin(st), 0);
	st->ops->assist_set_state(st, "r1", RELAY_ASSIST_OPEN,
				  RELAY_ASSIST_ENDED, NULL);
	st->ops->assist_create(st, &b);
	assert_int_equal(st->ops->commit(st), 0);
	restart(f);
	st = f->st;
	assert_int_equal(st->ops->assist_open_for(st, "d", &got), 0);
	assert_string_equal(got.id, "r2");
	expect_assists(st, RELAY_ASSIST_ALL,
		       "r3:ended;r1:ended:root;r2:invited;");
}

/* Two relays sharing the store each find no open request for a desktop
 * and create one (relay_assist_request, relay_assist_start): one is
 * stored, the other told -PROTO_E_STATE. */
static void test_two_relays_one_open(void **state)
{
	struct fixture *f = *state;
	struct relay_store *one = f->st, *two = store_open(f);
	struct relay_store_assist
		a = assist_for("r1", "d", 10, RELAY_ASSIST_PENDING),
		b = assist_for("r2", "d", 10, RELAY_ASSIST_INVITED), got;
	int rc1, rc2;

	assert_int_equal(one->ops->assist_open_for(one, "d", &got),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(two->ops->assist_open_for(two, "d", &got),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(one->ops->begin(one), 0);
	one->ops->assist_create(one, &a);
	one->ops->audit_append(one, 10, "u", "assist-create", "d", "r1");
	rc1 = one->ops->commit(one);
	assert_int_equal(two->ops->begin(two), 0);
	two->ops->assist_create(two, &b);
	two->ops->audit_append(two, 10, "root", "assist-create", "d", "r2");
	rc2 = two->ops->commit(two);
	two->ops->close(two);
	assert_int_equal(rc1, 0);
	assert_int_equal(rc2, -PROTO_E_STATE);
	expect_assists(one, RELAY_ASSIST_ALL, "r1:pending;");
	expect_events(one, 0, 100, "10 u assist-create d r1;");
}

#undef B

static void create_all(struct relay_store *st,
		       const struct relay_store_assist *a, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(st->ops->assist_create(st, &a[i]), 0);
}

/* Pages are in (requested_at, id) order, ties included, and a mask
 * filters before the limit counts. */
static void test_assist_pages(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	const struct relay_store_assist a[] = {
		assist_of("e", 30, RELAY_ASSIST_ENDED),
		assist_of("b", 10, RELAY_ASSIST_PENDING),
		assist_of("a", 10, RELAY_ASSIST_EXPIRED),
		assist_of("d", 20, RELAY_ASSIST_ACTIVE),
		assist_of("c", 10, RELAY_ASSIST_INVITED),
	};
	char got[64] = "";

	create_all(st, a, 5);
	expect_page(st, RELAY_ASSIST_ALL, NULL, 2, "a:expired;b:pending;");
	expect_page(st, RELAY_ASSIST_ALL, "b", 2, "c:invited;d:active;");
	expect_page(st, RELAY_ASSIST_ALL, "d", 2, "e:ended;");
	expect_page(st, RELAY_ASSIST_ALL, "e", 2, "");
	expect_page(st, RELAY_ASSIST_OPEN, "", 2, "b:pending;c:invited;");
	expect_page(st, RELAY_ASSIST_OPEN, "c", 2, "d:active;");
	/* The cursor may be a row the mask leaves out. */
	expect_page(st, RELAY_ASSIST_OPEN, "a", 1, "b:pending;");
	expect_page(st, RELAY_ASSIST_BIT(RELAY_ASSIST_ENDED), NULL, 5,
		    "e:ended;");
	assert_int_equal(st->ops->assist_list(st, RELAY_ASSIST_OPEN, "zz", 5,
					      assist_cat, got),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(st->ops->assist_list(st,
		RELAY_ASSIST_BIT(RELAY_ASSIST_ENDED) |
		RELAY_ASSIST_BIT(RELAY_ASSIST_EXPIRED), NULL, 5, assist_cat,
		got), -PROTO_E_MALFORMED);
	assert_int_equal(st->ops->assist_list(st, RELAY_ASSIST_ALL, NULL, 0,
					      assist_cat, got),
			 -PROTO_E_MALFORMED);
	assert_string_equal(got, "");
}

static void test_assist_open_for_and_due(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a[] = {
		assist_of("old", 10, RELAY_ASSIST_ENDED),
		assist_of("p1", 50, RELAY_ASSIST_PENDING),
		assist_of("p2", 40, RELAY_ASSIST_PENDING),
		assist_of("p3", 45, RELAY_ASSIST_PENDING),
		assist_of("act", 5, RELAY_ASSIST_ACTIVE),
	}, got, due[2];
	unsigned n = 9;

	snprintf(a[1].desktop, sizeof a[1].desktop, "desk-old");
	create_all(st, a, 5);
	assert_int_equal(st->ops->assist_open_for(st, "desk-old", &got), 0);
	assert_string_equal(got.id, "p1");
	assert_int_equal(st->ops->assist_open_for(st, "desk-none", &got),
			 -PROTO_E_NOT_FOUND);
	/* Due: waiting (pending, invited, accepted) with expires_at
	 * (requested_at + 600) <= now, the earliest first, at most cap; an
	 * active one does not expire. */
	assert_int_equal(st->ops->assist_due(st, 639, due, 2, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(st->ops->assist_due(st, 1000, due, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(due[0].id, "p2");
	assert_string_equal(due[1].id, "p3");
	assert_int_equal(st->ops->assist_set_state(st, "p2", RELAY_ASSIST_ALL,
						   RELAY_ASSIST_EXPIRED, NULL),
			 0);
	assert_int_equal(st->ops->assist_due(st, 645, due, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].id, "p3");
}

/* Only finished requests older than the bound go, at most limit a call;
 * audit events likewise by time. */
static void test_prune(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	const struct relay_store_assist a[] = {
		assist_of("e1", 10, RELAY_ASSIST_ENDED),
		assist_of("e2", 11, RELAY_ASSIST_DECLINED),
		assist_of("e3", 12, RELAY_ASSIST_EXPIRED),
		assist_of("live", 5, RELAY_ASSIST_ACTIVE),
		assist_of("new", 100, RELAY_ASSIST_ENDED),
	};
	unsigned n = 0;

	create_all(st, a, 5);
	assert_int_equal(st->ops->assist_prune(st, 50, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(st->ops->assist_prune(st, 50, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(st->ops->assist_prune(st, 50, 2, &n), 0);
	assert_int_equal(n, 0);
	expect_assists(st, RELAY_ASSIST_ALL, "live:active;new:ended;");
	for (int i = 0; i < 5; i++)
		assert_int_equal(st->ops->audit_append(st, i * 10, "a", "e",
						       NULL, NULL), 0);
	assert_int_equal(st->ops->audit_prune(st, 25, 100, &n), 0);
	assert_int_equal(n, 3);
	expect_events(st, 0, 100, "30 a e  ;40 a e  ;");
	assert_int_equal(st->ops->audit_prune(st, 25, 0, &n),
			 -PROTO_E_MALFORMED);
}

/* A batch is stored whole or not at all, even when the failing write is
 * not the last. */
static void test_batch_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	struct relay_store_assist got;
	int rc;

	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->begin(st), -PROTO_E_STATE);
	assert_int_equal(st->ops->assist_create(st, &a), 0);
	/* SQLite finds the unknown id at once, Redis at commit. */
	rc = st->ops->assist_set_state(st, "nope", RELAY_ASSIST_ALL,
				       RELAY_ASSIST_ENDED, NULL);
	if (rc != 0 && rc != -PROTO_E_NOT_FOUND)
		fail_msg("set_state of an unknown id in a batch: %d", rc);
	/* After a failed write, not tried: SQLite may have rolled the batch
	 * back already, and the write would be stored alone. */
	assert_int_equal(st->ops->audit_append(st, 10, "a", "e", NULL, NULL),
			 rc);
	assert_int_equal(st->ops->commit(st), -PROTO_E_NOT_FOUND);
	assert_int_equal(st->ops->assist_get(st, "r1", &got),
			 -PROTO_E_NOT_FOUND);
	expect_events(st, 0, 10, "");
	assert_int_equal(st->ops->commit(st), -PROTO_E_STATE);

	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->audit_append(st, 10, "a", "e", NULL, "r1"),
			 0);
	assert_int_equal(st->ops->commit(st), 0);
	restart(f);
	st = f->st;
	assert_int_equal(st->ops->assist_get(st, "r1", &got), 0);
	expect_events(st, 0, 10, "10 a e  r1;");
}

/* Another process's write lock: a write gives up after the short busy
 * wait with storage_unavailable, reads still work (WAL), and the same
 * write succeeds once the lock is gone. */
static void test_locked_is_storage(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	char path[96];
	sqlite3 *other = NULL;
	bool help = true, collab = true;

	snprintf(path, sizeof path, "%s/relay.db", f->dir);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL,
				      NULL), SQLITE_OK);
	assert_int_equal(st->ops->perm_set(st, "kim", true, false),
			 -PROTO_E_STORAGE);
	if (!strstr(st->ops->why(st), "locked"))
		fail_msg("why: \"%s\", want the lock named", st->ops->why(st));
	assert_int_equal(st->ops->perm_get(st, "kim", &help, &collab), 0);
	assert_false(help);
	assert_int_equal(st->ops->begin(st), -PROTO_E_STORAGE);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(st->ops->perm_set(st, "kim", true, false), 0);
	expect_perm(st, "kim", true, false);
}

static void test_assist_state_names(void **state)
{
	enum relay_assist_state s;

	(void)state;
	for (int i = 0; i < RELAY_ASSIST__COUNT; i++) {
		assert_int_equal(relay_assist_state_parse(
					 relay_assist_state_name(i), &s), 0);
		assert_int_equal(s, i);
	}
	assert_string_equal(relay_assist_state_name(RELAY_ASSIST_INVITED),
			    "invited");
	assert_int_equal(relay_assist_state_parse("Pending", &s),
			 -PROTO_E_MALFORMED);
	assert_string_equal(relay_assist_state_name(RELAY_ASSIST__COUNT), "?");
}

static int event_cat(const struct relay_store_event *e, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%lld %s %s %s %s;", (long long)e->time,
		 e->actor, e->event, e->desktop, e->detail);
	return 0;
}

static void expect_events(struct relay_store *st, int64_t since,
			  unsigned limit, const char *want)
{
	char got[512] = "";

	assert_int_equal(st->ops->audit_query(st, since, limit, event_cat, got),
			 0);
	assert_string_equal(got, want);
}

static void test_audit(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;

	assert_int_equal(st->ops->audit_append(st, 20, "root", "assist_accept",
					       "desk-1", "id=r1"), 0);
	assert_int_equal(st->ops->audit_append(st, 10, "dana", "collab_start",
					       "desk-1", NULL), 0);
	assert_int_equal(st->ops->audit_append(st, 20, "root", "assist_end",
					       NULL, "id=r1 by admin"), 0);
	assert_int_equal(st->ops->audit_append(st, 30, "asp-admin", "policy",
					       "", "eve help=on"), 0);
	restart(f);
	st = f->st;
	/* Time order; equal times in the order appended. */
	expect_events(st, 0, 100,
		      "10 dana collab_start desk-1 ;"
		      "20 root assist_accept desk-1 id=r1;"
		      "20 root assist_end  id=r1 by admin;"
		      "30 asp-admin policy  eve help=on;");
	/* The latest two, still oldest first. */
	expect_events(st, 0, 2,
		      "20 root assist_end  id=r1 by admin;"
		      "30 asp-admin policy  eve help=on;");
	expect_events(st, 21, 100, "30 asp-admin policy  eve help=on;");
	expect_events(st, 31, 100, "");
	expect_events(st, 0, 0, "");
	assert_int_equal(st->ops->audit_append(st, 1, NULL, "x", NULL, NULL),
			 -PROTO_E_MALFORMED);
}

static int stop_at_second(const struct relay_store_event *e, void *arg)
{
	int *seen = arg;

	(void)e;
	return ++*seen == 2 ? 42 : 0;
}

static void test_callback_stops(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	int seen = 0;

	for (int i = 0; i < 5; i++)
		assert_int_equal(st->ops->audit_append(st, i, "a", "e", NULL,
						       NULL), 0);
	assert_int_equal(st->ops->audit_query(st, 0, 10, stop_at_second, &seen),
			 42);
	assert_int_equal(seen, 2);
	/* The statement was reset: the next query starts afresh. */
	expect_events(st, 4, 10, "4 a e  ;");
}

/* Reads a PRAGMA from the file with a connection of its own. */
static void expect_pragma(const char *dir, const char *pragma,
			  const char *want)
{
	char path[128], sql[64];
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;

	snprintf(path, sizeof path, "%s/relay.db", dir);
	snprintf(sql, sizeof sql, "PRAGMA %s", pragma);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), want);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_file_is_private_wal(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct stat st;

	snprintf(path, sizeof path, "%s/relay.db", f->dir);
	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 0777) != 0600)
		fail_msg("relay.db mode %o, want 600", st.st_mode & 0777);
	expect_pragma(f->dir, "journal_mode", "wal");
	expect_pragma(f->dir, "user_version", "4");
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = NULL;
	char path[128], why[256] = "";
	sqlite3 *db = NULL;

	f->st->ops->close(f->st);
	f->st = NULL;
	snprintf(path, sizeof path, "%s/relay.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(relay_store_sqlite_open(f->dir, &st, why, sizeof why),
			 -PROTO_E_INTERNAL);
	assert_null(st);
	if (!strstr(why, "newer"))
		fail_msg("why: \"%s\", want it to say the schema is newer", why);
}

/* Closes the store, runs sql on its file (making it an older relay's)
 * and opens it again, which migrates it. */
static void reopen_after(struct fixture *f, const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;

	f->st->ops->close(f->st);
	f->st = NULL;
	snprintf(path, sizeof path, "%s/relay.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	f->st = store_open(f);
}

/* A file from the relay before schema 2 (no indexes for open and due
 * requests) is upgraded on open, its rows intact. */
static void test_schema_1_upgraded(void **state)
{
	struct fixture *f = *state;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	struct relay_store_assist got;
	unsigned n = 0;

	assert_int_equal(f->st->ops->assist_create(f->st, &a), 0);
	reopen_after(f,
		"DROP INDEX assist_by_time; DROP INDEX assist_by_state;"
		"DROP INDEX assist_open; DROP INDEX assist_open_desktop;"
		"DROP INDEX assist_due;"
		"DROP INDEX collab_by_code; DROP INDEX collab_by_owner_key;"
		"CREATE INDEX assist_by_time ON assist (requested_at);"
		"PRAGMA user_version = 1");
	expect_pragma(f->dir, "user_version", "4");
	assert_int_equal(f->st->ops->assist_open_for(f->st, "desk-r1", &got), 0);
	assert_string_equal(got.id, "r1");
	assert_int_equal(f->st->ops->assist_due(f->st, 610, &got, 1, &n), 0);
	assert_int_equal(n, 1);
}

/* A file from before schema 3, when nothing kept two desktops from
 * sharing a code or an owner key: the first row keeps each. */
static void test_schema_2_duplicates(void **state)
{
	struct fixture *f = *state;

	reopen_after(f,
		"DROP INDEX collab_by_code; DROP INDEX collab_by_owner_key;"
		"INSERT INTO collab VALUES ('d1', 'AAAAAAAAAAAA', 'k1', 'u');"
		"INSERT INTO collab VALUES ('d0', 'AAAAAAAAAAAA', 'k0', 'u');"
		"INSERT INTO collab VALUES ('d2', 'BBBBBBBBBBBB', 'k1', 'u');"
		"PRAGMA user_version = 2");
	expect_pragma(f->dir, "user_version", "4");
	expect_collabs(f->st, "d0 - k0 u;d1 AAAAAAAAAAAA k1 u;");
	expect_find(f->st, RELAY_COLLAB_BY_CODE, "AAAAAAAAAAAA",
		    "d1 AAAAAAAAAAAA k1 u;");
}

/* A file from before schema 4, when two open requests for one desktop
 * could be stored: the oldest stays open, the others are expired, and
 * the desktop then has room for no other. */
static void test_schema_3_two_open(void **state)
{
	struct fixture *f = *state;
	struct relay_store_assist a = assist_for("r9", "d", 30,
						 RELAY_ASSIST_PENDING);
	struct relay_store_assist got;

	reopen_after(f,
		"DROP INDEX assist_open_desktop;"
		"CREATE INDEX assist_open_desktop ON assist (desktop, "
		"  requested_at) WHERE state IN ('pending', 'invited', "
		"  'accepted', 'active');"
		"INSERT INTO assist VALUES ('r2', 'd', 'u', 'user', '', 20, 620,"
		"  'pending');"
		"INSERT INTO assist VALUES ('r1', 'd', 'u', 'admin', 'ops', 20,"
		"  620, 'active');"
		"INSERT INTO assist VALUES ('r3', 'd', 'u', 'user', '', 10, 610,"
		"  'ended');"
		"INSERT INTO assist VALUES ('r4', 'e', 'u', 'user', '', 30, 630,"
		"  'invited');"
		"PRAGMA user_version = 3");
	expect_pragma(f->dir, "user_version", "4");
	expect_assists(f->st, RELAY_ASSIST_ALL,
		       "r3:ended;r1:active:ops;r2:expired;r4:invited;");
	assert_int_equal(f->st->ops->assist_open_for(f->st, "d", &got), 0);
	assert_string_equal(got.id, "r1");
	assert_int_equal(f->st->ops->assist_create(f->st, &a),
			 -PROTO_E_STATE);
}

static void test_missing_dir(void **state)
{
	struct relay_store *st = NULL;
	char why[256] = "";

	(void)state;
	assert_int_equal(relay_store_sqlite_open("/nonexistent/asp", &st, why,
						 sizeof why),
			 -PROTO_E_INTERNAL);
	assert_null(st);
	if (!strstr(why, "/nonexistent/asp/relay.db"))
		fail_msg("why: \"%s\", want the path", why);
}

/* A writer killed without closing loses nothing it was told was
 * written: the child writes, then SIGKILLs itself. */
static void test_survives_sigkill(void **state)
{
	struct fixture *f = *state;
	int status = 0;
	pid_t pid;

	f->st->ops->close(f->st);
	f->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct relay_store *st = store_open(f);

		if (st->ops->collab_put(st, "desk-9", "ABCDEFGHJKMN", "beef",
					"kim") != 0 ||
		    st->ops->perm_set(st, "kim", true, true) != 0)
			_exit(1);
		raise(SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	f->st = store_open(f);
	expect_collabs(f->st, "desk-9 ABCDEFGHJKMN beef kim;");
	expect_perm(f->st, "kim", true, true);
}

/* ---- Redis only ------------------------------------------------------ */

/* Writes one of everything, as a relay would. */
static void write_some(struct relay_store *st)
{
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);

	assert_int_equal(st->ops->collab_put(st, "desk-1", "K7M4Q2XW9PDH",
					     "k1", "dana"), 0);
	assert_int_equal(st->ops->perm_set(st, "dana", true, false), 0);
	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->audit_append(st, 10, "dana", "pending",
					       "desk-r1", "r1"), 0);
	assert_int_equal(st->ops->commit(st), 0);
	assert_int_equal(st->ops->assist_set_state(st, "r1",
		RELAY_ASSIST_BIT(RELAY_ASSIST_PENDING), RELAY_ASSIST_INVITED,
		"root"), 0);
}

static void expect_some(struct relay_store *st)
{
	expect_find(st, RELAY_COLLAB_BY_CODE, "K7M4Q2XW9PDH",
		    "desk-1 K7M4Q2XW9PDH k1 dana;");
	expect_perm(st, "dana", true, false);
	expect_state(st, "r1", RELAY_ASSIST_INVITED, "root");
	expect_assists(st, RELAY_ASSIST_OPEN, "r1:invited:root;");
	expect_events(st, 0, 10, "10 dana pending desk-r1 r1;");
}

/* Calls a read and says how long it took; *rc its result. */
static int64_t timed_perm_get(struct relay_store *st, int *rc)
{
	bool help, collab;
	int64_t t0 = now_ms();

	*rc = st->ops->perm_get(st, "dana", &help, &collab);
	return now_ms() - t0;
}

static void expect_why(struct relay_store *st, const char *want)
{
	if (!strstr(st->ops->why(st), want))
		fail_msg("why: \"%s\", want \"%s\" in it", st->ops->why(st),
			 want);
}

/* One op with Redis unreachable: storage_unavailable within the
 * timeout, saying where and why; and the next, within 500 ms of the
 * failure, fails at once without trying. */
static void expect_down(struct relay_store *st, const char *reason,
			int64_t at_least)
{
	char where[64];
	int64_t took;
	int rc;

	snprintf(where, sizeof where, "redis at 127.0.0.1:%d: ", redis.port);
	took = timed_perm_get(st, &rc);
	assert_int_equal(rc, -PROTO_E_STORAGE);
	if (took < at_least || took > REDIS_TIMEOUT_MS + 200)
		fail_msg("%s: took %lld ms", reason, (long long)took);
	expect_why(st, where);
	expect_why(st, reason);
	took = timed_perm_get(st, &rc);
	assert_int_equal(rc, -PROTO_E_STORAGE);
	if (took > 5)
		fail_msg("the retry within 500 ms took %lld ms",
			 (long long)took);
}

/* Redis gone (refused at once) and Redis stalled (no answer: SIGSTOP):
 * ops fail as expect_down says, and once Redis is back the same store
 * works again by itself. */
static void test_redis_down_then_back(void **state)
{
	struct fixture *f = *state;

	write_some(f->st);
	redis_stop(&redis);
	expect_down(f->st, "refused", 0);
	assert_true(redis_start(&redis, true));
	usleep(550 * 1000);
	expect_some(f->st);

	assert_int_equal(kill(redis.pid, SIGSTOP), 0);
	expect_down(f->st, "no answer within 250 ms", REDIS_TIMEOUT_MS - 20);
	assert_int_equal(kill(redis.pid, SIGCONT), 0);
	usleep(550 * 1000);
	expect_some(f->st);
}

/* A restart of Redis (SHUTDOWN flushes the append-only file, then a
 * new server on the same directory) loses nothing the store said it
 * stored; the new server does not know the script, which the store
 * sends again. */
static void test_redis_restart_keeps_writes(void **state)
{
	struct fixture *f = *state;

	write_some(f->st);
	redis_stop(&redis);
	assert_true(redis_start(&redis, true));
	usleep(550 * 1000);
	expect_some(f->st);
	restart(f);
	expect_some(f->st);
	assert_true(redis_say(&redis, "SCRIPT FLUSH"));
	expect_some(f->st);
}

/* A batch whose commit finds Redis gone stores nothing of it. */
static void test_redis_batch_unreachable(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	struct relay_store_assist got;

	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->collab_put(st, "desk-1", "AAAAAAAAAAAA",
					     "k1", NULL), 0);
	assert_int_equal(st->ops->audit_append(st, 10, "a", "e", NULL, NULL),
			 0);
	redis_stop(&redis);
	assert_int_equal(st->ops->commit(st), -PROTO_E_STORAGE);
	assert_true(redis_start(&redis, true));
	usleep(550 * 1000);
	assert_int_equal(st->ops->assist_get(st, "r1", &got),
			 -PROTO_E_NOT_FOUND);
	expect_collabs(st, "");
	expect_events(st, 0, 10, "");
	/* The store goes on: the same batch again is stored whole. */
	assert_int_equal(st->ops->begin(st), 0);
	assert_int_equal(st->ops->assist_create(st, &a), 0);
	assert_int_equal(st->ops->audit_append(st, 10, "a", "e", NULL, NULL),
			 0);
	assert_int_equal(st->ops->commit(st), 0);
	assert_int_equal(st->ops->assist_get(st, "r1", &got), 0);
}

/* Audit times that go back (a node's clock behind another's): the
 * stream ids stay in order, queries still answer in time order, and
 * nothing with a time at or after the bound is pruned. */
static void test_redis_audit_clock_back(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	unsigned n = 9;

	assert_int_equal(st->ops->audit_append(st, 100, "a", "e1", NULL, NULL),
			 0);
	assert_int_equal(st->ops->audit_append(st, 50, "a", "e2", NULL, NULL),
			 0);
	assert_int_equal(st->ops->audit_append(st, 100, "a", "e3", NULL, NULL),
			 0);
	assert_int_equal(st->ops->audit_append(st, -5, "a", "e4", NULL, NULL),
			 0);
	expect_events(st, 0, 10, "50 a e2  ;100 a e1  ;100 a e3  ;");
	expect_events(st, 60, 10, "100 a e1  ;100 a e3  ;");
	expect_events(st, -10, 10,
		      "-5 a e4  ;50 a e2  ;100 a e1  ;100 a e3  ;");
	assert_int_equal(st->ops->audit_prune(st, 100, 10, &n), 0);
	assert_int_equal(n, 0);
	expect_events(st, 60, 10, "100 a e1  ;100 a e3  ;");
	assert_int_equal(st->ops->audit_prune(st, 101, 10, &n), 0);
	assert_int_equal(n, 4);
	expect_events(st, -10, 10, "");
}

static void expect_url_refused(const char *url)
{
	struct relay_store *st = (struct relay_store *)&st;
	char why[256] = "";

	if (relay_store_redis_open(url, 100, &st, why, sizeof why) !=
	    -PROTO_E_MALFORMED)
		fail_msg("\"%s\" was not refused", url ? url : "(null)");
	assert_null(st);
	if (!strstr(why, "redis://HOST:PORT[/DB]"))
		fail_msg("\"%s\": why \"%s\"", url ? url : "(null)", why);
}

/* Garbage is refused with a sentence naming the form; a well-formed URL
 * of a port nobody listens on is storage_unavailable; a database number
 * keeps its keys apart; a name is resolved. */
static void test_redis_url(void **state)
{
	static const char *const BAD[] = {
		"", "redis:/", "redis://", "redis://h", "redis://h:",
		"redis://:6379", "redis://h:0", "redis://h:65536",
		"redis://h:06379", "redis://h:6379/", "redis://h:6379/16",
		"redis://h:6379/1/2", "redis://h:6379?db=1", "redis://h:6379 ",
		"redis://u:p@h:6379", "rediss://h:6379", "http://h:6379",
		"redis://h st:6379", "redis://[::1:6379", "redis://[]:6379",
		"unix:///run/redis.sock", "redis://h:-1", NULL,
	};
	struct fixture *f = *state;
	struct relay_store *st = NULL, *three = NULL;
	struct redis_server none = { .port = free_port() };
	char why[256], url[64];

	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
		expect_url_refused(BAD[i]);
	redis_url(url, sizeof url, &none, 0);
	assert_int_equal(relay_store_redis_open(url, 100, &st, why, sizeof why),
			 -PROTO_E_STORAGE);
	assert_null(st);
	snprintf(url, sizeof url, "redis at 127.0.0.1:%d: ", none.port);
	if (!strstr(why, url) || !strstr(why, "refused"))
		fail_msg("why: \"%s\"", why);

	redis_url(url, sizeof url, &redis, 3);
	assert_int_equal(relay_store_redis_open(url, 100, &three, why,
						sizeof why), 0);
	assert_int_equal(three->ops->perm_set(three, "dana", true, true), 0);
	expect_perm(f->st, "dana", false, false);
	expect_perm(three, "dana", true, true);
	three->ops->close(three);
	snprintf(url, sizeof url, "redis://localhost:%d", redis.port);
	assert_int_equal(relay_store_redis_open(url, 100, &three, why,
						sizeof why), 0);
	three->ops->close(three);
}

/* A Redis without the append-only file would lose acknowledged writes
 * when it restarts: refused, saying so. */
static void test_redis_without_aof_refused(void **state)
{
	struct redis_server plain = { 0 };
	struct relay_store *st = NULL;
	char why[256] = "", url[64];

	(void)state;
	assert_true(redis_new(&plain, false));
	redis_url(url, sizeof url, &plain, 0);
	assert_int_equal(relay_store_redis_open(url, 250, &st, why, sizeof why),
			 -PROTO_E_INTERNAL);
	redis_gone(&plain);
	assert_null(st);
	if (!strstr(why, "appendonly"))
		fail_msg("why: \"%s\"", why);
}

/* What a few ops cost against the local server, in µs per call, for
 * the record (printed, not asserted: the machine decides). */
/* Counts events, checking they come oldest first. */
static int count_event(const struct relay_store_event *e, void *arg)
{
	int *n = arg;

	assert_int_equal(e->time, *n);
	(*n)++;
	return 0;
}

/* Many ops in a row on one connection, timed for the record (the
 * numbers are printed, not judged: bench/ judges speed). */
static void test_redis_latency(void **state)
{
	struct fixture *f = *state;
	struct relay_store *st = f->st;
	struct relay_store_assist a = assist_of("r1", 10, RELAY_ASSIST_PENDING);
	char got[512];
	bool help, collab;
	int64_t t0;
	int n = 10000, seen = 0;

	assert_int_equal(st->ops->collab_put(st, "desk-1", "K7M4Q2XW9PDH",
					     "k1", "dana"), 0);
	assert_int_equal(st->ops->assist_create(st, &a), 0);
	t0 = now_ms();
	for (int i = 0; i < n; i++)
		assert_int_equal(st->ops->collab_find(st, RELAY_COLLAB_BY_CODE,
						      "K7M4Q2XW9PDH",
						      collab_one, got), 0);
	printf("collab_find by code: %.1f us\n", (now_ms() - t0) * 1e3 / n);
	t0 = now_ms();
	for (int i = 0; i < n; i++)
		assert_int_equal(st->ops->perm_get(st, "dana", &help, &collab),
				 0);
	printf("perm_get: %.1f us\n", (now_ms() - t0) * 1e3 / n);
	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		assert_int_equal(st->ops->begin(st), 0);
		st->ops->assist_set_state(st, "r1", RELAY_ASSIST_ALL,
					  i % 2 ? RELAY_ASSIST_PENDING :
						  RELAY_ASSIST_INVITED, "root");
		st->ops->audit_append(st, i, "root", "invited", "desk-r1",
				      "r1");
		assert_int_equal(st->ops->commit(st), 0);
	}
	printf("batch of assist_set_state + audit_append: %.1f us\n",
	       (now_ms() - t0) * 1e3 / n);
	/* 10,000 round trips on one connection leave the state the last
	 * batch set and every audit event, in order. */
	assert_int_equal(st->ops->assist_get(st, "r1", &a), 0);
	assert_int_equal(a.state, RELAY_ASSIST_PENDING);
	assert_int_equal(st->ops->audit_query(st, 0, (unsigned)n + 10,
					      count_event, &seen), 0);
	assert_int_equal(seen, n);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
/* The contract: every backend passes these. */
#define SHARED                                                              \
	T(test_collab_put_load_del), T(test_collab_find),                   \
	T(test_collab_unique), T(test_permissions),                         \
	T(test_assist_lifecycle), T(test_assist_pages),                     \
	T(test_assist_open_for_and_due), T(test_prune),                     \
	T(test_batch_all_or_nothing), T(test_assist_from_mask),             \
	T(test_batch_guard), T(test_batch_sees_itself),                     \
	T(test_two_relays_one_winner), T(test_audit),                       \
	T(test_assist_one_open_per_desktop), T(test_two_relays_one_open),   \
	T(test_callback_stops), T(test_survives_sigkill)
	const struct CMUnitTest sqlite[] = {
		SHARED,
		T(test_locked_is_storage),
		cmocka_unit_test(test_assist_state_names),
		T(test_file_is_private_wal),
		T(test_newer_schema_refused),
		T(test_schema_1_upgraded),
		T(test_schema_2_duplicates),
		T(test_schema_3_two_open),
		cmocka_unit_test(test_missing_dir),
	};
	const struct CMUnitTest redis_tests[] = {
		SHARED,
		T(test_redis_down_then_back),
		T(test_redis_restart_keeps_writes),
		T(test_redis_batch_unreachable),
		T(test_redis_audit_clock_back),
		T(test_redis_url),
		cmocka_unit_test(test_redis_without_aof_refused),
		T(test_redis_latency),
	};
#undef SHARED
#undef T
	int failed;

	/* As the relay does: a write to a connection Redis closed is an
	 * error to handle, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	failed = cmocka_run_group_tests_name("sqlite", sqlite, NULL, NULL);

	return failed + cmocka_run_group_tests_name("redis", redis_tests,
						    redis_group_setup,
						    redis_group_teardown);
}
