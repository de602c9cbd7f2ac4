/*
 * relay_store: the relay's durable state, behind a small interface.
 *
 * What must survive a restart lives here: each desktop's collaboration
 * code and owner key, per-user permissions, remote assistance requests
 * and the audit log.  Session logic only sees struct relay_store and its
 * ops table, filled in by one of two backends: SQLite in the data
 * directory (relay_store_sqlite.c), the default, and Redis shared by the
 * relays of a cluster (relay_store_redis.c).  Both pass the same tests
 * (tests/unit/test_relay_store.c).
 *
 * Calling convention, for every op:
 *   - returns 0 or a negative -PROTO_E_* code:
 *       -PROTO_E_STORAGE: the backend cannot write now (disk full,
 *         locked by another process past a short wait, read-only, an I/O
 *         error; Redis unreachable, loading or out of memory).
 *         Nothing was changed and the caller refuses the action with
 *         storage_unavailable; the same op succeeds once the cause is
 *         gone, with no restart.
 *       -PROTO_E_INTERNAL: any other backend failure (corruption, a row
 *         this relay cannot read).
 *       For both, st->ops->why(st) says what failed in a sentence
 *       (valid until the next op).
 *       -PROTO_E_NOT_FOUND: a missing row.  -PROTO_E_STATE: a row that
 *       must not exist already does.  -PROTO_E_MALFORMED: an argument
 *       that is not valid (NULL id, unknown state, unsupported mask).
 *   - strings are NUL-terminated and copied by the store: the caller's
 *     buffers need only live for the call.
 *   - list callbacks get strings owned by the store, valid only during
 *     the callback; copy what you keep.  A callback returns 0 to go on,
 *     or any other value to stop: the op then returns that value.  The
 *     callback must not call the store.
 *   - every write is durable when the op returns 0, to the extent of a
 *     process crash (a power cut may lose the last writes, never corrupt
 *     the store).  Writes between begin and commit are one change: after
 *     a crash, or when commit fails, none of them is stored.
 *   - one store belongs to one thread (the relay's event loop), so no op
 *     may cost more than a bounded amount of work however many rows are
 *     stored: lookups are by key or index, and every op that returns or
 *     deletes many rows takes a limit.  Nothing is deleted unless the
 *     operator asked (the prune ops, run by relay_retain.c).
 * Times are unix seconds.
 */
#ifndef ASP_RELAY_STORE_H
#define ASP_RELAY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest id (desktop, user, request id) the relay stores. */
#define RELAY_STORE_ID_MAX 64

enum relay_assist_state {
	RELAY_ASSIST_PENDING = 0, /* the user asked; no administrator yet */
	RELAY_ASSIST_INVITED,     /* an administrator offered help */
	RELAY_ASSIST_ACCEPTED,    /* both sides agreed; admin may join */
	RELAY_ASSIST_ACTIVE,      /* the administrator is connected */
	RELAY_ASSIST_ENDED,
	RELAY_ASSIST_DECLINED,
	RELAY_ASSIST_EXPIRED,
	RELAY_ASSIST__COUNT
};

/* Bit masks for list filters. */
#define RELAY_ASSIST_BIT(s) (1u << (s))
#define RELAY_ASSIST_ALL ((1u << RELAY_ASSIST__COUNT) - 1)
#define RELAY_ASSIST_OPEN                                                   \
	(RELAY_ASSIST_BIT(RELAY_ASSIST_PENDING) |                           \
	 RELAY_ASSIST_BIT(RELAY_ASSIST_INVITED) |                           \
	 RELAY_ASSIST_BIT(RELAY_ASSIST_ACCEPTED) |                          \
	 RELAY_ASSIST_BIT(RELAY_ASSIST_ACTIVE))

/* "pending", "invited", ...; "?" for a value outside the enum. */
const char *relay_assist_state_name(enum relay_assist_state s);
/* The state named s; -PROTO_E_MALFORMED if none is. */
int relay_assist_state_parse(const char *s, enum relay_assist_state *out);

/* One collaboration, as load_all and find hand it out.  code is NULL
 * when the desktop has no code (only an owner key); user is NULL when
 * unknown. */
struct relay_store_collab {
	const char *desktop;
	const char *code;
	const char *owner_key;
	const char *user;
};

