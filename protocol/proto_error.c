/*
 * proto_error: the table of refusals a peer can be told, and the helper
 * that writes the "why" sentence every protocol function fills in.
 *
 * The rows are docs/protocol.md's error table, word for word: a client in
 * another language matches on the machine code, a person reads the
 * message, so neither may drift from the document.
 */
#include "protocol/proto_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct proto_err_info err_table[PROTO_E__COUNT] = {
	[PROTO_E_MALFORMED] = {"malformed", 4000, 400,
		"The message could not be understood."},
	[PROTO_E_BAD_VERSION] = {"bad_version", 4001, 400,
		"This version is not supported."},
	[PROTO_E_UNSUPPORTED_OS] = {"unsupported_os", 4002, 400,
		"Only Windows images (system images, or custom images made "
		"from them) can share their desktop."},
	[PROTO_E_UNSUPPORTED_CLIENT] = {"unsupported_client", 4003, 400,
		"This client is not supported: use the Windows, macOS, "
		"hardware terminal or web client."},
	[PROTO_E_BUSY] = {"busy", 4004, 409, PROTO_BUSY_MESSAGE},
	[PROTO_E_BAD_CODE] = {"bad_code", 4005, 404,
		"The collaboration code is not valid. Check it and try again."},
	[PROTO_E_DISCARDED] = {"discarded", 4006, 410,
		"The host discarded the collaboration code."},
	[PROTO_E_ENDED] = {"ended", 4007, 410,
		"The host ended the collaboration."},
	[PROTO_E_EXPIRED] = {"expired", 4008, 410,
		"The request has expired. Send a new one."},
	[PROTO_E_NO_PERMISSION] = {"no_permission", 4009, 403,
		"You do not have the permission this needs."},
	[PROTO_E_TOO_LARGE] = {"too_large", 4010, 413,
		"The message is larger than the relay accepts."},
	[PROTO_E_NO_CONTROL] = {"no_control", 4011, 403,
		"You do not have control of this desktop."},
	[PROTO_E_STATE] = {"bad_state", 4012, 409,
		"That message is not allowed now."},
	[PROTO_E_UNAUTHORIZED] = {"unauthorized", 4013, 401,
		"Sign-in failed: the token is missing, malformed or not valid."},
	[PROTO_E_TOKEN_EXPIRED] = {"token_expired", 4014, 401,
		"Your sign-in has expired. Sign in again."},
	[PROTO_E_OFFLINE] = {"offline", 4015, 404,
		"The desktop is not connected."},
	[PROTO_E_REPLACED] = {"replaced", 4016, 409,
		"This desktop connected again; this older connection was "
		"closed."},
	[PROTO_E_SLOW] = {"slow", 4017, 503,
		"The connection could not keep up and was closed."},
	[PROTO_E_NOT_FOUND] = {"not_found", 4018, 404, "Not found."},
	[PROTO_E_INTERNAL] = {"internal", 4019, 500,
		"The relay could not complete the request. Try again."},
	[PROTO_E_RATE_LIMITED] = {"rate_limited", 4020, 429,
		"Too many failed attempts. Wait and try again."},
	[PROTO_E_HELLO_TIMEOUT] = {"hello_timeout", 4021, 408,
		"No hello arrived in time; the connection was closed."},
	[PROTO_E_TOO_MANY] = {"too_many", 4022, 429,
		"Too many connections for this user or address. Close one "
		"and try again."},
	[PROTO_E_STORAGE] = {"storage_unavailable", 4023, 503,
		"The relay cannot save changes right now (its storage is full, "
		"locked or read-only); nothing was changed. Try again later."},
	[PROTO_E_REDIRECT] = {"redirect", 4024, 421,
		"This desktop is served by another relay; connecting there."},
	[PROTO_E_UNAVAILABLE] = {"unavailable", 4025, 503,
		"The relay cannot reach its cluster right now; try another "
		"relay or again shortly."},
};

const struct proto_err_info *proto_err_info(int err)
{
	/* Callers pass -PROTO_E_* as returned; negate without overflowing
	 * on INT_MIN, which is simply outside the table. */
	if (err < 0 && err > -PROTO_E__COUNT)
		err = -err;
	if (err <= PROTO_OK || err >= PROTO_E__COUNT)
		err = PROTO_E_INTERNAL;
	return &err_table[err];
}

const struct proto_err_info *proto_err_by_code(const char *code)
{
	if (!code)
		return NULL;
	for (int i = PROTO_E_MALFORMED; i < PROTO_E__COUNT; i++)
		if (strcmp(err_table[i].code, code) == 0)
			return &err_table[i];
	return NULL;
}

/* A sentence cut short by the buffer must still be valid UTF-8: it ends
 * up in a JSON string, and jansson refuses invalid UTF-8. */
static void trim_partial_utf8(char *buf, size_t n)
{
	size_t i = n, cont = 0;

	while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80 && cont < 3) {
		i--;
		cont++;
	}
	if (i == 0)
		return;
	unsigned char lead = (unsigned char)buf[i - 1];
	size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
	if (lead >= 0xC0 && cont < need)
		buf[i - 1] = '\0';
}

void proto_err_set(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		buf[0] = '\0';
		return;
	}
	if ((size_t)n >= len)
		trim_partial_utf8(buf, len - 1);
}
