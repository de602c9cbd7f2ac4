/*
 * relay_store_sqlite: the relay's durable state in one SQLite file,
 * DATA_DIR/relay.db.  See relay_store.h for the contract.
 *
 * WAL with synchronous=NORMAL makes each committed write survive a crash
 * of the relay process (the write is in the WAL, and the OS has it) at
 * the cost of one fsync per checkpoint rather than per write, which
 * keeps the event loop from waiting on the disk.  Every statement is
 * prepared once at open and reset after use.  The schema carries its
 * version in PRAGMA user_version and is migrated forward in a
 * transaction per step, so an older file is upgraded and a newer one
 * (from a later relay) is refused rather than misread.
 *
 * The loop must not slow down as the tables grow: every query goes
 * through an index (the open requests and the pending ones by expiry
 * have partial indexes of their own, named in the queries with INDEXED
 * BY so the planner cannot fall back to a scan and sort; finished rows
 * cost them nothing),
 * lists are paged, and the prune deletes are batched.  SQLite's result
 * codes are sorted at one place, store_err, into the contract's errors.
 */
#include "relay/relay_store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "protocol/proto_error.h"
#include "relay/relay_alloc.h"

/* How long a write waits for a lock held by another process (an admin
 * inspecting the file with the sqlite3 shell, say) before failing with
 * storage_unavailable.  The event loop waits with it, so it is short. */
#define STORE_BUSY_MS 200

/* RELAY_ASSIST_OPEN in SQL: the partial indexes and the queries that
 * use them must spell it the same way for SQLite to match them. */
#define OPEN_SQL "state IN ('pending', 'invited', 'accepted', 'active')"
#define FINISHED_SQL "state IN ('ended', 'declined', 'expired')"
/* The states that expire (pending, invited, accepted). */
#define WAITING_SQL "state IN ('pending', 'invited', 'accepted')"
/* The state's enum value (its bit in a mask); a state this relay does
 * not know matches no mask. */
#define STATE_INDEX_SQL                                                   \
	"(CASE state WHEN 'pending' THEN 0 WHEN 'invited' THEN 1 "        \
	"WHEN 'accepted' THEN 2 WHEN 'active' THEN 3 WHEN 'ended' THEN 4 " \
	"WHEN 'declined' THEN 5 WHEN 'expired' THEN 6 ELSE 63 END)"

/* Migration i takes the schema from user_version i to i + 1. */
static const char *const MIGRATIONS[] = {
	"CREATE TABLE collab ("
	"  desktop TEXT PRIMARY KEY,"
	"  code TEXT,"
	"  owner_key TEXT NOT NULL,"
	"  user TEXT);"
	"CREATE TABLE permission ("
	"  user TEXT PRIMARY KEY,"
	"  help INTEGER NOT NULL,"
	"  collab INTEGER NOT NULL);"
	"CREATE TABLE assist ("
	"  id TEXT PRIMARY KEY,"
	"  desktop TEXT NOT NULL,"
	"  user TEXT NOT NULL,"
	"  initiator TEXT NOT NULL CHECK (initiator IN ('user', 'admin')),"
	"  admin TEXT NOT NULL DEFAULT '',"
	"  requested_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  state TEXT NOT NULL);"
	"CREATE INDEX assist_by_time ON assist (requested_at);"
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  event TEXT NOT NULL,"
	"  desktop TEXT NOT NULL,"
	"  detail TEXT NOT NULL);"
	"CREATE INDEX audit_by_time ON audit (time, id);",

	"DROP INDEX assist_by_time;"
	"CREATE INDEX assist_by_time ON assist (requested_at, id);"
	"CREATE INDEX assist_by_state ON assist (state, requested_at, id);"
	"CREATE INDEX assist_open ON assist (requested_at, id) WHERE " OPEN_SQL ";"
	"CREATE INDEX assist_open_desktop ON assist (desktop, requested_at) "
	"  WHERE " OPEN_SQL ";"
	"CREATE INDEX assist_due ON assist (expires_at) WHERE " WAITING_SQL ";",

	/* Lookups by code and by owner key, each owned by one desktop.  A
	 * relay before this version did not enforce that; a duplicate
	 * (which 58.9 random bits make unheard of) is kept by the first row
	 * stored, and the others lose it: a code they share goes, a row
	 * that shares an owner key goes (its host draws a new one). */
	"DELETE FROM collab WHERE rowid NOT IN ("
	"  SELECT min(rowid) FROM collab GROUP BY owner_key);"
	"UPDATE collab SET code = NULL WHERE code IS NOT NULL AND rowid NOT IN ("
	"  SELECT min(rowid) FROM collab WHERE code IS NOT NULL GROUP BY code);"
	"CREATE UNIQUE INDEX collab_by_code ON collab (code);"
	"CREATE UNIQUE INDEX collab_by_owner_key ON collab (owner_key);",

	/* One open request per desktop, kept by a unique index.  A relay
	 * before this version checked only before it created one, and two
	 * relays (or two requests at once) could each create one; the
	 * oldest is kept (the one assist_open_for answered) and the others
	 * are expired. */
	"UPDATE assist SET state = 'expired' WHERE " OPEN_SQL " AND EXISTS ("
	"  SELECT 1 FROM assist AS older WHERE older.desktop = assist.desktop"
	"  AND " OPEN_SQL " AND (older.requested_at, older.id) <"
	"  (assist.requested_at, assist.id));"
	"DROP INDEX assist_open_desktop;"
	"CREATE UNIQUE INDEX assist_open_desktop ON assist (desktop) "
	"  WHERE " OPEN_SQL ";",
};
#define SCHEMA_VERSION ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

