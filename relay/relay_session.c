/*
 * relay_session: collaboration rules, the keyframe cache and fan-out.
 *
 * The rules, each one a product requirement (docs/protocol.md):
 *  - a host passes the version gates or is refused;
 *  - the owner views with the owner key the host was given;
 *  - one collaboration code per session, valid until discarded or ended;
 *  - exactly one guest: everyone else is refused with the busy message;
 *  - input reaches the host only from a viewer holding control, in order.
 * Because everything runs on one thread, two joins racing for the guest
 * slot are serialised by the event loop: the first one processed wins.
 */
#include "relay/relay_session.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_version.h"
#include "relay/relay_alloc.h"
#include "relay/relay_cluster.h"
#include "relay/relay_conn.h"
#include "relay/relay_guard.h"
#include "relay/relay_events.h"
#include "relay/relay_owner.h"

/* Input waiting for the host beyond this pauses the senders. */
#define RELAY_HOST_INPUT_CAP (1u << 20)

void relay_session_notify(struct relay_conn *c, const char *event,
			 const char *message, const char *name)
{
	if (c)
		relay_conn_send_json(c, relay_owner_notify_json(event, message,
								name));
}

static json_t *relay_stream_video_json(const struct relay_session *s)
{
	if (!s->video_codec)
		return NULL;
	return json_pack("{s:s, s:s, s:i, s:i}",
			 "codec", proto_codec_name(s->video_codec),
			 "codec_string", s->codec_string,
			 "width", s->width, "height", s->height);
}

static json_t *relay_stream_audio_json(const struct relay_session *s)
{
	if (!s->audio_codec)
		return NULL;
	return json_pack("{s:s, s:i, s:i}", "codec",
			 proto_codec_name(s->audio_codec), "sample_rate", 48000,
			 "channels", s->audio_channels);
}

static void relay_send_stream_info(struct relay_session *s,
				   struct relay_conn *v)
{
	if (v && (s->video_codec || s->audio_codec))
		relay_conn_send_json(v, proto_ctrl_build(PROTO_MSG_STREAM,
			"{s:o*, s:o*}", "video", relay_stream_video_json(s),
			"audio", relay_stream_audio_json(s)));
}

static bool relay_desktop_valid(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > RELAY_DESKTOP_MAX)
		return false;
	for (; *d; d++)
		if (!(('a' <= *d && *d <= 'z') || ('A' <= *d && *d <= 'Z') ||
		      ('0' <= *d && *d <= '9') || *d == '.' || *d == '_' ||
		      *d == '-'))
			return false;
	return true;
}

/* A name a peer chose, made safe to show and to put in JSON (cut at a
 * character boundary, controls and bidi overrides dropped). */
static void relay_copy_name(char *dst, const char *src)
{
	relay_guard_name(dst, RELAY_NAME_MAX + 1, src);
}

/* Tells the desktop's side about its collaborator: the name the guest
 * chose and, beside it, the user id the guest signed in as. */
static void relay_notify_guest(struct relay_session *s, const char *event,
			       const char *message, const struct relay_conn *g)
{
	relay_owner_tell(s, relay_owner_guest_json(event, message, g));
}

/* ---- keyframe cache ------------------------------------------------ */

static void relay_gop_clear(struct relay_session *s)
{
	for (uint32_t i = 0; i < s->gop_count; i++)
		relay_frame_unref(s->gop[i]);
	s->gop_count = 0;
	s->gop_bytes = 0;
	s->gop_valid = false;
}

/* What a cached frame really costs: its allocation (header, LWS_PRE
 * headroom, payload, malloc's rounding) and its slot in the array. */
static size_t relay_gop_cost(const struct relay_frame *f)
{
	size_t alloc = sizeof(*f) + LWS_PRE + f->cap;

	return ((alloc + 15) & ~(size_t)15) + 16 + sizeof(f);
}

static void relay_gop_append(struct relay_session *s, struct relay_frame *f)
{
	if (s->gop_count == s->gop_cap) {
		s->gop_cap = s->gop_cap ? s->gop_cap * 2 : 64;
		s->gop = relay_xrealloc(s->gop, s->gop_cap * sizeof(*s->gop));
	}
	s->gop[s->gop_count++] = relay_frame_ref(f);
	s->gop_bytes += relay_gop_cost(f);
}

/* Keeps the run since the last keyframe of video stream 0, bounded by
 * gop_bytes of real memory and gop_frames messages: past a bound the
 * run is useless (it cannot be replayed whole), so it is dropped until
 * the next keyframe.  The count matters for codecs the relay cannot
 * inspect (AV1, codec 0), whose keyframe flag it has to trust: tiny
 * frames after one flagged keyframe cost far more than their bytes. */
static void relay_gop_update(struct relay_session *s, struct relay_frame *f)
{
	if (f->kind != PROTO_KIND_VIDEO || f->stream != 0)
		return;
	if ((f->flags & PROTO_F_CONFIG) && !(f->flags & PROTO_F_KEYFRAME)) {
		relay_frame_unref(s->config);
		s->config = relay_frame_ref(f);
		return;
	}
	if (f->flags & PROTO_F_KEYFRAME) {
		relay_gop_clear(s);
		s->gop_valid = true;
	} else if (!s->gop_valid) {
		return;
	}
	if (s->gop_bytes + relay_gop_cost(f) > s->relay->cfg.gop_bytes ||
	    s->gop_count >= s->relay->cfg.gop_frames) {
		relay_gop_clear(s);
		return;
	}
	relay_gop_append(s, f);
}

/* Starts a joining viewer at a decodable point: the cached config and
 * run when there is one, else the next keyframe (asked for now). */
static void relay_gop_replay(struct relay_session *s, struct relay_conn *v)
{
	if (!s->gop_valid) {
		relay_conn_wait_keyframe(v);
		relay_session_request_keyframe(s, "join");
		return;
	}
	if (s->config)
		relay_conn_send_always(v, s->config);
	for (uint32_t i = 0; i < s->gop_count; i++)
		relay_conn_send_always(v, s->gop[i]);
}

/* ---- session lifetime ---------------------------------------------- */

static void relay_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A new session; owner_key NULL draws a fresh one. */
static struct relay_session *relay_session_new(struct relay *r,
					       const char *desktop,
					       const char *owner_key)
{
	struct relay_session *s = relay_xcalloc(1, sizeof(*s));
	unsigned char key[RELAY_OWNER_KEY_LEN / 2];

	if (owner_key) {
		snprintf(s->owner_key, sizeof(s->owner_key), "%s", owner_key);
	} else if (RAND_bytes(key, sizeof(key)) == 1) {
		relay_hex(key, sizeof(key), s->owner_key);
	} else {
		free(s);
		return NULL;
	}
	s->relay = r;
	codec_video_inspector_init(&s->vinspect);
	snprintf(s->desktop, sizeof(s->desktop), "%s", desktop);
	relay_map_put(&r->by_desktop, s->desktop, s);
	relay_map_put(&r->by_owner, s->owner_key, s);
	r->stats.sessions_created++;
	return s;
}