/* One assistance request.  admin is "" until an administrator acts. */
struct relay_store_assist {
	char id[RELAY_STORE_ID_MAX + 1];
	char desktop[RELAY_STORE_ID_MAX + 1];
	char user[RELAY_STORE_ID_MAX + 1];
	char initiator[8]; /* "user" or "admin" */
	char admin[RELAY_STORE_ID_MAX + 1];
	int64_t requested_at;
	int64_t expires_at;
	enum relay_assist_state state;
};

/* One audit event; desktop and detail may be "". */
struct relay_store_event {
	int64_t time;
	const char *actor;
	const char *event;
	const char *desktop;
	const char *detail;
};

/* What collab_find looks a collaboration up by. */
enum relay_collab_by {
	RELAY_COLLAB_BY_DESKTOP,
	RELAY_COLLAB_BY_CODE,      /* the canonical code (proto_code.h) */
	RELAY_COLLAB_BY_OWNER_KEY,
};

struct relay_store;

typedef int (*relay_store_collab_cb)(const struct relay_store_collab *c,
				     void *arg);
typedef int (*relay_store_assist_cb)(const struct relay_store_assist *a,
				     void *arg);
typedef int (*relay_store_event_cb)(const struct relay_store_event *e,
				    void *arg);

struct relay_store_ops {
	/* Releases everything; st is invalid afterwards.  NULL is fine. */
	void (*close)(struct relay_store *st);
	/* The sentence describing the last -PROTO_E_INTERNAL, or "". */
	const char *(*why)(const struct relay_store *st);

	/* Collaborations: one row per desktop; put replaces it.  A code and
	 * an owner key each belong to one desktop at most: put refuses one
	 * that another desktop holds with -PROTO_E_STATE (and stores
	 * nothing). */
	int (*collab_put)(struct relay_store *st, const char *desktop,
			  const char *code, const char *owner_key,
			  const char *user);
	/* Forgets the desktop; 0 even if it was not stored. */
	int (*collab_del)(struct relay_store *st, const char *desktop);
	/* Calls cb for every stored desktop, in desktop order. */
	int (*collab_load_all)(struct relay_store *st, relay_store_collab_cb cb,
			       void *arg);
	/* Calls cb once with the desktop whose desktop id, code or owner
	 * key (by) is value, through an index; -PROTO_E_NOT_FOUND if none
	 * is, -PROTO_E_MALFORMED for a NULL value or an unknown by. */
	int (*collab_find)(struct relay_store *st, enum relay_collab_by by,
			   const char *value, relay_store_collab_cb cb,
			   void *arg);

	/* Permissions: a user never set has both off. */
	int (*perm_get)(struct relay_store *st, const char *user, bool *help,
			bool *collab);
	int (*perm_set)(struct relay_store *st, const char *user, bool help,
			bool collab);

	/* One change made of several writes (an assistance state and its
	 * audit event): begin, the writes, then commit, which stores all of
	 * them or, if any write in between failed, none (returning that
	 * write's error).  A write inside a batch may return 0 and leave its
	 * error to commit (a backend that sends the batch at commit checks
	 * the guards there: assist_create's new id and its desktop's one
	 * open request, assist_set_state's id and from-mask, collab_put's
	 * unique code and owner key), so the
	 * caller decides on commit's result alone.  Once a write has
	 * returned an error, the later writes of the batch are not tried
	 * and return the same error.  No reads, prunes or nested begin in
	 * between (the Redis store refuses them with -PROTO_E_STATE). */
	int (*begin)(struct relay_store *st);
	int (*commit)(struct relay_store *st);