#define COLLAB_COLS "desktop, code, owner_key, user"
#define ASSIST_COLS \
	"id, desktop, user, initiator, admin, requested_at, expires_at, state"

enum {
	ST_COLLAB_PUT,
	ST_COLLAB_DEL,
	ST_COLLAB_ALL,
	ST_COLLAB_BY_DESKTOP,
	ST_COLLAB_BY_CODE,
	ST_COLLAB_BY_OWNER_KEY,
	ST_PERM_GET,
	ST_PERM_SET,
	ST_ASSIST_NEW,
	ST_ASSIST_STATE,
	ST_ASSIST_GET,
	ST_ASSIST_ALL,
	ST_ASSIST_OPEN,
	ST_ASSIST_ONE_STATE,
	ST_ASSIST_OPEN_FOR,
	ST_ASSIST_DUE,
	ST_ASSIST_PRUNE,
	ST_AUDIT_ADD,
	ST_AUDIT_QUERY,
	ST_AUDIT_PRUNE,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST__COUNT
};

static const char *const SQL[ST__COUNT] = {
	/* An upsert, not INSERT OR REPLACE: that would delete another
	 * desktop's row holding the same code instead of refusing. */
	[ST_COLLAB_PUT] = "INSERT INTO collab (desktop, code, owner_key, user) "
			  "VALUES (?, ?, ?, ?) ON CONFLICT (desktop) DO UPDATE "
			  "SET code = excluded.code, "
			  "owner_key = excluded.owner_key, user = excluded.user",
	[ST_COLLAB_DEL] = "DELETE FROM collab WHERE desktop = ?",
	[ST_COLLAB_ALL] = "SELECT " COLLAB_COLS " FROM collab "
			  "ORDER BY desktop",
	[ST_COLLAB_BY_DESKTOP] = "SELECT " COLLAB_COLS " FROM collab "
				 "WHERE desktop = ?",
	[ST_COLLAB_BY_CODE] = "SELECT " COLLAB_COLS " FROM collab "
			      "INDEXED BY collab_by_code WHERE code = ?",
	[ST_COLLAB_BY_OWNER_KEY] = "SELECT " COLLAB_COLS " FROM collab "
				   "INDEXED BY collab_by_owner_key "
				   "WHERE owner_key = ?",
	[ST_PERM_GET] = "SELECT help, collab FROM permission WHERE user = ?",
	[ST_PERM_SET] = "INSERT OR REPLACE INTO permission (user, help, collab) "
			"VALUES (?, ?, ?)",
	[ST_ASSIST_NEW] = "INSERT INTO assist (" ASSIST_COLS ") "
			  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	/* ?4 is the from-mask: the row changes only if its state's bit is
	 * set in it (the compare-and-set of relay_store.h). */
	[ST_ASSIST_STATE] = "UPDATE assist SET state = ?2, "
			    "admin = COALESCE(?3, admin) "
			    "WHERE id = ?1 AND (?4 >> " STATE_INDEX_SQL ") & 1",
	[ST_ASSIST_GET] = "SELECT " ASSIST_COLS " FROM assist WHERE id = ?",
	/* Pages: ?1, ?2 are the previous page's last (requested_at, id). */
	[ST_ASSIST_ALL] = "SELECT " ASSIST_COLS " FROM assist "
			  "WHERE (requested_at, id) > (?1, ?2) "
			  "ORDER BY requested_at, id LIMIT ?3",
	[ST_ASSIST_OPEN] = "SELECT " ASSIST_COLS " FROM assist "
			   "INDEXED BY assist_open "
			   "WHERE " OPEN_SQL " AND (requested_at, id) > (?1, ?2) "
			   "ORDER BY requested_at, id LIMIT ?3",
	[ST_ASSIST_ONE_STATE] = "SELECT " ASSIST_COLS " FROM assist "
				"WHERE state = ?4 AND (requested_at, id) > (?1, ?2) "
				"ORDER BY requested_at, id LIMIT ?3",
	[ST_ASSIST_OPEN_FOR] = "SELECT " ASSIST_COLS " FROM assist "
			       "WHERE desktop = ? AND " OPEN_SQL
			       " ORDER BY requested_at LIMIT 1",
	[ST_ASSIST_DUE] = "SELECT " ASSIST_COLS " FROM assist "
			  "INDEXED BY assist_due "
			  "WHERE " WAITING_SQL " AND expires_at <= ? "
			  "ORDER BY expires_at LIMIT ?",
	[ST_ASSIST_PRUNE] = "DELETE FROM assist WHERE rowid IN ("
			    "  SELECT rowid FROM assist WHERE " FINISHED_SQL
			    "  AND requested_at < ? LIMIT ?)",
	[ST_AUDIT_ADD] = "INSERT INTO audit (time, actor, event, desktop, detail) "
			 "VALUES (?, ?, ?, ?, ?)",
	[ST_AUDIT_QUERY] = "SELECT time, actor, event, desktop, detail FROM ("
			   "  SELECT * FROM audit WHERE time >= ?"
			   "  ORDER BY time DESC, id DESC LIMIT ?"
			   ") ORDER BY time, id",
	[ST_AUDIT_PRUNE] = "DELETE FROM audit WHERE id IN ("
			   "  SELECT id FROM audit WHERE time < ?"
			   "  ORDER BY time, id LIMIT ?)",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

struct store_sqlite {
	struct relay_store base; /* first, so the handle casts both ways */
	sqlite3 *db;
	sqlite3_stmt *stmt[ST__COUNT];
	bool in_batch;  /* between begin and commit */
	int batch_err;  /* the first failed write of the batch, or 0 */
	char why[256];
};

static struct store_sqlite *sq(struct relay_store *st)
{
	return (struct store_sqlite *)st;
}

/* Sorts an SQLite result code into the contract's errors, records why
 * the call failed, and remembers the first failure of a batch so that
 * commit stores none of it. */
static int store_err(struct store_sqlite *s, int rc, const char *what)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		err = -PROTO_E_STATE; /* the key exists: the caller's mistake */
		break;
	case SQLITE_FULL:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
		err = -PROTO_E_STORAGE; /* passes once the disk or lock does */
		break;
	default:
		err = -PROTO_E_INTERNAL;
		break;
	}
	proto_err_set(s->why, sizeof s->why, "relay.db: %s: %s", what,
		      sqlite3_errmsg(s->db));
	if (s->in_batch && !s->batch_err)
		s->batch_err = err;
	return err;
}