/* Forgets the code in memory only: the stored one stays for the next
 * start (a session freed at shutdown keeps its collaboration). */
static void relay_session_drop_code(struct relay_session *s)
{
	if (!s->code[0])
		return;
	relay_map_del(&s->relay->by_code, s->code);
	s->code[0] = '\0';
}

/* Stores (code set) or deletes (code "") the session's collaboration
 * with its audit event (actor did it), as one change: a crash or a full
 * disk leaves both or neither, and the caller refuses the action on
 * failure. */
static int relay_session_store(struct relay_session *s, const char *actor,
			       const char *event, const char *detail)
{
	struct relay *r = s->relay;
	struct relay_store *st = r->store;
	int err = relay_audit_begin(r);

	if (!err) {
		/* In a cluster the owner key must outlive the code: the
		 * desktop's next node gives the host the same key. */
		if (s->code[0] || relay_cluster_on(r))
			st->ops->collab_put(st, s->desktop,
					    s->code[0] ? s->code : NULL,
					    s->owner_key, s->user);
		else
			st->ops->collab_del(st, s->desktop);
		relay_audit(r, actor, event, s->desktop, detail);
		err = relay_audit_commit(r);
	}
	if (err)
		relay_log("store-error", "why=%s", st->ops->why(st));
	return err;
}

/* The same, for a change connection c made. */
static int relay_session_persist(struct relay_session *s,
				 struct relay_conn *c, const char *event)
{
	return relay_session_store(s, c->who.user, event, relay_owner_via(c));
}

struct relay_restore {
	struct relay *r;
	int count;
};

static int relay_restore_one(const struct relay_store_collab *c, void *arg)
{
	struct relay_restore *x = arg;
	char canon[PROTO_CODE_CANON_LEN];
	struct relay_session *s;

	if (!c->code || proto_code_normalize(c->code, canon) != 0 ||
	    !relay_desktop_valid(c->desktop) ||
	    strlen(c->owner_key) != RELAY_OWNER_KEY_LEN)
		return 0; /* nothing to bring back */
	s = relay_session_new(x->r, c->desktop, c->owner_key);
	if (!s)
		return -PROTO_E_INTERNAL;
	snprintf(s->code, sizeof(s->code), "%s", canon);
	snprintf(s->user, sizeof(s->user), "%s", c->user ? c->user : "");
	relay_map_put(&x->r->by_code, s->code, s);
	x->count++;
	return 0;
}

int relay_session_restore(struct relay *r)
{
	struct relay_restore x = { .r = r };
	int err = r->store->ops->collab_load_all(r->store, relay_restore_one, &x);

	if (err)
		return err;
	relay_log("restore", "collaborations=%d", x.count);
	return 0;
}

static void relay_session_free(struct relay_session *s)
{
	struct relay *r = s->relay;

	relay_session_drop_code(s);
	relay_map_del(&r->by_desktop, s->desktop);
	relay_map_del(&r->by_owner, s->owner_key);
	relay_gop_clear(s);
	free(s->gop);
	relay_frame_unref(s->config);
	free(s);
	r->trim_pending = true;
}

/* A session lives while a host, a viewer or a code holds it. */
static void relay_session_maybe_free(struct relay_session *s)
{
	/* In a cluster the code lives in the store, found from any node;
	 * here a session lives only while someone is connected to it. */
	if (!s->host && !s->owner && !s->guest &&
	    (!s->code[0] || relay_cluster_on(s->relay)))
		relay_session_free(s);
}

static void relay_free_one(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	relay_session_free(val);
}

void relay_session_free_all(struct relay *r)
{
	/* relay_session_free edits the map, so collect first. */
	struct relay_map all = r->by_desktop;

	relay_map_init(&r->by_desktop);
	relay_map_each(&all, relay_free_one, NULL);
	relay_map_free(&all);
}

/* ---- the cluster (docs/cluster.md) -------------------------------- */

/* How often a hello or join waiting for a stale lease looks again. */
#define RELAY_ROUTE_RETRY_US (100 * 1000)

/* A stored collaboration, copied out of the store's callback. */
struct relay_row {
	char desktop[RELAY_DESKTOP_MAX + 1];
	char code[PROTO_CODE_CANON_LEN];
	char owner_key[RELAY_OWNER_KEY_LEN + 1];
	char user[PROTO_TOKEN_ID_MAX + 1];
};

static int relay_row_copy(const struct relay_store_collab *c, void *arg)
{
	struct relay_row *row = arg;

	snprintf(row->desktop, sizeof(row->desktop), "%s", c->desktop);
	snprintf(row->code, sizeof(row->code), "%s", c->code ? c->code : "");
	snprintf(row->owner_key, sizeof(row->owner_key), "%s", c->owner_key);
	snprintf(row->user, sizeof(row->user), "%s", c->user ? c->user : "");
	return 0;
}

static int relay_session_find(struct relay *r, enum relay_collab_by by,
			      const char *value, struct relay_row *row)
{
	int err = r->store->ops->collab_find(r->store, by, value,
					     relay_row_copy, row);

	if (err && err != -PROTO_E_NOT_FOUND)
		relay_log("store-error", "why=%s", r->store->ops->why(r->store));
	return err;
}

/* 0 if no desktop holds code yet (in a cluster, any node's desktop),
 * -PROTO_E_STATE if one does, or the store's error. */
static int relay_session_code_free(struct relay *r, const char *code)
{
	struct relay_row row;
	int err;

	if (!relay_cluster_on(r))
		return 0;
	err = relay_session_find(r, RELAY_COLLAB_BY_CODE, code, &row);
	return err == -PROTO_E_NOT_FOUND ? 0 : err ? err : -PROTO_E_STATE;
}

/* The desktop as the store keeps it, brought up on this node. */
static struct relay_session *relay_session_from_row(struct relay *r,
						    const struct relay_row *row)
{
	char canon[PROTO_CODE_CANON_LEN];
	struct relay_session *s;

	if (!relay_desktop_valid(row->desktop) ||
	    strlen(row->owner_key) != RELAY_OWNER_KEY_LEN)
		return NULL;
	s = relay_session_new(r, row->desktop, row->owner_key);
	if (!s)
		return NULL;
	snprintf(s->user, sizeof(s->user), "%s", row->user);
	if (row->code[0] && proto_code_normalize(row->code, canon) == 0) {
		snprintf(s->code, sizeof(s->code), "%s", canon);
		relay_map_put(&r->by_code, s->code, s);
	}
	return s;
}

/* The session of a desktop whose lease this node just took: its stored
 * code and owner key, or a new key stored before the host is told it, so
 * the desktop's next node gives the same one. */
