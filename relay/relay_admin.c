/*
 * relay_admin: routing and rendering for the admin API; see the header.
 */
#include "relay/relay_admin.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"
#include "relay/relay_assist.h"
#include "relay/relay_cluster.h"
#include "relay/relay_guard.h"
#include "relay/relay_session.h"

#define RELAY_AUDIT_DEFAULT 50
#define RELAY_ASSIST_PAGE_DEFAULT 100
#define RELAY_PAGE_MAX 1000

/* An answer that cannot be built is logged, counted and answered as
 * internal, never as an empty success. */
static char *relay_admin_dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (s)
		return s;
	relay_log_build_failed("admin-api");
	return relay_xstrdup("{\"error\":{\"code\":\"internal\",\"message\":"
			     "\"The relay could not complete the request. Try again.\"}}");
}

unsigned int relay_admin_refuse(int err, const char *detail, char **out)
{
	const struct proto_err_info *info = proto_err_info(err);

	*out = relay_admin_dump(json_pack("{s:{s:s, s:s}}", "error", "code",
		info->code, "message", detail ? detail : info->message));
	return (unsigned int)info->http_status;
}

static unsigned int relay_admin_ok(json_t *j, char **out)
{
	*out = relay_admin_dump(j);
	return 200;
}

/* "Bearer TOKEN" with an admin token; 0 and the admin's claims, or the
 * refusal with a sentence in why when there is a more precise one. */
static int relay_admin_auth(struct relay *r, const char *auth,
			    struct proto_claims *who, char *why, size_t why_len)
{
	int err;

	why[0] = '\0';
	if (strncmp(auth, "Bearer ", 7) != 0)
		return -PROTO_E_UNAUTHORIZED;
	err = proto_token_verify(r->secret, sizeof(r->secret), auth + 7,
				 (uint64_t)relay_clock_s(r), who);
	if (!err)
		err = relay_guard_token_times(r, who, why, why_len);
	if (err)
		return err;
	if (who->role == PROTO_ROLE_ADMIN)
		return 0;
	snprintf(why, why_len, "The admin API needs an administrator's token.");
	return -PROTO_E_NO_PERMISSION;
}

/* Parses a request body that must be a JSON object. */
static json_t *relay_admin_body(const struct relay_admin_req *req)
{
	json_t *j;

	if (!req->body)
		return json_object();
	j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* ---- desktops ------------------------------------------------------ */

static void relay_admin_desktop(const char *key, void *val, void *arg)
{
	json_t *j = relay_session_json(val);

	(void)key;
	json_object_del(j, "owner_key");
	json_array_append_new(arg, j);
}

struct relay_admin_mine {
	const char *user; /* NULL: every desktop, with no owner key */
	json_t *a;
};

/* One desktop of the cluster's list (relay_cluster.h). */
static int relay_admin_cluster_one(const char *desktop, const char *text,
				   void *arg)
{
	struct relay_admin_mine *m = arg;
	json_t *j = json_loads(text, 0, NULL);
	const char *user = json_string_value(json_object_get(j, "user"));

	(void)desktop;
	if (!json_is_object(j) || (m->user && (!user || strcmp(user, m->user)))) {
		json_decref(j);
		return 0;
	}
	if (!m->user)
		json_object_del(j, "owner_key");
	json_array_append_new(m->a, j);
	return 0;
}

static unsigned int relay_admin_desktops(struct relay *r, char **out)
{
	struct relay_admin_mine all = { .a = json_array() };
	int err = 0;

	if (relay_cluster_on(r))
		err = relay_cluster_each_desktop(r, relay_admin_cluster_one,
						 &all);
	else
		relay_map_each(&r->by_desktop, relay_admin_desktop, all.a);
	if (err) {
		json_decref(all.a);
		return relay_admin_refuse(err, NULL, out);
	}
	return relay_admin_ok(json_pack("{s:o}", "desktops", all.a), out);
}

/* ---- assistance ---------------------------------------------------- */

/* expires_in: seconds left on the relay's clock (which tests move). */
static json_t *relay_admin_assist_json(const struct relay *r,
				       const struct relay_store_assist *a)
{
	int64_t left = a->expires_at - relay_clock_s(r);

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
		"id", a->id, "desktop", a->desktop, "user", a->user,
		"state", relay_assist_state_name(a->state),
		"initiator", a->initiator, "admin", a->admin,
		"requested_at", (json_int_t)a->requested_at,
		"expires_at", (json_int_t)a->expires_at,
		"expires_in", (json_int_t)(left > 0 ? left : 0));
}