/* A write's result: a batch remembers its first failure, whatever it
 * was (a missing row, a bad argument, the disk). */
static int batch_note(struct store_sqlite *s, int rc)
{
	if (rc && s->in_batch && !s->batch_err)
		s->batch_err = rc;
	return rc;
}

/* A failure with no more precise code (binding, preparing). */
static int store_fail(struct store_sqlite *s, const char *what)
{
	return store_err(s, sqlite3_errcode(s->db), what);
}

/* The statement, reset and ready for new bindings. */
static sqlite3_stmt *stmt_get(struct store_sqlite *s, int which)
{
	sqlite3_stmt *stmt = s->stmt[which];

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

/* Binds a string the caller keeps alive for the call (NULL binds NULL). */
static bool bind_str(sqlite3_stmt *stmt, int i, const char *v)
{
	return sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC) == SQLITE_OK;
}

static bool bind_int(sqlite3_stmt *stmt, int i, int64_t v)
{
	return sqlite3_bind_int64(stmt, i, v) == SQLITE_OK;
}

/* Runs a statement that returns no rows.  Once a write of a batch has
 * failed, SQLite may have rolled the transaction back by itself (a full
 * disk, I/O, no memory), so a later write would run in autocommit and be
 * stored alone: none runs, and the batch fails as a whole. */