static int relay_session_adopt(struct relay *r, const char *desktop,
			       const char *user, struct relay_session **out)
{
	struct relay_row row;
	int err = relay_session_find(r, RELAY_COLLAB_BY_DESKTOP, desktop, &row);

	*out = NULL;
	if (!err) {
		*out = relay_session_from_row(r, &row);
		return *out ? 0 : -PROTO_E_INTERNAL;
	}
	if (err != -PROTO_E_NOT_FOUND)
		return err;
	*out = relay_session_new(r, desktop, NULL);
	if (!*out)
		return -PROTO_E_INTERNAL;
	err = r->store->ops->collab_put(r->store, desktop, NULL,
					(*out)->owner_key, user);
	if (err) {
		relay_log("store-error", "why=%s", r->store->ops->why(r->store));
		relay_session_free(*out);
		*out = NULL;
	}
	return err;
}

/* A session kept here without its host (viewers waiting) whose desktop
 * this node just took: the store's code and owner key replace what it
 * had, which another node may have changed meanwhile. */
static int relay_session_refresh(struct relay_session *s)
{
	struct relay *r = s->relay;
	char canon[PROTO_CODE_CANON_LEN];
	struct relay_row row;
	int err = relay_session_find(r, RELAY_COLLAB_BY_DESKTOP, s->desktop,
				     &row);

	if (err == -PROTO_E_NOT_FOUND)
		return 0; /* nothing stored: what it has stands */
	if (err)
		return err;
	relay_session_drop_code(s);
	if (row.code[0] && proto_code_normalize(row.code, canon) == 0) {
		snprintf(s->code, sizeof(s->code), "%s", canon);
		relay_map_put(&r->by_code, s->code, s);
	}
	if (strlen(row.owner_key) == RELAY_OWNER_KEY_LEN &&
	    strcmp(row.owner_key, s->owner_key) != 0) {
		relay_map_del(&r->by_owner, s->owner_key);
		snprintf(s->owner_key, sizeof(s->owner_key), "%s",
			 row.owner_key);
		relay_map_put(&r->by_owner, s->owner_key, s);
	}
	return 0;
}

json_t *relay_session_json(const struct relay_session *s)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:b, s:o, s:s, s:b, s:s}",
		"desktop", s->desktop, "name", s->name, "user", s->user,
		"online", s->host != NULL, "owner_viewing", s->owner != NULL,
		"guest", s->guest ? json_string(s->guest->name) : json_null(),
		"guest_kind",
		!s->guest ? "" : s->assist_id[0] ? "assist" : "collab",
		"collaboration", s->code[0] != '\0', "owner_key", s->owner_key);
}

/* A desktop this node holds changed: its entry in the cluster's list. */
static void relay_session_changed(struct relay_session *s)
{
	struct relay *r = s->relay;
	json_t *j;
	char *text;

	if (!relay_cluster_holds(r, s->desktop))
		return;
	j = relay_session_json(s);
	json_object_set_new(j, "node", json_string(relay_cluster_node_id(r)));
	json_object_set_new(j, "url", json_string(relay_cluster_node_url(r)));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text)
		relay_cluster_describe(r, s->desktop, text);
	else
		relay_log_build_failed("desktop entry");
	free(text);
}

/* Whether a host on this node is waiting for desktop's lease. */
static bool relay_session_claimed_here(const struct relay *r,
				       const char *desktop)
{
	for (const struct relay_conn *c = r->conns; c; c = c->next)
		if (c->is_host && c->deferred && !strcmp(c->claiming, desktop))
			return true;
	return false;
}

/* Whether c's hello (claim: take the lease) or join may go on here:
 * true if this node holds the desktop, or (locate) no node does; else c
 * was redirected to the node that does, or waits for a lease running
 * out on a node that died, or was refused. */
static bool relay_session_route(struct relay_conn *c, const char *desktop,
				bool claim)
{
	struct relay *r = c->relay;
	enum relay_where where;
	char url[RELAY_NODE_URL_MAX + 1];
	int err = !relay_cluster_redis_up(r) ? -PROTO_E_UNAVAILABLE :
		  claim ? relay_cluster_claim(r, desktop, &where, url,
					      sizeof(url)) :
			  relay_cluster_locate(r, desktop, &where, url,
					       sizeof(url));

	c->claiming[0] = '\0';
	if (err) {
		relay_conn_refuse(c, err, NULL);
		return false;
	}
	switch (where) {
	case RELAY_WHERE_HERE:
		return true;
	case RELAY_WHERE_NOWHERE:
		/* A collaborator whose desktop's host is waiting here for its
		 * lease (a failover under way) waits with it. */
		if (claim || !relay_session_claimed_here(r, desktop))
			return true;
		break;
	case RELAY_WHERE_THERE:
		relay_conn_redirect(c, url);
		return false;
	default:
		break;
	}
	if (claim)
		snprintf(c->claiming, sizeof(c->claiming), "%s", desktop);
	if (relay_conn_deferred_for(c) >
	    (uint64_t)r->cfg.lease_ms * 1000 + 1000000) {
		relay_conn_refuse(c, -PROTO_E_UNAVAILABLE,
			"The relay that served this desktop stopped answering and its hold on it has not run out; try again shortly.");
		return false;
	}
	relay_conn_defer(c, RELAY_ROUTE_RETRY_US);
	return false;
}

/* A join, in a cluster: true if it goes on here, as on one relay (a
 * code, key or request no node knows is refused by that path too).  An
 * owner whose desktop no node holds waits here in a session brought up
 * from the store, returned in *made. */
static bool relay_session_route_join(struct relay_conn *c, const char *code,
				     const char *key, const char *assist,
				     struct relay_session **made)
{
	struct relay *r = c->relay;
	char canon[PROTO_CODE_CANON_LEN];
	struct relay_store_assist a;
	struct relay_session *s = NULL;
	struct relay_row row;
	int err;

	if (!relay_cluster_redis_up(r)) {
		relay_conn_refuse(c, -PROTO_E_UNAVAILABLE, NULL);
		return false;
	}
	if (code) {
		if (proto_code_normalize(code, canon) != 0)
			return true;
		err = relay_session_find(r, RELAY_COLLAB_BY_CODE, canon, &row);
	} else if (key) {
		err = relay_session_find(r, RELAY_COLLAB_BY_OWNER_KEY, key, &row);
	} else {
		if (!assist || strlen(assist) > RELAY_STORE_ID_MAX)
			return true;
		err = r->store->ops->assist_get(r->store, assist, &a);
		if (!err)
			snprintf(row.desktop, sizeof(row.desktop), "%s",
				 a.desktop);
	}
	/* The store is asked even for a desktop held here: a node that
	 * cannot reach Redis admits no one (it could not check rights). */
	if (err == -PROTO_E_NOT_FOUND)
		return true;
	if (err) {
		relay_conn_refuse(c, err == -PROTO_E_STORAGE ?
				  -PROTO_E_UNAVAILABLE : err, NULL);
		return false;
	}
	s = relay_map_get(&r->by_desktop, row.desktop);
	if (s && s->host)
		return true;
	if (!relay_session_route(c, row.desktop, false))
		return false;
	/* No node holds the desktop.  Its owner waits here (and is sent on
	 * when a node takes the desktop); a collaborator cannot join a
	 * desktop that is not connected. */
	if (code && !s) {
		relay_conn_refuse(c, -PROTO_E_OFFLINE, NULL);
		return false;
	}
	if (key && !s && !(*made = relay_session_from_row(r, &row))) {
		relay_conn_refuse(c, -PROTO_E_INTERNAL, NULL);
		return false;
	}
	return true;
}

