/*
 * proto_ctrl: JSON control messages (WebSocket text messages).
 *
 * Every control message is a JSON object with a string "type".  What the
 * other fields must be depends on the type and on who sends it, so the
 * parser takes the direction and checks the message against one schema
 * table (proto_ctrl.c; docs/protocol.md prints it).  Unknown fields are
 * ignored; a missing or mistyped required field is an error naming it.
 *
 * Parsing and building use jansson.  Ownership: a parsed message owns a
 * reference to its JSON tree until proto_ctrl_release(); strings returned
 * by the accessors live exactly as long.  Built messages are malloc'd
 * NUL-terminated compact JSON the caller frees with free().
 */
#ifndef ASP_PROTO_CTRL_H
#define ASP_PROTO_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct json_t json_t;

/* The largest control message anyone may send. */
#define PROTO_CTRL_MAX_LEN (64 * 1024)
/* The longest string field value (names, codes, ids, versions). */
#define PROTO_CTRL_MAX_STR 256

enum proto_dir {
	PROTO_DIR_HOST_TO_RELAY = 1 << 0,
	PROTO_DIR_VIEWER_TO_RELAY = 1 << 1,
	PROTO_DIR_RELAY_TO_HOST = 1 << 2,
	PROTO_DIR_RELAY_TO_VIEWER = 1 << 3,
};

enum proto_msg {
	PROTO_MSG_HELLO,
	PROTO_MSG_WELCOME,
	PROTO_MSG_ERROR,
	PROTO_MSG_SHARE,
	PROTO_MSG_CODE,
	PROTO_MSG_DISCARD,
	PROTO_MSG_END,
	PROTO_MSG_JOIN,
	PROTO_MSG_JOINED,
	PROTO_MSG_LEAVE,
	PROTO_MSG_NOTIFY,
	PROTO_MSG_CONTROL,
	PROTO_MSG_METRICS,
	PROTO_MSG_ECHO,
	PROTO_MSG_KEYFRAME,
	PROTO_MSG_STREAM,
	PROTO_MSG_ASSIST_REQUEST,
	PROTO_MSG_ASSIST_INVITE,
	PROTO_MSG_ASSIST_ACCEPT,
	PROTO_MSG_ASSIST_DECLINE,
	PROTO_MSG_ASSIST_END,
	PROTO_MSG__COUNT
};

struct proto_ctrl {
	enum proto_msg type;
	json_t *root;
};

/* Name of a message type as sent on the wire ("hello"); NULL if out of
 * range. */
const char *proto_msg_name(enum proto_msg type);

/* Parses len bytes of text (need not be NUL-terminated) sent in direction
 * dir.  0 and a message to release, or -PROTO_E_MALFORMED (bad JSON, not
 * an object, too long, unknown type, type not valid in this direction,
 * missing or mistyped field, string over PROTO_CTRL_MAX_STR) or
 * -PROTO_E_TOO_LARGE, with a sentence in why naming the field. */
int proto_ctrl_parse(const char *text, size_t len, enum proto_dir dir,
		     struct proto_ctrl *out, char *why, size_t why_len);
void proto_ctrl_release(struct proto_ctrl *m);

/* Field accessors.  The parser has checked the types of every field the
 * schema knows, so these only say whether an optional field is present. */
const char *proto_ctrl_str(const struct proto_ctrl *m, const char *field);
int64_t proto_ctrl_int(const struct proto_ctrl *m, const char *field,
		       int64_t dflt);
bool proto_ctrl_bool(const struct proto_ctrl *m, const char *field, bool dflt);
bool proto_ctrl_has(const struct proto_ctrl *m, const char *field);

/* Builds {"type": name, ...fields} where fmt/... are jansson json_pack
 * arguments for an object (e.g. "{s:s, s:i}") or NULL for no fields.
 * Returns malloc'd compact JSON, or NULL on out-of-memory or a bad fmt. */
char *proto_ctrl_build(enum proto_msg type, const char *fmt, ...);

/* Builds an error message for err from the table, with `detail` as its
 * message when given (it replaces the table's sentence; see
 * docs/protocol.md).  Never returns NULL except on out-of-memory. */
char *proto_ctrl_error(int err, const char *detail);

#endif