static int stmt_run(struct store_sqlite *s, sqlite3_stmt *stmt,
		    const char *what)
{
	int rc;

	if (s->in_batch && s->batch_err) {
		sqlite3_reset(stmt);
		return s->batch_err;
	}
	rc = sqlite3_step(stmt);

	rc = rc == SQLITE_DONE ? 0 : store_err(s, rc, what);
	sqlite3_reset(stmt);
	return rc;
}

static const char *col_str(sqlite3_stmt *stmt, int i)
{
	return (const char *)sqlite3_column_text(stmt, i);
}

static void col_copy(char *dst, size_t cap, sqlite3_stmt *stmt, int i)
{
	const char *v = col_str(stmt, i);

	snprintf(dst, cap, "%s", v ? v : "");
}

static int collab_put(struct relay_store *st, const char *desktop,
		      const char *code, const char *owner_key, const char *user)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_COLLAB_PUT);

	if (!relay_store_id_ok(desktop) || !owner_key)
		return batch_note(s, -PROTO_E_MALFORMED);
	if (!bind_str(stmt, 1, desktop) || !bind_str(stmt, 2, code) ||
	    !bind_str(stmt, 3, owner_key) || !bind_str(stmt, 4, user))
		return store_fail(s, "collab put");
	return stmt_run(s, stmt, "collab put");
}

static int collab_del(struct relay_store *st, const char *desktop)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_COLLAB_DEL);

	if (!desktop)
		return batch_note(s, -PROTO_E_MALFORMED);
	if (!bind_str(stmt, 1, desktop))
		return store_fail(s, "collab del");
	return stmt_run(s, stmt, "collab del");
}

/* Steps a query, calling row(stmt) per row until it returns non-zero. */
static int stmt_rows(struct store_sqlite *s, sqlite3_stmt *stmt,
		     const char *what, int (*row)(sqlite3_stmt *, void *),
		     void *ctx)
{
	int rc = SQLITE_DONE, stop = 0;

	while (!stop && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		stop = row(stmt, ctx);
	if (!stop && rc != SQLITE_DONE)
		stop = store_err(s, rc, what);
	sqlite3_reset(stmt);
	return stop;
}

/* What a list op hands its row function: the caller's callback. */
struct walk {
	union {
		relay_store_collab_cb collab;
		relay_store_assist_cb assist;
		relay_store_event_cb event;
	} cb;
	void *arg;
};

static int collab_row(sqlite3_stmt *stmt, void *ctx)
{
	struct walk *w = ctx;
	struct relay_store_collab c = {
		.desktop = col_str(stmt, 0),
		.code = col_str(stmt, 1),
		.owner_key = col_str(stmt, 2),
		.user = col_str(stmt, 3),
	};

	return w->cb.collab(&c, w->arg);
}

/* collab_row for a lookup: the key is unique, so there is one row. */
struct collab_seen {
	struct walk *w;
	bool found;
};

static int collab_row_once(sqlite3_stmt *stmt, void *ctx)
{
	struct collab_seen *seen = ctx;

	seen->found = true;
	return collab_row(stmt, seen->w);
}

static int collab_load_all(struct relay_store *st, relay_store_collab_cb cb,
			   void *arg)
{
	struct store_sqlite *s = sq(st);
	struct walk w = { .cb.collab = cb, .arg = arg };

	if (!cb)
		return -PROTO_E_MALFORMED;
	return stmt_rows(s, stmt_get(s, ST_COLLAB_ALL), "collab load", collab_row,
			 &w);
}

static int collab_find(struct relay_store *st, enum relay_collab_by by,
		       const char *value, relay_store_collab_cb cb, void *arg)
{
	static const int BY_STMT[] = {
		[RELAY_COLLAB_BY_DESKTOP] = ST_COLLAB_BY_DESKTOP,
		[RELAY_COLLAB_BY_CODE] = ST_COLLAB_BY_CODE,
		[RELAY_COLLAB_BY_OWNER_KEY] = ST_COLLAB_BY_OWNER_KEY,
	};
	struct store_sqlite *s = sq(st);
	struct walk w = { .cb.collab = cb, .arg = arg };
	struct collab_seen seen = { .w = &w };
	sqlite3_stmt *stmt;
	int rc;

	if (!value || !cb || (unsigned)by >= sizeof BY_STMT / sizeof BY_STMT[0])
		return -PROTO_E_MALFORMED;
	stmt = stmt_get(s, BY_STMT[by]);
	if (!bind_str(stmt, 1, value))
		return store_fail(s, "collab find");
	rc = stmt_rows(s, stmt, "collab find", collab_row_once, &seen);
	return rc == 0 && !seen.found ? -PROTO_E_NOT_FOUND : rc;
}

static int perm_get(struct relay_store *st, const char *user, bool *help,
		    bool *collab)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_PERM_GET);
	int rc;

	*help = *collab = false;
	if (!user)
		return -PROTO_E_MALFORMED;
	if (!bind_str(stmt, 1, user))
		return store_fail(s, "permission get");
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*help = sqlite3_column_int(stmt, 0) != 0;
		*collab = sqlite3_column_int(stmt, 1) != 0;
	}
	rc = (rc == SQLITE_ROW || rc == SQLITE_DONE)
		     ? 0 : store_fail(s, "permission get");
	sqlite3_reset(stmt);
	return rc;
}