struct relay_admin_page {
	const struct relay *r;
	json_t *list;
	unsigned left; /* how many more fit in the page */
	bool more;     /* a row beyond the page exists */
};

static int relay_admin_assist_one(const struct relay_store_assist *a, void *arg)
{
	struct relay_admin_page *p = arg;

	if (p->left == 0) {
		p->more = true;
		return 1;
	}
	p->left--;
	json_array_append_new(p->list, relay_admin_assist_json(p->r, a));
	return 0;
}

/* ?state=open (the default), all, or one state's name. */
static int relay_admin_assist_mask(const char *state, unsigned *mask)
{
	enum relay_assist_state one;

	if (!state[0] || !strcmp(state, "open"))
		*mask = RELAY_ASSIST_OPEN;
	else if (!strcmp(state, "all"))
		*mask = RELAY_ASSIST_ALL;
	else if (relay_assist_state_parse(state, &one) == 0)
		*mask = RELAY_ASSIST_BIT(one);
	else
		return -PROTO_E_MALFORMED;
	return 0;
}

/* GET /assist[?state=S][&limit=N][&after=ID]: one page, oldest first. */
static unsigned int relay_admin_assist_list(struct relay *r,
					    const struct relay_admin_req *req,
					    char **out)
{
	long limit = req->limit < 0 ? RELAY_ASSIST_PAGE_DEFAULT : req->limit;
	struct relay_admin_page p;
	unsigned mask;
	json_t *last;
	int err;

	if (relay_admin_assist_mask(req->state, &mask))
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"state must be open, all, or one state's name.", out);
	if (limit < 1 || limit > RELAY_PAGE_MAX)
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"limit must be 1-1000.", out);
	p = (struct relay_admin_page){ .r = r, .list = json_array(),
				       .left = (unsigned)limit };
	/* One row past the page says whether there is a next one. */
	err = r->store->ops->assist_list(r->store, mask, req->after,
					 (unsigned)limit + 1,
					 relay_admin_assist_one, &p);
	if (err < 0) {
		json_decref(p.list);
		return relay_admin_refuse(err, err == -PROTO_E_NOT_FOUND ?
			"after names no stored request." : NULL, out);
	}
	last = json_array_get(p.list, json_array_size(p.list) - 1);
	return relay_admin_ok(json_pack("{s:o, s:o, s:I}", "requests", p.list,
		"next", p.more ? json_incref(json_object_get(last, "id")) :
				 json_null(), "now", (json_int_t)relay_clock_s(r)),
		out);
}

static unsigned int relay_admin_assist_done(const struct relay *r, int err,
					    const struct relay_store_assist *a,
					    char **out)
{
	if (err)
		return relay_admin_refuse(err, err == -PROTO_E_BUSY ?
					 PROTO_BUSY_MESSAGE : NULL, out);
	return relay_admin_ok(relay_admin_assist_json(r, a), out);
}

static unsigned int relay_admin_assist_start(struct relay *r,
					     const struct relay_admin_req *req,
					     const struct proto_claims *who,
					     char **out)
{
	struct relay_store_assist a;
	json_t *body = relay_admin_body(req);
	const char *desktop = body ? json_string_value(json_object_get(body, "desktop")) : NULL;
	unsigned int status;

	if (!desktop) {
		json_decref(body);
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"The body must be a JSON object with a string \"desktop\".", out);
	}
	status = relay_admin_assist_done(
		r, relay_assist_start(r, desktop, who->user, &a), &a, out);
	json_decref(body);
	return status == 200 ? 201 : status;
}

/* POST /assist/ID/accept|decline|end */
static unsigned int relay_admin_assist_action(struct relay *r, const char *rest,
					      const struct proto_claims *who,
					      char **out)
{
	const char *slash = strchr(rest, '/');
	struct relay_store_assist a;
	char id[RELAY_STORE_ID_MAX + 1];
	size_t n = slash ? (size_t)(slash - rest) : 0;
	int err;

	if (!slash || n == 0 || n > RELAY_STORE_ID_MAX)
		return relay_admin_refuse(-PROTO_E_NOT_FOUND, NULL, out);
	memcpy(id, rest, n);
	id[n] = '\0';
	if (!strcmp(slash, "/accept"))
		err = relay_assist_accept(r, id, who->user, &a);
	else if (!strcmp(slash, "/decline"))
		err = relay_assist_decline(r, id, who->user, &a);
	else if (!strcmp(slash, "/end"))
		err = relay_assist_end(r, id, who->user, &a);
	else
		err = -PROTO_E_NOT_FOUND;
	return relay_admin_assist_done(r, err, &a, out);
}