/* Refuses every connection of s with err (url: redirect there). */
static void relay_session_send_away(struct relay_session *s, int err,
				    const char *detail, const char *url)
{
	struct relay_conn *c[3] = { s->host, s->owner, s->guest };

	/* An assisting administrator sent elsewhere keeps the assistance:
	 * it rejoins the desktop's node with the same id. */
	s->assist_id[0] = '\0';
	for (int i = 0; i < 3; i++) {
		if (!c[i])
			continue;
		if (url)
			relay_conn_redirect(c[i], url);
		else
			relay_conn_refuse(c[i], err, detail);
	}
}

void relay_session_lease_lost(struct relay *r, const char *desktop)
{
	struct relay_session *s = relay_map_get(&r->by_desktop, desktop);

	if (s)
		relay_session_send_away(s, -PROTO_E_UNAVAILABLE,
			"This relay lost its hold on the desktop; connect again to reach the relay that serves it.",
			NULL);
}

void relay_session_moved(struct relay *r, const char *desktop,
			 const char *url)
{
	struct relay_session *s = relay_map_get(&r->by_desktop, desktop);

	/* Viewers waiting for a host that came up on another node go
	 * there.  A host here means two nodes think they serve it: this one
	 * stops (its lease is lost; the lost hook sends everyone away). */
	if (s && !s->host)
		relay_session_send_away(s, 0, NULL, url);
	else if (s && relay_cluster_holds(r, desktop))
		relay_cluster_drop(r, desktop);
}

void relay_session_tell(struct relay *r, const char *desktop, char *json)
{
	struct relay_session *s = relay_map_get(&r->by_desktop, desktop);

	if (s)
		relay_owner_tell(s, json);
	else
		free(json);
}

/* ---- identity ------------------------------------------------------ */

/* Verifies the hello's token into c->who, with the relay's limits on
 * token times and on connections per user; why gets a sentence for the
 * refusals that have one (else it stays ""). */
static int relay_session_auth(struct relay_conn *c, const struct proto_ctrl *m,
			      char *why, size_t why_len)
{
	struct relay *r = c->relay;
	const char *token = proto_ctrl_str(m, "token");
	int err;

	why[0] = '\0';
	if (!token)
		return -PROTO_E_UNAUTHORIZED;
	err = proto_token_verify(r->secret, sizeof(r->secret), token,
				 (uint64_t)relay_clock_s(r), &c->who);
	if (!err)
		err = relay_guard_token_times(r, &c->who, why, why_len);
	if (!err)
		err = relay_guard_user_check(r, c);
	return err;
}

int relay_session_permitted(struct relay *r, const char *user,
			    enum relay_perm perm)
{
	bool help = false, collab = false;
	int err = r->store->ops->perm_get(r->store, user, &help, &collab);

	if (err)
		return err;
	return (perm == RELAY_PERM_HELP ? help : collab) ?
		0 : -PROTO_E_NO_PERMISSION;
}

#define RELAY_COLLAB_PERM_MSG \
	"You need the permission \"User Stream Collaboration\"."

/* ---- host ---------------------------------------------------------- */

/* Makes c the session's host, closing an older host connection. */
static void relay_session_take_host(struct relay_session *s,
				    struct relay_conn *c, const char *name)
{
	if (s->host) {
		struct relay_conn *old = s->host;

		relay_log("host-replaced", "desktop=%s", s->desktop);
		s->host = NULL; /* detach quietly: the desktop is not offline */
		old->session = NULL;
		relay_conn_refuse(old, -PROTO_E_REPLACED, NULL);
	}
	s->host = c;
	c->session = s;
	c->role = RELAY_ROLE_HOST;
	c->state = RELAY_ST_JOINED;
	snprintf(s->user, sizeof(s->user), "%s", c->who.user);
	relay_copy_name(s->name, name);
	relay_copy_name(c->name, s->name);
	/* A new connection may bring another encoder: learn it afresh. */
	relay_gop_clear(s);
	codec_video_inspector_init(&s->vinspect);
	s->video_codec = s->audio_codec = 0;
	s->width = s->height = 0;
	s->codec_string[0] = '\0';
}

void relay_session_host_hello(struct relay_conn *c, const struct proto_ctrl *m)
{
	struct relay *r = c->relay;
	const char *desktop = proto_ctrl_str(m, "desktop");
	struct relay_session *s;
	char why[256];
	int err;

	err = proto_gate_host(proto_ctrl_str(m, "os"), proto_ctrl_str(m, "image"),
			      proto_ctrl_str(m, "asp_version"), why, sizeof(why));
	if (err) {
		relay_conn_refuse(c, err, why);
		return;
	}
	if (!relay_desktop_valid(desktop)) {
		relay_conn_refuse(c, -PROTO_E_MALFORMED,
			"field \"desktop\" must be 1-64 characters from A-Z a-z 0-9 . _ -");
		return;
	}
	err = relay_session_auth(c, m, why, sizeof(why));
	if (!err && strcmp(c->who.desktop, desktop) != 0)
		err = -PROTO_E_UNAUTHORIZED;
	if (err) {
		relay_conn_refuse(c, err, why[0] ? why :
			err == -PROTO_E_UNAUTHORIZED ?
			"Sign-in failed: the token is missing, malformed, not valid, or not for this desktop." :
			NULL);
		return;
	}
	if (relay_cluster_on(r) && !relay_session_route(c, desktop, true))
		return;
	s = relay_map_get(&r->by_desktop, desktop);
	err = 0;
	if (s && !s->host && relay_cluster_on(r))
		err = relay_session_refresh(s);
	else if (!s && relay_cluster_on(r))
		err = relay_session_adopt(r, desktop, c->who.user, &s);
	else if (!s && !(s = relay_session_new(r, desktop, NULL)))
		err = -PROTO_E_INTERNAL;
	if (err) {
		if (relay_cluster_on(r) && (!s || !s->host))
			relay_cluster_release(r, desktop);
		relay_conn_refuse(c, err == -PROTO_E_STORAGE ?
				  -PROTO_E_UNAVAILABLE : err, NULL);
		return;
	}
	relay_session_take_host(s, c, proto_ctrl_str(m, "name"));
	relay_log("host-connect", "desktop=%s", s->desktop);
	relay_audit(r, s->user, "host-connect", s->desktop, "");
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_WELCOME,
		"{s:s, s:s, s:I}", "session", s->desktop,
		"owner_key", s->owner_key, "max_message",
		(json_int_t)r->cfg.max_message));
	if (s->code[0]) {
		char shown[PROTO_CODE_DISPLAY_LEN];

		proto_code_display(s->code, shown);
		relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_CODE,
			"{s:s}", "code", shown));
	}
	relay_session_notify(s->owner, "host_online", "The desktop is back.", NULL);
	relay_session_notify(s->guest, "host_online", "The desktop is back.", NULL);
	if (relay_cluster_on(r)) {
		relay_session_changed(s);
		/* Viewers waiting for it on other nodes are sent here. */
		relay_cluster_publish(r, json_pack("{s:s, s:s, s:s}", "op",
			"lease", "desktop", s->desktop, "url",
			relay_cluster_node_url(r)));
	}
}