static int perm_set(struct relay_store *st, const char *user, bool help,
		    bool collab)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_PERM_SET);

	if (!relay_store_id_ok(user))
		return batch_note(s, -PROTO_E_MALFORMED);
	if (!bind_str(stmt, 1, user) || !bind_int(stmt, 2, help) ||
	    !bind_int(stmt, 3, collab))
		return store_fail(s, "permission set");
	return stmt_run(s, stmt, "permission set");
}

static int assist_create(struct relay_store *st,
			 const struct relay_store_assist *a)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_ASSIST_NEW);

	if (!a || !relay_store_assist_valid(a))
		return batch_note(s, -PROTO_E_MALFORMED);
	if (!bind_str(stmt, 1, a->id) || !bind_str(stmt, 2, a->desktop) ||
	    !bind_str(stmt, 3, a->user) || !bind_str(stmt, 4, a->initiator) ||
	    !bind_str(stmt, 5, a->admin) || !bind_int(stmt, 6, a->requested_at) ||
	    !bind_int(stmt, 7, a->expires_at) ||
	    !bind_str(stmt, 8, relay_assist_state_name(a->state)))
		return store_fail(s, "assist create");
	return stmt_run(s, stmt, "assist create");
}

static int assist_get(struct relay_store *st, const char *id,
		      struct relay_store_assist *out);

static int assist_set_state(struct relay_store *st, const char *id,
			    unsigned from, enum relay_assist_state state,
			    const char *admin)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_ASSIST_STATE);
	struct relay_store_assist cur;
	int rc;

	if (!id || (unsigned)state >= RELAY_ASSIST__COUNT ||
	    !relay_store_from_ok(from))
		return batch_note(s, -PROTO_E_MALFORMED);
	if (!bind_str(stmt, 1, id) ||
	    !bind_str(stmt, 2, relay_assist_state_name(state)) ||
	    !bind_str(stmt, 3, admin) || !bind_int(stmt, 4, from))
		return store_fail(s, "assist state");
	rc = stmt_run(s, stmt, "assist state");
	/* Nothing changed: the id is unknown, or its state is not in from
	 * (the read is in the same transaction or connection as the
	 * update, so it sees the row the update saw). */
	if (rc == 0 && sqlite3_changes(s->db) == 0) {
		rc = assist_get(st, id, &cur);
		if (rc == 0)
			rc = -PROTO_E_STATE;
	}
	return batch_note(s, rc);
}

/* Fills *a from a row of ASSIST_COLS; false if the state is unknown. */
static bool assist_from_row(sqlite3_stmt *stmt, struct relay_store_assist *a)
{
	col_copy(a->id, sizeof a->id, stmt, 0);
	col_copy(a->desktop, sizeof a->desktop, stmt, 1);
	col_copy(a->user, sizeof a->user, stmt, 2);
	col_copy(a->initiator, sizeof a->initiator, stmt, 3);
	col_copy(a->admin, sizeof a->admin, stmt, 4);
	a->requested_at = sqlite3_column_int64(stmt, 5);
	a->expires_at = sqlite3_column_int64(stmt, 6);
	return relay_assist_state_parse(col_str(stmt, 7), &a->state) == 0;
}