/* ---- permissions --------------------------------------------------- */

static unsigned int relay_admin_policy_json(const char *user, bool help,
					    bool collab, char **out)
{
	return relay_admin_ok(json_pack("{s:s, s:b, s:b}", "user", user,
					"help", help, "collab", collab), out);
}

static unsigned int relay_admin_policy(struct relay *r,
				       const struct relay_admin_req *req,
				       const char *user,
				       const struct proto_claims *who,
				       char **out)
{
	bool help = false, collab = false, had_collab;
	json_t *body, *jh, *jc;
	char detail[160];
	int err;

	if (!proto_token_user_valid(user))
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"A user id is 1-64 characters from A-Z a-z 0-9 . _ @ -.",
			out);
	err = r->store->ops->perm_get(r->store, user, &help, &collab);
	if (err)
		return relay_admin_refuse(err, NULL, out);
	if (req->method == RELAY_HTTP_GET)
		return relay_admin_policy_json(user, help, collab, out);
	had_collab = collab;
	body = relay_admin_body(req);
	jh = body ? json_object_get(body, "help") : NULL;
	jc = body ? json_object_get(body, "collab") : NULL;
	if (!body || (jh && !json_is_boolean(jh)) || (jc && !json_is_boolean(jc))) {
		json_decref(body);
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"The body must be a JSON object with boolean \"help\" and/or \"collab\".",
			out);
	}
	if (jh)
		help = json_is_true(jh);
	if (jc)
		collab = json_is_true(jc);
	json_decref(body);
	snprintf(detail, sizeof(detail), "user=%s help=%s collab=%s", user,
		 help ? "on" : "off", collab ? "on" : "off");
	/* The permission and its audit event are stored together or not. */
	err = relay_audit_begin(r);
	if (!err) {
		r->store->ops->perm_set(r->store, user, help, collab);
		relay_audit(r, who->user, "policy-set", "", detail);
		err = relay_audit_commit(r);
	}
	if (err) {
		if (err == -PROTO_E_STORAGE || err == -PROTO_E_INTERNAL)
			relay_log("store-error", "why=%s",
				  r->store->ops->why(r->store));
		return relay_admin_refuse(err, NULL, out);
	}
	if (had_collab && !collab) {
		relay_session_revoke_collab(r, user);
		/* The user's guests and desktop may be on other nodes. */
		if (relay_cluster_on(r))
			relay_cluster_publish(r, json_pack("{s:s, s:s}", "op",
							   "revoke", "user", user));
	}
	return relay_admin_policy_json(user, help, collab, out);
}

/* ---- audit and clock ----------------------------------------------- */

static int relay_admin_event(const struct relay_store_event *e, void *arg)
{
	json_array_append_new(arg, json_pack("{s:I, s:s, s:s, s:s, s:s}",
		"time", (json_int_t)e->time, "actor", e->actor, "event",
		e->event, "desktop", e->desktop, "detail", e->detail));
	return 0;
}

static unsigned int relay_admin_audit(struct relay *r,
				      const struct relay_admin_req *req,
				      char **out)
{
	long limit = req->limit < 0 ? RELAY_AUDIT_DEFAULT : req->limit;
	json_t *a;
	int err;

	if (limit < 1 || limit > RELAY_PAGE_MAX)
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"limit must be 1-1000.", out);
	a = json_array();
	err = r->store->ops->audit_query(r->store, req->since < 0 ? 0 : req->since,
					 (unsigned)limit, relay_admin_event, a);
	if (err) {
		json_decref(a);
		return relay_admin_refuse(err, NULL, out);
	}
	return relay_admin_ok(json_pack("{s:o}", "events", a), out);
}

/* PUT /clock {"advance_s": N}: moves the relay's clock forward, for
 * tests of expiry; only with --test-clock. */
