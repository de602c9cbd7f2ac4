/*
 * proto_ctrl: parses, checks and builds the JSON control messages of
 * docs/protocol.md.
 *
 * One table, ctrl_schema[], says for every message type who may send it
 * and which fields it carries: required or optional, and their JSON type.
 * The parser checks a message against the row for its type and direction,
 * so the relay and the tools only ever see well-typed fields, and every
 * refusal names the field that was wrong.  The protocol document prints
 * the same messages; keep the two in step.
 */
#include "protocol/proto_ctrl.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_error.h"

enum field_type { F_STR, F_INT, F_NUM, F_BOOL, F_OBJ, F_ARR };

enum field_flag {
	REQ = 1 << 0,     /* must be present */
	ONE_OF = 1 << 1,  /* exactly one of the row's ONE_OF fields */
	DESKTOP = 1 << 2, /* a desktop id: 1-64 of A-Z a-z 0-9 . _ - */
	LONG = 1 << 3,    /* prose: up to CTRL_MAX_PROSE bytes */
	TOKEN = 1 << 4,   /* a sign-in token: up to CTRL_MAX_TOKEN bytes */
};

/* Error sentences quote what a peer sent, which may already be 256
 * bytes, and tokens carry a signature, so these two kinds of string get
 * more room than PROTO_CTRL_MAX_STR (docs/protocol.md says the same). */
#define CTRL_MAX_PROSE 1024
#define CTRL_MAX_TOKEN 4096
#define DESKTOP_MAX 64
#define SCHEMA_MAX_FIELDS 9

struct field {
	const char *name;
	enum field_type type;
	unsigned flags;
};

struct schema {
	enum proto_msg type;
	unsigned dirs;
	struct field fields[SCHEMA_MAX_FIELDS];
};

#define H2R PROTO_DIR_HOST_TO_RELAY
#define V2R PROTO_DIR_VIEWER_TO_RELAY
#define R2H PROTO_DIR_RELAY_TO_HOST
#define R2V PROTO_DIR_RELAY_TO_VIEWER

static const char *const msg_names[PROTO_MSG__COUNT] = {
	[PROTO_MSG_HELLO] = "hello",
	[PROTO_MSG_WELCOME] = "welcome",
	[PROTO_MSG_ERROR] = "error",
	[PROTO_MSG_SHARE] = "share",
	[PROTO_MSG_CODE] = "code",
	[PROTO_MSG_DISCARD] = "discard",
	[PROTO_MSG_END] = "end",
	[PROTO_MSG_JOIN] = "join",
	[PROTO_MSG_JOINED] = "joined",
	[PROTO_MSG_LEAVE] = "leave",
	[PROTO_MSG_NOTIFY] = "notify",
	[PROTO_MSG_CONTROL] = "control",
	[PROTO_MSG_METRICS] = "metrics",
	[PROTO_MSG_ECHO] = "echo",
	[PROTO_MSG_KEYFRAME] = "keyframe",
	[PROTO_MSG_STREAM] = "stream",
	[PROTO_MSG_ASSIST_REQUEST] = "assist_request",
	[PROTO_MSG_ASSIST_INVITE] = "assist_invite",
	[PROTO_MSG_ASSIST_ACCEPT] = "assist_accept",
	[PROTO_MSG_ASSIST_DECLINE] = "assist_decline",
	[PROTO_MSG_ASSIST_END] = "assist_end",
};