/* Runs statement `which`, keyed by key, for at most one request. */
static int assist_one(struct store_sqlite *s, int which, const char *key,
		      struct relay_store_assist *out, const char *what)
{
	sqlite3_stmt *stmt = stmt_get(s, which);
	int rc;

	memset(out, 0, sizeof *out);
	if (!key)
		return -PROTO_E_MALFORMED;
	if (!bind_str(stmt, 1, key))
		return store_fail(s, what);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && !assist_from_row(stmt, out))
		rc = SQLITE_CORRUPT;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rc = store_err(s, rc, what);
	else
		rc = rc == SQLITE_ROW ? 0 : -PROTO_E_NOT_FOUND;
	sqlite3_reset(stmt);
	return rc;
}

static int assist_get(struct relay_store *st, const char *id,
		      struct relay_store_assist *out)
{
	return assist_one(sq(st), ST_ASSIST_GET, id, out, "assist get");
}

static int assist_row(sqlite3_stmt *stmt, void *ctx)
{
	struct walk *w = ctx;
	struct relay_store_assist a;

	/* Rows with a state this relay does not know are skipped: a later
	 * relay may have written them. */
	if (!assist_from_row(stmt, &a))
		return 0;
	return w->cb.assist(&a, w->arg);
}

/* The statement for a list mask, with the state bound if it needs one. */
static sqlite3_stmt *assist_list_stmt(struct store_sqlite *s, unsigned mask)
{
	sqlite3_stmt *stmt;

	if (mask == RELAY_ASSIST_ALL)
		return stmt_get(s, ST_ASSIST_ALL);
	if (mask == RELAY_ASSIST_OPEN)
		return stmt_get(s, ST_ASSIST_OPEN);
	for (int i = 0; i < RELAY_ASSIST__COUNT; i++) {
		if (mask != RELAY_ASSIST_BIT(i))
			continue;
		stmt = stmt_get(s, ST_ASSIST_ONE_STATE);
		if (!bind_str(stmt, 4, relay_assist_state_name(i)))
			return NULL;
		return stmt;
	}
	return NULL;
}

static int assist_list(struct relay_store *st, unsigned mask,
		       const char *after, unsigned limit,
		       relay_store_assist_cb cb, void *arg)
{
	struct store_sqlite *s = sq(st);
	struct walk w = { .cb.assist = cb, .arg = arg };
	struct relay_store_assist from = { .requested_at = INT64_MIN };
	sqlite3_stmt *stmt;
	int rc;

	if (!cb || limit == 0)
		return -PROTO_E_MALFORMED;
	if (after && *after) {
		rc = assist_get(st, after, &from);
		if (rc)
			return rc;
	}
	stmt = assist_list_stmt(s, mask);
	if (!stmt)
		return -PROTO_E_MALFORMED;
	if (!bind_int(stmt, 1, from.requested_at) ||
	    !bind_str(stmt, 2, from.id) || !bind_int(stmt, 3, limit))
		return store_fail(s, "assist list");
	return stmt_rows(s, stmt, "assist list", assist_row, &w);
}

static int assist_open_for(struct relay_store *st, const char *desktop,
			   struct relay_store_assist *out)
{
	return assist_one(sq(st), ST_ASSIST_OPEN_FOR, desktop, out,
			  "assist open");
}

static int assist_due(struct relay_store *st, int64_t now,
		      struct relay_store_assist *out, unsigned cap,
		      unsigned *n)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_ASSIST_DUE);
	int rc = SQLITE_DONE;

	*n = 0;
	if (!out || cap == 0)
		return -PROTO_E_MALFORMED;
	if (!bind_int(stmt, 1, now) || !bind_int(stmt, 2, cap))
		return store_fail(s, "assist due");
	while (*n < cap && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (assist_from_row(stmt, &out[*n]))
			(*n)++;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 :
						    store_err(s, rc, "assist due");
	sqlite3_reset(stmt);
	return rc;
}

