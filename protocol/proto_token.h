/*
 * proto_token: signed sign-in tokens for hosts, viewers and administrators.
 *
 * A token is two base64url parts (no padding) joined by a dot:
 *
 *     base64url(claims JSON) "." base64url(HMAC-SHA256(secret, first part))
 *
 * The HMAC covers the first part exactly as it appears in the token, so
 * the claims are checked only after the signature is.  Claims:
 *
 *     {"u":"dana@example","r":"user","d":"desk-42","exp":1764000000,
 *      "iat":1763913600}
 *
 *   u    user id, 1-64 characters from A-Z a-z 0-9 . _ @ -
 *   r    "user" or "admin"
 *   d    optional desktop id (hosts), 1-64 characters from A-Z a-z 0-9 . _ -
 *   exp  expiry, unix seconds: the token is refused once exp <= now
 *   iat  issue time, unix seconds
 *
 * Other members are ignored (room for later claims); duplicate members are
 * refused.  The whole token is at most PROTO_TOKEN_MAX characters.
 *
 * Everything here is pure (no globals, no sockets, no logging) except
 * proto_token_secret_load(), the one function that touches files.  The
 * secret is never logged or copied anywhere but the caller's buffer.
 */
#ifndef ASP_PROTO_TOKEN_H
#define ASP_PROTO_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest token accepted, in characters (without the NUL). */
#define PROTO_TOKEN_MAX 1024
/* Buffer size that holds any token mint can produce. */
#define PROTO_TOKEN_BUF (PROTO_TOKEN_MAX + 1)
/* Longest user id and desktop id, in characters. */
#define PROTO_TOKEN_ID_MAX 64
/* Size of the signing secret kept in DATA_DIR/secret. */
#define PROTO_TOKEN_SECRET_LEN 32

enum proto_role {
	PROTO_ROLE_USER = 0,
	PROTO_ROLE_ADMIN,
};

struct proto_claims {
	char user[PROTO_TOKEN_ID_MAX + 1];
	enum proto_role role;
	char desktop[PROTO_TOKEN_ID_MAX + 1]; /* "" when the token has none */
	uint64_t exp;                         /* unix seconds */
	uint64_t iat;                         /* unix seconds */
};

/* Writes the token for *claims into out (NUL-terminated).  0;
 * -PROTO_E_MALFORMED if a claim is invalid (user or desktop id, role,
 * exp or iat above INT64_MAX) or secret_len is 0; -PROTO_E_TOO_LARGE if
 * out_len is too small (PROTO_TOKEN_BUF always suffices);
 * -PROTO_E_INTERNAL if OpenSSL fails.  On failure out is "". */
int proto_token_mint(const uint8_t *secret, size_t secret_len,
		     const struct proto_claims *claims, char *out,
		     size_t out_len);

/* Checks token's signature, then its claims, then its expiry against
 * now_s.  0 and *out filled; -PROTO_E_UNAUTHORIZED when the token is
 * malformed, forged, longer than PROTO_TOKEN_MAX, badly encoded, not
 * JSON, or its claims are missing or invalid; -PROTO_E_TOKEN_EXPIRED
 * when it is genuine but exp <= now_s.  On failure *out is zeroed. */
int proto_token_verify(const uint8_t *secret, size_t secret_len,
		       const char *token, uint64_t now_s,
		       struct proto_claims *out);

/* Signs an arbitrary payload as the first part of a token.  mint uses
 * it; tests and the fuzz driver use it to make genuine tokens whose
 * claims mint would refuse.  Returns as mint does (except that any
 * payload is accepted). */
int proto_token_sign(const uint8_t *secret, size_t secret_len,
		     const void *payload, size_t payload_len, char *out,
		     size_t out_len);

/* Whether s is a valid user id (1-64 of A-Z a-z 0-9 . _ @ -). */
bool proto_token_user_valid(const char *s);
/* Whether s is a valid desktop id (1-64 of A-Z a-z 0-9 . _ -). */
bool proto_token_desktop_valid(const char *s);
/* "user" or "admin"; and back (-PROTO_E_MALFORMED for anything else). */
const char *proto_role_name(enum proto_role role);
int proto_role_parse(const char *s, enum proto_role *out);

/* Reads the signing secret from DATA_DIR/secret into out.  When the file
 * is missing and create is true, draws PROTO_TOKEN_SECRET_LEN random
 * bytes (RAND_bytes) and writes them to a new file of mode 0600 (created
 * with O_EXCL, so two processes starting together agree on one secret);
 * data_dir itself must already exist.  Returns 0;
 * -PROTO_E_NOT_FOUND when the file is missing and create is false;
 * -PROTO_E_UNAUTHORIZED when the file is not a regular file, is
 * accessible to group or others, or is not exactly
 * PROTO_TOKEN_SECRET_LEN bytes (refused rather than trusted);
 * -PROTO_E_INTERNAL on any other failure, with errno set.  On failure
 * out is zeroed. */
int proto_token_secret_load(const char *data_dir, bool create,
			    uint8_t out[PROTO_TOKEN_SECRET_LEN]);

#endif