static int relay_new_code(struct relay *r, char out[PROTO_CODE_CANON_LEN])
{
	unsigned char rnd[32];

	for (int tries = 0; tries < 16; tries++) {
		int err;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -PROTO_E_INTERNAL;
		if (proto_code_from_random(rnd, sizeof(rnd), out) != 0 ||
		    relay_map_get(&r->by_code, out))
			continue;
		err = relay_session_code_free(r, out);
		if (err != -PROTO_E_STATE)
			return err; /* free, or the store cannot say */
	}
	return -PROTO_E_INTERNAL;
}

static void relay_session_share(struct relay_conn *c)
{
	struct relay_session *s = c->session;
	char shown[PROTO_CODE_DISPLAY_LEN];
	int err = relay_session_permitted(c->relay, s->user, RELAY_PERM_COLLAB);

	if (err) {
		relay_conn_send_error(c, err, err == -PROTO_E_NO_PERMISSION ?
				      RELAY_COLLAB_PERM_MSG : NULL);
		return;
	}
	if (!s->code[0]) {
		err = relay_new_code(c->relay, s->code);
		if (!err)
			err = relay_session_persist(s, c, "collab-start");
		if (err) {
			s->code[0] = '\0';
			relay_conn_send_error(c, err, NULL);
			return;
		}
		relay_map_put(&c->relay->by_code, s->code, s);
		relay_log("collab-start", "desktop=%s", s->desktop);
		relay_session_changed(s);
	}
	proto_code_display(s->code, shown);
	relay_owner_tell(s, proto_ctrl_build(PROTO_MSG_CODE, "{s:s}", "code",
					     shown));
}

/* Discard and end both retire the code and close a guest joined with
 * it; they differ in what the guest is told. */
static void relay_session_retire(struct relay_conn *c, int guest_err,
				 const char *event, const char *told,
				 const char *message)
{
	struct relay_session *s = c->session;
	char code[sizeof(s->code)];
	int err;

	if (!s->code[0]) {
		relay_conn_send_error(c, -PROTO_E_STATE,
				      "There is no collaboration to end.");
		return;
	}
	/* A code that cannot be deleted from the store would come back at
	 * the next start: the retirement is refused, and the code stands. */
	snprintf(code, sizeof(code), "%s", s->code);
	s->code[0] = '\0';
	err = relay_session_persist(s, c, event);
	snprintf(s->code, sizeof(s->code), "%s", code);
	if (err) {
		relay_conn_send_error(c, err, NULL);
		return;
	}
	relay_log(event, "desktop=%s", s->desktop);
	relay_session_drop_code(s);
	if (s->guest && s->guest->role == RELAY_ROLE_GUEST)
		relay_conn_refuse(s->guest, guest_err, NULL);
	relay_owner_notify(s, told, message, NULL);
	relay_session_changed(s);
}

static void relay_session_control(struct relay_conn *c, bool grant)
{
	struct relay_session *s = c->session;
	const char *event = grant ? "control_granted" : "control_revoked";
	const char *msg = grant ? "Control granted to the collaborator." :
				  "Control revoked from the collaborator.";

	if (!s->guest) {
		relay_conn_send_error(c, -PROTO_E_STATE,
				      "There is no collaborator to give control to.");
		return;
	}
	if (s->guest->role != RELAY_ROLE_GUEST) {
		relay_conn_send_error(c, -PROTO_E_STATE,
			"An assisting administrator always has control.");
		return;
	}
	s->guest_control = grant;
	relay_log(event, "desktop=%s", s->desktop);
	relay_audit(c->relay, c->who.user, event, s->desktop,
		    s->guest->who.user);
	relay_owner_notify(s, event, msg, s->guest->name);
	relay_session_notify(s->guest, event, msg, NULL);
}

void relay_session_host_msg(struct relay_conn *c, const struct proto_ctrl *m)
{
	switch (m->type) {
	case PROTO_MSG_SHARE:
		relay_session_share(c);
		break;
	case PROTO_MSG_DISCARD:
		relay_session_retire(c, -PROTO_E_DISCARDED, "collab-discard",
			"collab_discarded", "The collaboration code was discarded.");
		break;
	case PROTO_MSG_END:
		relay_session_retire(c, -PROTO_E_ENDED, "collab-end",
			"collab_ended", "The shared collaboration ended.");
		break;
	case PROTO_MSG_CONTROL:
		relay_session_control(c, proto_ctrl_bool(m, "guest", false));
		break;
	case PROTO_MSG_ASSIST_REQUEST:
	case PROTO_MSG_ASSIST_ACCEPT:
	case PROTO_MSG_ASSIST_DECLINE:
	case PROTO_MSG_ASSIST_END:
		if (c->relay->assist_hooks)
			c->relay->assist_hooks->host_msg(c, m);
		else
			relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		break;
	default:
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		break;
	}
}

/* ---- viewers ------------------------------------------------------- */

void relay_session_viewer_hello(struct relay_conn *c,
				const struct proto_ctrl *m)
{
	char why[256];
	int err = proto_gate_client(proto_ctrl_str(m, "client"),
				    proto_ctrl_str(m, "client_version"), why,
				    sizeof(why));

	if (err) {
		relay_conn_refuse(c, err, why);
		return;
	}
	err = relay_session_auth(c, m, why, sizeof(why));
	if (err) {
		relay_conn_refuse(c, err, why[0] ? why : NULL);
		return;
	}
	relay_copy_name(c->name, proto_ctrl_has(m, "name") ?
			proto_ctrl_str(m, "name") : c->who.user);
	if (!c->name[0])
		relay_copy_name(c->name, c->who.user);
	c->state = RELAY_ST_READY;
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_WELCOME, NULL));
}

static const char *relay_role_name(enum relay_role role)
{
	switch (role) {
	case RELAY_ROLE_OWNER: return "owner";
	case RELAY_ROLE_GUEST: return "guest";
	case RELAY_ROLE_ASSIST: return "assist";
	default: return "host";
	}
}

/* The owner acts for its desktop (relay_owner.h): the host's own
 * requests, under the host's own rules. */