/* Runs a batched DELETE bound to (before, limit); *n rows went. */
static int prune_run(struct store_sqlite *s, int which, int64_t before,
		     unsigned limit, unsigned *n, const char *what)
{
	sqlite3_stmt *stmt = stmt_get(s, which);
	int rc;

	*n = 0;
	if (limit == 0)
		return -PROTO_E_MALFORMED;
	if (!bind_int(stmt, 1, before) || !bind_int(stmt, 2, limit))
		return store_fail(s, what);
	rc = stmt_run(s, stmt, what);
	if (rc == 0)
		*n = (unsigned)sqlite3_changes(s->db);
	return rc;
}

static int assist_prune(struct relay_store *st, int64_t before,
			unsigned limit, unsigned *n)
{
	return prune_run(sq(st), ST_ASSIST_PRUNE, before, limit, n,
			 "assist prune");
}

static int audit_append(struct relay_store *st, int64_t time,
			const char *actor, const char *event,
			const char *desktop, const char *detail)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_AUDIT_ADD);

	if (!actor || !event)
		return batch_note(s, -PROTO_E_MALFORMED);
	if (!bind_int(stmt, 1, time) || !bind_str(stmt, 2, actor) ||
	    !bind_str(stmt, 3, event) ||
	    !bind_str(stmt, 4, desktop ? desktop : "") ||
	    !bind_str(stmt, 5, detail ? detail : ""))
		return store_fail(s, "audit append");
	return stmt_run(s, stmt, "audit append");
}

static int event_row(sqlite3_stmt *stmt, void *ctx)
{
	struct walk *w = ctx;
	struct relay_store_event e = {
		.time = sqlite3_column_int64(stmt, 0),
		.actor = col_str(stmt, 1),
		.event = col_str(stmt, 2),
		.desktop = col_str(stmt, 3),
		.detail = col_str(stmt, 4),
	};

	return w->cb.event(&e, w->arg);
}

static int audit_query(struct relay_store *st, int64_t since, unsigned limit,
		       relay_store_event_cb cb, void *arg)
{
	struct store_sqlite *s = sq(st);
	sqlite3_stmt *stmt = stmt_get(s, ST_AUDIT_QUERY);
	struct walk w = { .cb.event = cb, .arg = arg };

	if (!cb)
		return -PROTO_E_MALFORMED;
	if (!bind_int(stmt, 1, since) || !bind_int(stmt, 2, limit))
		return store_fail(s, "audit query");
	return stmt_rows(s, stmt, "audit query", event_row, &w);
}

static int audit_prune(struct relay_store *st, int64_t before, unsigned limit,
		       unsigned *n)
{
	return prune_run(sq(st), ST_AUDIT_PRUNE, before, limit, n,
			 "audit prune");
}

static int store_begin(struct relay_store *st)
{
	struct store_sqlite *s = sq(st);
	int rc;

	if (s->in_batch)
		return -PROTO_E_STATE;
	rc = stmt_run(s, stmt_get(s, ST_BEGIN), "begin");
	if (rc == 0) {
		s->in_batch = true;
		s->batch_err = 0;
	}
	return rc;
}

static int store_commit(struct relay_store *st)
{
	struct store_sqlite *s = sq(st);
	int rc;

	if (!s->in_batch)
		return -PROTO_E_STATE;
	rc = s->batch_err;
	if (rc == 0)
		rc = stmt_run(s, stmt_get(s, ST_COMMIT), "commit");
	s->in_batch = false;
	/* SQLite may have rolled back already (a full disk does that). */
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_step(stmt_get(s, ST_ROLLBACK));
	sqlite3_reset(s->stmt[ST_ROLLBACK]);
	return rc;
}

static const char *store_why(const struct relay_store *st)
{
	return ((const struct store_sqlite *)st)->why;
}

static void store_close(struct relay_store *st)
{
	struct store_sqlite *s = sq(st);

	if (!st)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	/* The last connection to close checkpoints the WAL into the file. */
	sqlite3_close(s->db);
	free(s);
}

static const struct relay_store_ops SQLITE_OPS = {
	.close = store_close,
	.why = store_why,
	.collab_put = collab_put,
	.collab_del = collab_del,
	.collab_load_all = collab_load_all,
	.collab_find = collab_find,
	.perm_get = perm_get,
	.perm_set = perm_set,
	.assist_create = assist_create,
	.assist_set_state = assist_set_state,
	.assist_get = assist_get,
	.begin = store_begin,
	.commit = store_commit,
	.assist_list = assist_list,
	.assist_open_for = assist_open_for,
	.assist_due = assist_due,
	.assist_prune = assist_prune,
	.audit_append = audit_append,
	.audit_query = audit_query,
	.audit_prune = audit_prune,
};

