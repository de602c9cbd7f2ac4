/*
 * proto_error: the one table of refusal reasons a peer can be told.
 *
 * Every refusal the relay sends is one row of this table: a stable
 * machine code (the "code" field of an error message), a WebSocket close
 * code in 4000-4999 when the refusal ends the connection, and the human
 * message shown to the person.  docs/protocol.md prints the same table.
 *
 * Functions in protocol/ return 0 on success or -PROTO_E_* on failure.
 */
#ifndef ASP_PROTO_ERROR_H
#define ASP_PROTO_ERROR_H

#include <stddef.h>

enum proto_err {
	PROTO_OK = 0,
	PROTO_E_MALFORMED,        /* unparseable or invalid message */
	PROTO_E_BAD_VERSION,      /* ASP or client version below the gate */
	PROTO_E_UNSUPPORTED_OS,   /* host image is not Windows */
	PROTO_E_UNSUPPORTED_CLIENT, /* client type unknown */
	PROTO_E_BUSY,             /* the guest slot is taken */
	PROTO_E_BAD_CODE,         /* no collaboration has this code */
	PROTO_E_DISCARDED,        /* the code was discarded while joined */
	PROTO_E_ENDED,            /* the host ended the collaboration */
	PROTO_E_EXPIRED,          /* a request or invitation expired */
	PROTO_E_NO_PERMISSION,    /* a permission is off for this user */
	PROTO_E_TOO_LARGE,        /* message over the configured maximum */
	PROTO_E_NO_CONTROL,       /* input sent without holding control */
	PROTO_E_STATE,            /* message not valid in this state */
	PROTO_E_UNAUTHORIZED,     /* token missing, malformed or forged */
	PROTO_E_TOKEN_EXPIRED,    /* token past its expiry */
	PROTO_E_OFFLINE,          /* the desktop has no host connected */
	PROTO_E_REPLACED,         /* a newer connection took this place */
	PROTO_E_SLOW,             /* viewer made no progress for too long */
	PROTO_E_NOT_FOUND,        /* unknown id (admin API, assistance) */
	PROTO_E_INTERNAL,         /* the relay failed; nothing was lost */
	PROTO_E_RATE_LIMITED,     /* too many failed attempts: wait */
	PROTO_E_HELLO_TIMEOUT,    /* no hello within --hello-timeout */
	PROTO_E_TOO_MANY,         /* an operator's connection limit */
	PROTO_E_STORAGE,          /* disk full, store locked or read-only */
	PROTO_E_REDIRECT,         /* cluster: the desktop is on another node */
	PROTO_E_UNAVAILABLE,      /* cluster: Redis or the lease is lost */
	PROTO_E__COUNT
};

struct proto_err_info {
	const char *code;     /* stable machine code, e.g. "busy" */
	int close_code;       /* WebSocket close code, 4000-4999 */
	int http_status;      /* status for the admin API */
	const char *message;  /* human message, shown verbatim */
};

/* The exact message the product shows when the guest slot is taken. */
#define PROTO_BUSY_MESSAGE \
	"The user is in a collaboration and cannot establish a session " \
	"with you. Please connect later."

/* Row for err (positive or negative); PROTO_E_INTERNAL's row for any
 * value outside the table, so the result is never NULL. */
const struct proto_err_info *proto_err_info(int err);

/* The row whose machine code is `code`, or NULL. */
const struct proto_err_info *proto_err_by_code(const char *code);

/* Writes "why" into buf (always NUL-terminated, truncated to len). */
void proto_err_set(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