static void relay_session_owner_msg(struct relay_conn *c,
				    const struct proto_ctrl *m)
{
	switch (m->type) {
	case PROTO_MSG_SHARE:
	case PROTO_MSG_DISCARD:
	case PROTO_MSG_END:
	case PROTO_MSG_CONTROL:
	case PROTO_MSG_ASSIST_REQUEST:
	case PROTO_MSG_ASSIST_ACCEPT:
	case PROTO_MSG_ASSIST_DECLINE:
	case PROTO_MSG_ASSIST_END:
		break;
	default:
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		return;
	}
	/* The host carries out what its user decides: without it connected
	 * nothing could be told to it or shown to a guest. */
	if (!c->session->host) {
		relay_conn_send_error(c, -PROTO_E_OFFLINE, NULL);
		return;
	}
	relay_log("owner-request", "desktop=%s type=%s", c->session->desktop,
		  proto_msg_name(m->type));
	relay_session_host_msg(c, m);
}

/* Brings a newly joined owner up to date, assistance included. */
static void relay_session_owner_joined(struct relay_session *s,
				       struct relay_conn *c)
{
	relay_owner_replay(s, c);
	if (s->relay->assist_hooks && s->relay->assist_hooks->owner_joined)
		s->relay->assist_hooks->owner_joined(s, c);
}

void relay_session_attach_viewer(struct relay_session *s, struct relay_conn *c,
				 enum relay_role role)
{
	c->session = s;
	c->role = role;
	c->state = RELAY_ST_JOINED;
	c->joined_us = relay_turn_now_us();
	relay_hist_add(&s->relay->stats.join_us, c->joined_us - c->opened_us);
	if (role == RELAY_ROLE_OWNER) {
		s->owner = c;
	} else {
		s->guest = c;
		s->guest_control = false;
	}
	relay_guard_joined(s->relay, c);
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_JOINED,
		"{s:s, s:s, s:s, s:b}", "role", relay_role_name(role),
		"session", s->desktop, "name", s->name,
		"control", role != RELAY_ROLE_GUEST));
	relay_send_stream_info(s, c);
	relay_gop_replay(s, c);
	if (role == RELAY_ROLE_OWNER)
		relay_session_owner_joined(s, c);
	relay_session_changed(s);
}

static void relay_session_join_guest(struct relay_conn *c, const char *typed)
{
	char canon[PROTO_CODE_CANON_LEN];
	struct relay_session *s = NULL;
	int err;

	if (proto_code_normalize(typed, canon) == 0)
		s = relay_map_get(&c->relay->by_code, canon);
	if (!s) {
		relay_audit(c->relay, c->who.user, "refuse-bad-code", "", "");
		relay_guard_join_failed(c->relay, c);
		relay_conn_refuse(c, -PROTO_E_BAD_CODE, NULL);
		return;
	}
	/* Both ends of a collaboration need the permission: the guest, and
	 * the desktop's user whose code it is (a code that outlived a
	 * revocation must not open the desktop). */
	err = relay_session_permitted(c->relay, c->who.user,
				      RELAY_PERM_COLLAB);
	if (!err && s->user[0] &&
	    relay_session_permitted(c->relay, s->user, RELAY_PERM_COLLAB)) {
		relay_audit(c->relay, c->who.user, "refuse-no-permission",
			    s->desktop, "desktop's user");
		relay_conn_refuse(c, -PROTO_E_BAD_CODE, NULL);
		return;
	}
	if (err) {
		relay_audit(c->relay, c->who.user, "refuse-no-permission",
			    s->desktop, "User Stream Collaboration");
		relay_conn_refuse(c, err, err == -PROTO_E_NO_PERMISSION ?
				  RELAY_COLLAB_PERM_MSG : NULL);
		return;
	}
	if (s->guest) {
		relay_log("refuse-busy", "desktop=%s", s->desktop);
		relay_audit(c->relay, c->who.user, "refuse-busy", s->desktop, "");
		relay_conn_refuse(c, -PROTO_E_BUSY, NULL);
		return;
	}
	if (!s->host) {
		relay_conn_refuse(c, -PROTO_E_OFFLINE, NULL);
		return;
	}
	relay_session_attach_viewer(s, c, RELAY_ROLE_GUEST);
	relay_log("collab-join", "desktop=%s", s->desktop);
	relay_audit(c->relay, c->who.user, "collab-join", s->desktop, c->name);
	relay_notify_guest(s, "collab_joined", "Joined Shared Collaboration", c);
}

static void relay_session_join_owner(struct relay_conn *c, const char *key)
{
	struct relay_session *s = relay_map_get(&c->relay->by_owner, key);

	if (!s) {
		relay_guard_join_failed(c->relay, c);
		relay_conn_refuse(c, -PROTO_E_UNAUTHORIZED,
				  "The owner key is not valid.");
		return;
	}
	/* The key opens the owner's seat for the desktop's user only. */
	if (strcmp(c->who.user, s->user) != 0) {
		relay_guard_join_failed(c->relay, c);
		relay_audit(c->relay, c->who.user, "refuse-owner-user",
			    s->desktop, "");
		relay_conn_refuse(c, -PROTO_E_NO_PERMISSION,
				  "Only the desktop's own user can view it as its owner.");
		return;
	}
	if (s->owner) {
		struct relay_conn *old = s->owner;

		s->owner = NULL;
		old->session = NULL;
		relay_conn_refuse(old, -PROTO_E_REPLACED, NULL);
	}
	relay_session_attach_viewer(s, c, RELAY_ROLE_OWNER);
	relay_log("owner-join", "desktop=%s", s->desktop);
}

void relay_session_join(struct relay_conn *c, const struct proto_ctrl *m)
{
	const char *code = proto_ctrl_str(m, "code");
	const char *key = proto_ctrl_str(m, "owner_key");
	struct relay_session *made = NULL;
	int64_t retry_after;
	int err;

	if (c->state != RELAY_ST_READY) {
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		return;
	}
	err = relay_guard_join_check(c->relay, c, &retry_after);
	if (err == -PROTO_E_RATE_LIMITED) {
		relay_conn_refuse_retry(c, err, NULL, retry_after);
		return;
	}
	if (err) {
		relay_conn_refuse(c, err, NULL);
		return;
	}
	if (!!code + !!key + proto_ctrl_has(m, "assist") != 1) {
		relay_conn_send_error(c, -PROTO_E_MALFORMED,
			"join needs exactly one of \"code\", \"owner_key\" or \"assist\".");
		return;
	}
	/* In a cluster the join is decided on the desktop's node. */
	if (relay_cluster_on(c->relay) &&
	    !relay_session_route_join(c, code, key,
				      proto_ctrl_str(m, "assist"), &made))
		return;
	if (code)
		relay_session_join_guest(c, code);
	else if (key)
		relay_session_join_owner(c, key);
	else if (c->relay->assist_hooks)
		c->relay->assist_hooks->join(c, proto_ctrl_str(m, "assist"));
	else
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
	/* A session brought up for this owner, who was refused after all
	 * (another user's key): nothing holds it. */
	if (made)
		relay_session_maybe_free(made);
}