static int exec_sql(struct store_sqlite *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, what);
	return 0;
}

static int user_version(struct store_sqlite *s, int *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &stmt,
			       NULL) != SQLITE_OK)
		return store_fail(s, "reading the schema version");
	rc = sqlite3_step(stmt);
	*out = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : store_fail(s, "reading the schema version");
}

/* Applies migration v (to version v + 1) in one transaction. */
static int migrate_step(struct store_sqlite *s, int v)
{
	char sql[64];
	int rc;

	rc = exec_sql(s, "BEGIN IMMEDIATE", "migrating the schema");
	if (rc == 0)
		rc = exec_sql(s, MIGRATIONS[v], "migrating the schema");
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
	if (rc == 0)
		rc = exec_sql(s, sql, "migrating the schema");
	if (rc == 0)
		rc = exec_sql(s, "COMMIT", "migrating the schema");
	if (rc < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int schema_migrate(struct store_sqlite *s)
{
	int v = 0, rc;

	rc = user_version(s, &v);
	if (rc < 0)
		return rc;
	if (v > SCHEMA_VERSION) {
		proto_err_set(s->why, sizeof s->why,
			      "relay.db has schema version %d, newer than this "
			      "relay's %d; refusing to touch it", v,
			      SCHEMA_VERSION);
		return -PROTO_E_INTERNAL;
	}
	for (; v < SCHEMA_VERSION && rc == 0; v++)
		rc = migrate_step(s, v);
	return rc;
}

/* WAL + NORMAL: see the file comment. */
static int store_tune(struct store_sqlite *s)
{
	sqlite3_stmt *stmt = NULL;
	const char *mode;
	int rc = 0;

	if (sqlite3_busy_timeout(s->db, STORE_BUSY_MS) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW)
		rc = store_fail(s, "setting the journal mode");
	mode = rc == 0 ? col_str(stmt, 0) : NULL;
	if (rc == 0 && (!mode || strcmp(mode, "wal") != 0)) {
		proto_err_set(s->why, sizeof s->why,
			      "relay.db: the file system refused WAL mode (%s)",
			      mode ? mode : "?");
		rc = -PROTO_E_INTERNAL;
	}
	sqlite3_finalize(stmt);
	if (rc == 0)
		rc = exec_sql(s, "PRAGMA synchronous = NORMAL",
			      "setting synchronous");
	return rc;
}

static int stmts_prepare(struct store_sqlite *s)
{
	for (int i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, SQL[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
				       NULL) != SQLITE_OK)
			return store_fail(s, "preparing statements");
	}
	return 0;
}

/* Creates the file first so that it (and the -wal and -shm files SQLite
 * gives the same mode) is private: it holds owner keys. */
static int db_file_create(const char *path, char *why, size_t why_len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		proto_err_set(why, why_len, "%s: %s", path, strerror(errno));
		return -PROTO_E_INTERNAL;
	}
	close(fd);
	return 0;
}

static int store_setup(struct store_sqlite *s, const char *path)
{
	int rc;

	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return store_fail(s, "opening");
	rc = store_tune(s);
	if (rc == 0)
		rc = schema_migrate(s);
	if (rc == 0)
		rc = stmts_prepare(s);
	return rc;
}

int relay_store_sqlite_open(const char *data_dir, struct relay_store **out,
			    char *why, size_t why_len)
{
	struct store_sqlite *s;
	char path[PATH_MAX];
	int n, rc;

	*out = NULL;
	n = snprintf(path, sizeof path, "%s/relay.db", data_dir ? data_dir : "");
	if (!data_dir || n < 0 || (size_t)n >= sizeof path) {
		proto_err_set(why, why_len, "data directory path too long");
		return -PROTO_E_INTERNAL;
	}
	rc = db_file_create(path, why, why_len);
	if (rc < 0)
		return rc;
	s = relay_xcalloc(1, sizeof *s);
	s->base.ops = &SQLITE_OPS;
	rc = store_setup(s, path);
	if (rc < 0) {
		proto_err_set(why, why_len, "%s", s->why);
		store_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