	/* Assistance requests.  create refuses an id that exists with
	 * -PROTO_E_STATE; set_state and get return -PROTO_E_NOT_FOUND for
	 * an unknown id.  set_state records admin unless it is NULL.
	 *
	 * A desktop has one open request (RELAY_ASSIST_OPEN) at most: a
	 * create in an open state, or a set_state from a finished state to
	 * an open one, for a desktop that has another open request returns
	 * -PROTO_E_STATE and stores nothing (inside a batch, the whole
	 * batch fails).  The guard runs with the write, atomically, so of
	 * two relays that each found no open request (assist_open_for) and
	 * create one, one wins and the other is told -PROTO_E_STATE.
	 *
	 * set_state is a compare-and-set: it changes the request only if
	 * the stored state's bit is in from (RELAY_ASSIST_ALL: whatever it
	 * is); otherwise it returns -PROTO_E_STATE and changes nothing
	 * (inside a batch, the whole batch fails).  This is what makes an
	 * expiry fire once and one of two racing administrators win when
	 * several relays share the store.  from must be a non-empty subset
	 * of RELAY_ASSIST_ALL, or -PROTO_E_MALFORMED. */
	int (*assist_create)(struct relay_store *st,
			     const struct relay_store_assist *a);
	int (*assist_set_state)(struct relay_store *st, const char *id,
				unsigned from, enum relay_assist_state state,
				const char *admin);
	int (*assist_get)(struct relay_store *st, const char *id,
			  struct relay_store_assist *out);
	/* One page of requests whose state's bit is in mask, oldest first
	 * (by requested_at, then id): at most limit (>= 1) of them, starting
	 * after the request `after` (the last one of the previous page;
	 * NULL or "" for the first page; -PROTO_E_NOT_FOUND if it is not
	 * stored).  mask is RELAY_ASSIST_OPEN, RELAY_ASSIST_ALL or one
	 * state's bit; any other is -PROTO_E_MALFORMED. */
	int (*assist_list)(struct relay_store *st, unsigned mask,
			   const char *after, unsigned limit,
			   relay_store_assist_cb cb, void *arg);
	/* The desktop's open request (the oldest, should a store written
	 * before the one-open guard hold several); -PROTO_E_NOT_FOUND if it
	 * has none. */
	int (*assist_open_for)(struct relay_store *st, const char *desktop,
			       struct relay_store_assist *out);
	/* Up to cap waiting requests (pending, invited, accepted) with
	 * expires_at <= now, the earliest first, into out[]; their number
	 * in *n. */
	int (*assist_due)(struct relay_store *st, int64_t now,
			  struct relay_store_assist *out, unsigned cap,
			  unsigned *n);
	/* Deletes up to limit finished requests (ended, declined, expired)
	 * with requested_at < before, the oldest first; *n says how many. */
	int (*assist_prune)(struct relay_store *st, int64_t before,
			    unsigned limit, unsigned *n);

	/* Audit log.  query calls cb for the latest `limit` events with
	 * time >= since, oldest first (ties in the order appended). */
	int (*audit_append)(struct relay_store *st, int64_t time,
			    const char *actor, const char *event,
			    const char *desktop, const char *detail);
	int (*audit_query)(struct relay_store *st, int64_t since,
			   unsigned limit, relay_store_event_cb cb, void *arg);
	/* Deletes up to limit events with time < before, the oldest first;
	 * *n says how many. */
	int (*audit_prune)(struct relay_store *st, int64_t before,
			   unsigned limit, unsigned *n);
};

/* Every backend's handle starts with this; backends extend it. */
struct relay_store {
	const struct relay_store_ops *ops;
};

/* Opens (creating if missing) DATA_DIR/relay.db: mode 0600 (it holds
 * owner keys), WAL journal, synchronous=NORMAL, a busy timeout, and the
 * schema created or migrated to the current user_version.  data_dir must
 * exist.  0 and *out set; -PROTO_E_INTERNAL with a sentence in why
 * otherwise (including a database from a newer relay). */
int relay_store_sqlite_open(const char *data_dir, struct relay_store **out,
			    char *why, size_t why_len);

/* Opens the store in the Redis at url, redis://HOST:PORT[/DB] (DB 0-15,
 * nothing else: no credentials, no query), shared by every relay of a
 * cluster (docs/cluster.md, "The store in Redis").  Every op then waits
 * at most timeout_ms for Redis; when Redis cannot be reached it returns
 * -PROTO_E_STORAGE with why "redis at HOST:PORT: ...", and the next op
 * connects again, but not sooner than 500 ms after the failure (in
 * between, ops fail at once).  An op that timed out after its command
 * was sent may still be applied by a Redis that was only slow.  The
 * process must ignore SIGPIPE (the relay does): a write to a connection
 * Redis closed is then an error, not the end of the process.
 *
 * Connects before returning: 0 and *out set; otherwise *out is NULL,
 * why says what failed and the result is -PROTO_E_MALFORMED (url is not
 * of that form), -PROTO_E_STORAGE (Redis cannot be reached) or
 * -PROTO_E_INTERNAL (Redis older than 7, or without appendonly, so that
 * its restart could lose acknowledged writes). */
int relay_store_redis_open(const char *url, int timeout_ms,
			   struct relay_store **out, char *why, size_t why_len);

/* Makes every op of the Redis store st fail at once with
 * -PROTO_E_STORAGE while up(arg) says Redis does not answer (the
 * cluster's renewal connection knows without a round trip). */
void relay_store_redis_gate(struct relay_store *st, bool (*up)(void *arg),
			    void *arg);

#endif