static unsigned int relay_admin_clock(struct relay *r,
				      const struct relay_admin_req *req,
				      char **out)
{
	json_t *body = relay_admin_body(req);
	json_t *adv = body ? json_object_get(body, "advance_s") : NULL;

	if (!json_is_integer(adv) || json_integer_value(adv) < 0) {
		json_decref(body);
		return relay_admin_refuse(-PROTO_E_MALFORMED,
			"The body must be {\"advance_s\": N} with N >= 0.", out);
	}
	r->clock_offset_s += json_integer_value(adv);
	json_decref(body);
	relay_assist_tick(r);
	return relay_admin_ok(json_pack("{s:I}", "now",
					(json_int_t)relay_clock_s(r)), out);
}

/* ---- the signed-in user's own desktops ---------------------------- */

/* The owner key goes to the desktop's own user only: it is what opens
 * the desktop's client (relay_owner.h). */
static void relay_admin_mine_one(const char *key, void *val, void *arg)
{
	const struct relay_session *s = val;
	struct relay_admin_mine *m = arg;
	json_t *j;

	(void)key;
	if (strcmp(s->user, m->user) != 0)
		return;
	j = relay_session_json(s);
	json_object_del(j, "user");
	json_object_del(j, "owner_viewing");
	json_array_append_new(m->a, j);
}

/* GET /api/me/desktops: any signed-in user, not only administrators. */
static unsigned int relay_admin_mine(struct relay *r, const char *auth,
				     char **out)
{
	struct proto_claims who;
	struct relay_admin_mine m;
	char why[160] = "";
	int err = strncmp(auth, "Bearer ", 7) ? -PROTO_E_UNAUTHORIZED :
		proto_token_verify(r->secret, sizeof(r->secret), auth + 7,
				   (uint64_t)relay_clock_s(r), &who);

	if (!err)
		err = relay_guard_token_times(r, &who, why, sizeof(why));
	if (err)
		return relay_admin_refuse(err, why[0] ? why : NULL, out);
	m.user = who.user;
	m.a = json_array();
	if (relay_cluster_on(r))
		err = relay_cluster_each_desktop(r, relay_admin_cluster_one, &m);
	else
		relay_map_each(&r->by_desktop, relay_admin_mine_one, &m);
	if (err) {
		json_decref(m.a);
		return relay_admin_refuse(err, NULL, out);
	}
	return relay_admin_ok(json_pack("{s:s, s:o}", "user", who.user,
					"desktops", m.a), out);
}

unsigned int relay_admin_events_auth(struct relay *r, const char *auth,
				     char **out)
{
	struct proto_claims who;
	char why[160];
	int err = relay_admin_auth(r, auth, &who, why, sizeof(why));

	if (err)
		return relay_admin_refuse(err, why[0] ? why : NULL, out);
	return relay_admin_ok(json_object(), out);
}

/* ---- routing ------------------------------------------------------- */

unsigned int relay_admin_handle(struct relay *r,
				const struct relay_admin_req *req, char **out)
{
	const char *p = req->path;
	enum relay_admin_method m = req->method;
	struct proto_claims who;
	char why[160];
	int err;

	if (!strcmp(p, "/me/desktops") && m == RELAY_HTTP_GET)
		return relay_admin_mine(r, req->auth, out);
	err = relay_admin_auth(r, req->auth, &who, why, sizeof(why));
	if (err)
		return relay_admin_refuse(err, why[0] ? why : NULL, out);
	if (!strcmp(p, "/desktops") && m == RELAY_HTTP_GET)
		return relay_admin_desktops(r, out);
	if (!strcmp(p, "/assist") && m == RELAY_HTTP_GET)
		return relay_admin_assist_list(r, req, out);
	if (!strcmp(p, "/assist") && m == RELAY_HTTP_POST)
		return relay_admin_assist_start(r, req, &who, out);
	if (!strncmp(p, "/assist/", 8) && m == RELAY_HTTP_POST)
		return relay_admin_assist_action(r, p + 8, &who, out);
	if (!strncmp(p, "/policy/", 8) &&
	    (m == RELAY_HTTP_GET || m == RELAY_HTTP_PUT))
		return relay_admin_policy(r, req, p + 8, &who, out);
	if (!strcmp(p, "/audit") && m == RELAY_HTTP_GET)
		return relay_admin_audit(r, req, out);
	if (!strcmp(p, "/clock") && m == RELAY_HTTP_PUT && r->cfg.test_clock)
		return relay_admin_clock(r, req, out);
	return relay_admin_refuse(-PROTO_E_NOT_FOUND,
				 "No such endpoint or method.", out);
}