/* docs/protocol.md, "Control messages", row by row. */
static const struct schema ctrl_schema[] = {
	{PROTO_MSG_HELLO, H2R, {
		{"os", F_STR, REQ}, {"image", F_STR, REQ},
		{"asp_version", F_STR, REQ}, {"desktop", F_STR, REQ | DESKTOP},
		{"name", F_STR, 0}, {"token", F_STR, TOKEN}}},
	{PROTO_MSG_HELLO, V2R, {
		{"client", F_STR, REQ}, {"client_version", F_STR, REQ},
		{"name", F_STR, 0}, {"token", F_STR, TOKEN}}},
	{PROTO_MSG_WELCOME, R2H, {
		{"session", F_STR, REQ}, {"owner_key", F_STR, REQ},
		{"max_message", F_INT, REQ}}},
	{PROTO_MSG_WELCOME, R2V, {{0}}},
	{PROTO_MSG_ERROR, R2H | R2V, {
		{"code", F_STR, REQ}, {"message", F_STR, REQ | LONG},
		{"retry_after", F_INT, 0}, {"url", F_STR, LONG}}},
	{PROTO_MSG_SHARE, H2R | V2R, {{0}}},
	{PROTO_MSG_CODE, R2H | R2V, {{"code", F_STR, REQ}}},
	{PROTO_MSG_DISCARD, H2R | V2R, {{0}}},
	{PROTO_MSG_END, H2R | V2R, {{0}}},
	{PROTO_MSG_CONTROL, H2R | V2R, {{"guest", F_BOOL, REQ}}},
	{PROTO_MSG_METRICS, H2R | V2R, {{"interval_ms", F_INT, 0}}},
	{PROTO_MSG_METRICS, R2H | R2V, {
		{"session", F_STR, REQ}, {"streams", F_ARR, 0},
		{"dropped", F_INT, 0}, {"queued_bytes", F_INT, 0},
		{"rtt_ms", F_NUM, 0}, {"latency_ms", F_NUM, 0},
		{"copied_bytes", F_INT, 0}, {"forwarded_bytes", F_INT, 0}}},
	{PROTO_MSG_ECHO, H2R | V2R | R2H | R2V, {{"t", F_INT, REQ}}},
	{PROTO_MSG_ASSIST_REQUEST, H2R | V2R, {{0}}},
	{PROTO_MSG_ASSIST_ACCEPT, H2R | V2R, {{"id", F_STR, REQ}}},
	{PROTO_MSG_ASSIST_DECLINE, H2R | V2R, {{"id", F_STR, REQ}}},
	{PROTO_MSG_ASSIST_END, H2R | V2R, {{0}}},
	{PROTO_MSG_NOTIFY, R2H | R2V, {
		{"event", F_STR, REQ}, {"message", F_STR, REQ | LONG},
		{"name", F_STR, 0}, {"user", F_STR, 0}, {"id", F_STR, 0},
		{"expires_at", F_INT, 0}, {"expires_in", F_INT, 0}}},
	{PROTO_MSG_KEYFRAME, R2H, {{"reason", F_STR, 0}}},
	{PROTO_MSG_ASSIST_INVITE, R2H | R2V, {
		{"id", F_STR, REQ}, {"admin", F_STR, REQ},
		{"initiator", F_STR, 0}}},
	{PROTO_MSG_JOIN, V2R, {
		{"code", F_STR, ONE_OF}, {"owner_key", F_STR, ONE_OF},
		{"assist", F_STR, ONE_OF}}},
	{PROTO_MSG_LEAVE, V2R, {{0}}},
	{PROTO_MSG_KEYFRAME, V2R, {{0}}},
	{PROTO_MSG_JOINED, R2V, {
		{"role", F_STR, REQ}, {"session", F_STR, REQ},
		{"name", F_STR, 0}, {"control", F_BOOL, 0}}},
	{PROTO_MSG_STREAM, R2V, {{"video", F_OBJ, 0}, {"audio", F_OBJ, 0}}},
};

const char *proto_msg_name(enum proto_msg type)
{
	if ((unsigned)type >= PROTO_MSG__COUNT)
		return NULL;
	return msg_names[type];
}

static const char *dir_name(enum proto_dir dir)
{
	switch (dir) {
	case PROTO_DIR_HOST_TO_RELAY: return "from a host";
	case PROTO_DIR_VIEWER_TO_RELAY: return "from a viewer";
	case PROTO_DIR_RELAY_TO_HOST: return "from the relay to a host";
	case PROTO_DIR_RELAY_TO_VIEWER: return "from the relay to a viewer";
	}
	return NULL;
}

static int msg_by_name(const char *name)
{
	for (int i = 0; i < PROTO_MSG__COUNT; i++)
		if (strcmp(msg_names[i], name) == 0)
			return i;
	return -1;
}