void relay_session_viewer_msg(struct relay_conn *c, const struct proto_ctrl *m)
{
	switch (m->type) {
	case PROTO_MSG_LEAVE:
		relay_conn_close(c, 1000, "leave");
		relay_session_detach(c);
		break;
	case PROTO_MSG_KEYFRAME:
		if (c->session)
			relay_session_request_keyframe(c->session, "viewer");
		break;
	default:
		if (c->role == RELAY_ROLE_OWNER) {
			relay_session_owner_msg(c, m);
			break;
		}
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
		break;
	}
}

/* ---- media --------------------------------------------------------- */

void relay_session_request_keyframe(struct relay_session *s,
				    const char *reason)
{
	uint64_t now = relay_now_us();

	if (!s->host ||
	    now - s->last_keyframe_req_us <
		    (uint64_t)s->relay->cfg.keyframe_gap_ms * 1000)
		return;
	s->last_keyframe_req_us = now;
	s->relay->stats.keyframe_requests++;
	relay_conn_send_json(s->host, proto_ctrl_build(PROTO_MSG_KEYFRAME,
		"{s:s}", "reason", reason));
}

static void relay_stream_count(struct relay_session *s,
			       const struct relay_frame *f)
{
	struct relay_stream_stats *st = NULL;

	for (int i = 0; i < RELAY_STREAMS_MAX && !st; i++) {
		struct relay_stream_stats *x = &s->streams[i];

		if (!x->used) {
			x->used = true;
			x->kind = f->kind;
			x->stream = f->stream;
			x->first_us = relay_now_us();
			st = x;
		} else if (x->kind == f->kind && x->stream == f->stream) {
			st = x;
		}
	}
	if (!st)
		return; /* more streams than we keep rates for */
	st->codec = f->codec;
	st->msgs++;
	st->bytes += f->len;
	st->win_msgs++;
	st->win_bytes += f->len;
}

/* Checks a video message against its bitstream.  The host's keyframe
 * flag is not trusted: the relay's own decisions (cache, skipping to a
 * keyframe) use what the bitstream says, while the bytes go out as they
 * came.  Returns 0, or a negative error for garbage. */
static int relay_inspect_video(struct relay_session *s, struct relay_frame *f,
			       char *why, size_t why_len)
{
	const uint8_t *payload = relay_frame_data(f) + PROTO_MEDIA_HDR_LEN;
	struct codec_video_info vi;
	bool flagged = f->flags & PROTO_F_KEYFRAME;
	int err;

	err = codec_video_inspect(f->stream == 0 ? &s->vinspect : NULL,
				  f->codec, payload, f->len - PROTO_MEDIA_HDR_LEN,
				  &vi, why, why_len);
	if (err)
		return err;
	if (vi.keyframe != flagged) {
		s->keyframe_mismatches++;
		s->relay->stats.keyframe_mismatches++;
		f->flags ^= PROTO_F_KEYFRAME;
	}
	if (f->stream == 0 && vi.codec_string[0] &&
	    (vi.width != s->width || vi.height != s->height ||
	     f->codec != s->video_codec ||
	     strcmp(vi.codec_string, s->codec_string) != 0)) {
		s->width = vi.width;
		s->height = vi.height;
		s->video_codec = f->codec;
		snprintf(s->codec_string, sizeof(s->codec_string), "%s",
			 vi.codec_string);
		relay_send_stream_info(s, s->owner);
		relay_send_stream_info(s, s->guest);
	}
	return 0;
}

static int relay_inspect_audio(struct relay_session *s, struct relay_frame *f,
			       char *why, size_t why_len)
{
	struct codec_audio_info ai;
	int err = codec_opus_inspect(relay_frame_data(f) + PROTO_MEDIA_HDR_LEN,
				     f->len - PROTO_MEDIA_HDR_LEN, &ai, why,
				     why_len);

	if (err)
		return err;
	if (s->audio_codec != f->codec || s->audio_channels != ai.channels) {
		s->audio_codec = f->codec;
		s->audio_channels = ai.channels;
		relay_send_stream_info(s, s->owner);
		relay_send_stream_info(s, s->guest);
	}
	return 0;
}

static int relay_inspect(struct relay_session *s, struct relay_frame *f,
			 char *why, size_t why_len)
{
	if (f->kind == PROTO_KIND_VIDEO &&
	    (f->codec == PROTO_CODEC_H264 || f->codec == PROTO_CODEC_HEVC))
		return relay_inspect_video(s, f, why, why_len);
	if (f->kind == PROTO_KIND_AUDIO && f->codec == PROTO_CODEC_OPUS)
		return relay_inspect_audio(s, f, why, why_len);
	return 0;
}

void relay_session_publish(struct relay_conn *host, struct relay_frame *f)
{
	struct relay_session *s = host->session;
	char why[256];
	int err = relay_inspect(s, f, why, sizeof(why));

	if (err) {
		relay_conn_send_error(host, err, why);
		return;
	}
	relay_stream_count(s, f);
	relay_gop_update(s, f);
	if (s->owner)
		relay_conn_send_media(s->owner, f);
	if (s->guest)
		relay_conn_send_media(s->guest, f);
}

void relay_session_input(struct relay_conn *v, struct relay_frame *f)
{
	struct relay_session *s = v->session;
	bool allowed = v->role == RELAY_ROLE_OWNER ||
		       v->role == RELAY_ROLE_ASSIST ||
		       (v->role == RELAY_ROLE_GUEST && s->guest_control);

	if (!allowed) {
		relay_conn_send_error(v, -PROTO_E_NO_CONTROL, NULL);
		return;
	}
	if (!s->host)
		return; /* the host is away: nobody to operate */
	relay_conn_send_always(s->host, f);
	if (s->host->q.bytes > RELAY_HOST_INPUT_CAP && !v->rx_paused) {
		/* Never drop input: hold the sender back instead. */
		v->rx_paused = true;
		lws_rx_flow_control(v->wsi, 0);
	}
}

/* A closing connection stays paused: it reads nothing more. */
static void relay_resume(struct relay_conn *v)
{
	if (v && v->rx_paused && v->state != RELAY_ST_CLOSING) {
		v->rx_paused = false;
		lws_rx_flow_control(v->wsi, 1);
	}
}

void relay_session_host_drained(struct relay_session *s)
{
	if (s->host && s->host->q.bytes < RELAY_HOST_INPUT_CAP / 2) {
		relay_resume(s->owner);
		relay_resume(s->guest);
	}
}

/* ---- detach -------------------------------------------------------- */

void relay_session_detach(struct relay_conn *c)
{
	struct relay_session *s = c->session;

	if (!s)
		return;
	c->session = NULL;
	if (s->host == c) {
		s->host = NULL;
		relay_gop_clear(s);
		if (relay_cluster_on(s->relay))
			relay_cluster_release(s->relay, s->desktop);
		relay_log("host-leave", "desktop=%s", s->desktop);
		relay_events_publish(s->relay, "host-leave", s->user, s->desktop,
				   "");
		relay_session_notify(s->owner, "host_offline",
			     "The desktop disconnected; waiting for it to come back.",
			     NULL);
		relay_session_notify(s->guest, "host_offline",
			     "The desktop disconnected; waiting for it to come back.",
			     NULL);
	} else if (s->guest == c && c->role == RELAY_ROLE_ASSIST) {
		s->guest = NULL;
		relay_resume(c);
		relay_log("assist-leave", "desktop=%s", s->desktop);
		if (s->relay->assist_hooks)
			s->relay->assist_hooks->guest_left(s);
	} else if (s->guest == c) {
		s->guest = NULL;
		s->guest_control = false;
		relay_resume(c);
		relay_log("collab-leave", "desktop=%s", s->desktop);
		relay_audit(s->relay, c->who.user, "collab-leave", s->desktop,
			    c->name);
		relay_notify_guest(s, "collab_stopped",
				   "Stopped Shared Collaboration", c);
	} else if (s->owner == c) {
		s->owner = NULL;
		relay_resume(c);
		relay_log("owner-leave", "desktop=%s", s->desktop);
	}
	relay_session_changed(s);
	relay_session_maybe_free(s);
}

/* ---- revocation ---------------------------------------------------- */

struct relay_revoke {
	const char *user;
	struct relay_session **hit;
	size_t n, cap;
};

/* Sessions gathered before they are acted on (acting edits the maps). */
static void relay_collect_add(struct relay_revoke *x, struct relay_session *s)
{
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 8;
		x->hit = relay_xrealloc(x->hit, x->cap * sizeof(*x->hit));
	}
	x->hit[x->n++] = s;
}

static void relay_revoke_collect(const char *key, void *val, void *arg)
{
	struct relay_revoke *x = arg;
	struct relay_session *s = val;
	bool guest = s->guest && s->guest->role == RELAY_ROLE_GUEST &&
		     !strcmp(s->guest->who.user, x->user);

	(void)key;
	if (guest || (s->code[0] && !strcmp(s->user, x->user)))
		relay_collect_add(x, s);
}

#define RELAY_REVOKED_MSG \
	"The permission \"User Stream Collaboration\" was revoked."

/* One session touched by the revocation: a guest signed in as the user
 * is closed; a code the user's desktop shares is discarded, and so its
 * guest too.  May free s. */
static void relay_revoke_one(struct relay_session *s, const char *user)
{
	bool owner_side = s->code[0] && !strcmp(s->user, user);

	relay_log("collab-revoked", "desktop=%s", s->desktop);
	if (owner_side) {
		/* The stored code goes with the audit event, as one change, so
		 * a restart does not bring it back.  If the store fails the
		 * revocation still takes effect now; the join check on the
		 * desktop's user keeps a code brought back from opening it. */
		relay_session_drop_code(s);
		relay_session_store(s, "relay", "collab-revoked", user);
		relay_session_notify(s->host, "collab_revoked",
				     RELAY_REVOKED_MSG " The collaboration ended.",
				     NULL);
	} else {
		relay_audit(s->relay, "relay", "collab-revoked", s->desktop,
			    user);
	}
	if (s->guest && s->guest->role == RELAY_ROLE_GUEST &&
	    (owner_side || !strcmp(s->guest->who.user, user))) {
		relay_conn_refuse(s->guest, -PROTO_E_NO_PERMISSION,
				  RELAY_REVOKED_MSG);
		return; /* the detach freed s if nothing else holds it */
	}
	relay_session_maybe_free(s);
}

void relay_session_revoke_collab(struct relay *r, const char *user)
{
	struct relay_revoke x = { .user = user };

	/* Acting edits the maps, so collect first. */
	relay_map_each(&r->by_desktop, relay_revoke_collect, &x);
	for (size_t i = 0; i < x.n; i++)
		relay_revoke_one(x.hit[i], user);
	free(x.hit);
}

/* ---- the cluster's resync ------------------------------------------ */

static void relay_resync_collect(const char *key, void *val, void *arg)
{
	(void)key;
	relay_collect_add(arg, val);
}

void relay_session_resync(struct relay *r)
{
	struct relay_revoke x = { .user = NULL };

	/* Acting edits the map, so collect first; one session's action
	 * never frees another. */
	relay_map_each(&r->by_desktop, relay_resync_collect, &x);
	for (size_t i = 0; i < x.n; i++) {
		struct relay_session *s = x.hit[i];
		struct relay_conn *g = s->guest;
		enum relay_where where;
		char url[RELAY_NODE_URL_MAX + 1];

		if (g && g->role == RELAY_ROLE_GUEST &&
		    (relay_session_permitted(r, g->who.user, RELAY_PERM_COLLAB) ==
			     -PROTO_E_NO_PERMISSION ||
		     relay_session_permitted(r, s->user, RELAY_PERM_COLLAB) ==
			     -PROTO_E_NO_PERMISSION)) {
			relay_log("collab-revoked", "desktop=%s why=resync",
				  s->desktop);
			relay_conn_refuse(g, -PROTO_E_NO_PERMISSION,
					  RELAY_REVOKED_MSG);
			continue; /* the detach may have freed s */
		}
		if (!s->host &&
		    relay_cluster_locate(r, s->desktop, &where, url,
					 sizeof(url)) == 0 &&
		    where == RELAY_WHERE_THERE)
			relay_session_send_away(s, 0, NULL, url);
	}
	free(x.hit);
}

/* ---- the connection events this layer handles ---------------------- */

static void relay_session_on_hello(struct relay_conn *c,
				   const struct proto_ctrl *m)
{
	if (c->is_host)
		relay_session_host_hello(c, m);
	else
		relay_session_viewer_hello(c, m);
}

static void relay_session_on_msg(struct relay_conn *c,
				 const struct proto_ctrl *m)
{
	if (c->is_host)
		relay_session_host_msg(c, m);
	else
		relay_session_viewer_msg(c, m);
}

static void relay_session_on_media(struct relay_conn *c, struct relay_frame *f)
{
	if (c->is_host)
		relay_session_publish(c, f);
	else
		relay_session_input(c, f);
}

static void relay_session_on_drained(struct relay_conn *c)
{
	relay_session_host_drained(c->session);
}

static void relay_session_on_want_keyframe(struct relay_conn *c)
{
	if (c->session)
		relay_session_request_keyframe(c->session, "drop");
}

static const struct relay_conn_events relay_session_conn_events = {
	.hello = relay_session_on_hello,
	.join = relay_session_join,
	.msg = relay_session_on_msg,
	.media = relay_session_on_media,
	.drained = relay_session_on_drained,
	.gone = relay_session_detach,
	.want_keyframe = relay_session_on_want_keyframe,
};

void relay_session_init(struct relay *r)
{
	r->conn_events = &relay_session_conn_events;
}

void relay_session_set_assist(struct relay *r,
			      const struct relay_session_assist_hooks *h)
{
	r->assist_hooks = h;
}