static const struct schema *schema_for(int type, enum proto_dir dir)
{
	for (size_t i = 0; i < sizeof ctrl_schema / sizeof ctrl_schema[0]; i++)
		if ((int)ctrl_schema[i].type == type &&
		    (ctrl_schema[i].dirs & (unsigned)dir))
			return &ctrl_schema[i];
	return NULL;
}

static int type_ok(const json_t *v, enum field_type t)
{
	switch (t) {
	case F_STR: return json_is_string(v);
	case F_INT: return json_is_integer(v);
	case F_NUM: return json_is_number(v);
	case F_BOOL: return json_is_boolean(v);
	case F_OBJ: return json_is_object(v);
	case F_ARR: return json_is_array(v);
	}
	return 0;
}

static const char *type_desc(enum field_type t)
{
	static const char *const desc[] = {
		[F_STR] = "a string", [F_INT] = "an integer",
		[F_NUM] = "a number", [F_BOOL] = "a boolean",
		[F_OBJ] = "an object", [F_ARR] = "an array",
	};
	return desc[t];
}

static int desktop_ok(const char *s, size_t len)
{
	if (len < 1 || len > DESKTOP_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Length and format rules for a string field that is present. */
static int check_string(const struct field *f, const json_t *v, char *why,
			size_t why_len)
{
	size_t len = json_string_length(v);
	size_t max = (f->flags & TOKEN) ? CTRL_MAX_TOKEN
		     : (f->flags & LONG) ? CTRL_MAX_PROSE
		     : PROTO_CTRL_MAX_STR;

	if (len > max) {
		proto_err_set(why, why_len,
			      "field \"%s\" is %zu bytes, over the %zu-byte limit",
			      f->name, len, max);
		return -PROTO_E_MALFORMED;
	}
	if ((f->flags & DESKTOP) && !desktop_ok(json_string_value(v), len)) {
		proto_err_set(why, why_len,
			      "field \"%s\" must be 1-64 characters from "
			      "A-Z a-z 0-9 . _ -", f->name);
		return -PROTO_E_MALFORMED;
	}
	return 0;
}

static int check_field(const struct field *f, const json_t *root, char *why,
		       size_t why_len)
{
	const json_t *v = json_object_get(root, f->name);

	if (!v) {
		if (!(f->flags & REQ))
			return 0;
		proto_err_set(why, why_len, "field \"%s\" is missing", f->name);
		return -PROTO_E_MALFORMED;
	}
	if (!type_ok(v, f->type)) {
		proto_err_set(why, why_len, "field \"%s\" must be %s", f->name,
			      type_desc(f->type));
		return -PROTO_E_MALFORMED;
	}
	return f->type == F_STR ? check_string(f, v, why, why_len) : 0;
}

/* "join" names its target with exactly one of several fields. */
static int check_one_of(const struct schema *s, const json_t *root,
			char *why, size_t why_len)
{
	const char *names[SCHEMA_MAX_FIELDS];
	int n = 0, present = 0;

	for (const struct field *f = s->fields; f->name; f++) {
		if (!(f->flags & ONE_OF))
			continue;
		names[n++] = f->name;
		present += json_object_get(root, f->name) != NULL;
	}
	if (n == 0 || present == 1)
		return 0;
	proto_err_set(why, why_len,
		      "\"%s\" needs exactly one of the fields \"%s\", \"%s\" "
		      "or \"%s\"", msg_names[s->type], names[0],
		      n > 1 ? names[1] : "", n > 2 ? names[2] : "");
	return -PROTO_E_MALFORMED;
}

static int check_schema(const struct schema *s, const json_t *root,
			char *why, size_t why_len)
{
	for (const struct field *f = s->fields; f->name; f++) {
		int rc = check_field(f, root, why, why_len);
		if (rc < 0)
			return rc;
	}
	return check_one_of(s, root, why, why_len);
}

/* Finds the schema row for root's "type" in direction dir. */
static const struct schema *identify(const json_t *root, enum proto_dir dir,
				     char *why, size_t why_len)
{
	const json_t *t = json_object_get(root, "type");
	const struct schema *s;
	int type;

	if (!t || !json_is_string(t)) {
		proto_err_set(why, why_len, t ? "field \"type\" must be a string"
					      : "field \"type\" is missing");
		return NULL;
	}
	type = msg_by_name(json_string_value(t));
	if (type < 0) {
		proto_err_set(why, why_len, "unknown message type \"%.64s\"",
			      json_string_value(t));
		return NULL;
	}
	s = schema_for(type, dir);
	if (!s)
		proto_err_set(why, why_len, "\"%s\" is not a message sent %s",
			      msg_names[type], dir_name(dir));
	return s;
}

static json_t *load_object(const char *text, size_t len, char *why,
			   size_t why_len)
{
	json_error_t err;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);

	if (!root) {
		proto_err_set(why, why_len,
			      "not valid JSON (line %d, column %d): %s",
			      err.line, err.column, err.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		proto_err_set(why, why_len, "a control message must be a JSON "
					    "object");
		json_decref(root);
		return NULL;
	}
	return root;
}

int proto_ctrl_parse(const char *text, size_t len, enum proto_dir dir,
		     struct proto_ctrl *out, char *why, size_t why_len)
{
	const struct schema *s;
	json_t *root;
	int rc;

	if (out)
		out->root = NULL;
	if (len > PROTO_CTRL_MAX_LEN) {
		proto_err_set(why, why_len,
			      "control message is %zu bytes, over the %d-byte "
			      "limit", len, PROTO_CTRL_MAX_LEN);
		return -PROTO_E_TOO_LARGE;
	}
	if (!text || !out || !dir_name(dir)) {
		proto_err_set(why, why_len, "no message to parse");
		return -PROTO_E_MALFORMED;
	}
	root = load_object(text, len, why, why_len);
	if (!root)
		return -PROTO_E_MALFORMED;
	s = identify(root, dir, why, why_len);
	rc = s ? check_schema(s, root, why, why_len) : -PROTO_E_MALFORMED;
	if (rc < 0) {
		json_decref(root);
		return rc;
	}
	out->type = s->type;
	out->root = root;
	return 0;
}

void proto_ctrl_release(struct proto_ctrl *m)
{
	if (!m)
		return;
	json_decref(m->root);
	m->root = NULL;
}

static json_t *ctrl_get(const struct proto_ctrl *m, const char *field)
{
	if (!m || !m->root || !field)
		return NULL;
	return json_object_get(m->root, field);
}

const char *proto_ctrl_str(const struct proto_ctrl *m, const char *field)
{
	return json_string_value(ctrl_get(m, field));
}

int64_t proto_ctrl_int(const struct proto_ctrl *m, const char *field,
		       int64_t dflt)
{
	json_t *v = ctrl_get(m, field);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool proto_ctrl_bool(const struct proto_ctrl *m, const char *field, bool dflt)
{
	json_t *v = ctrl_get(m, field);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

bool proto_ctrl_has(const struct proto_ctrl *m, const char *field)
{
	return ctrl_get(m, field) != NULL;
}

/* Serialises obj compactly and drops the caller's reference. */
static char *dump_and_free(json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	return s;
}

char *proto_ctrl_build(enum proto_msg type, const char *fmt, ...)
{
	const char *name = proto_msg_name(type);
	json_t *obj, *fields = NULL;
	va_list ap;

	if (!name)
		return NULL;
	obj = json_pack("{s:s}", "type", name);
	if (!obj)
		return NULL;
	if (fmt) {
		va_start(ap, fmt);
		fields = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
		/* "type" goes first so logs read naturally; the fields may
		 * not replace it. */
		if (!json_is_object(fields) || json_object_get(fields, "type") ||
		    json_object_update(obj, fields) < 0)
			goto fail;
		json_decref(fields);
	}
	return dump_and_free(obj);
fail:
	json_decref(fields);
	json_decref(obj);
	return NULL;
}

char *proto_ctrl_error(int err, const char *detail)
{
	const struct proto_err_info *info = proto_err_info(err);
	json_t *msg = detail ? json_string(detail) : NULL;

	/* A detail jansson refuses (invalid UTF-8) falls back to the
	 * table's sentence: the peer still learns the machine code. */
	if (!msg)
		msg = json_string(info->message);
	return dump_and_free(json_pack("{s:s, s:s, s:o}", "type", "error",
				       "code", info->code, "message", msg));
}
