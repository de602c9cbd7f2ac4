/*
 * proto_token: mints and verifies HMAC-SHA256 signed tokens, and loads the
 * relay's signing secret.  See the header for the format.
 *
 * Verification order matters: the signature is checked (in constant time)
 * before a single byte of the claims is decoded or parsed, so a forger
 * never reaches the JSON parser, and the base64url decoder is strict
 * (no padding, no stray characters, zero trailing bits) so one token has
 * exactly one spelling.
 */
#include "protocol/proto_token.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "protocol/proto_error.h"

#define SIG_LEN 32 /* SHA-256 output */
/* Decoded claims can be no longer than 3/4 of a maximal token. */
#define CLAIMS_MAX (PROTO_TOKEN_MAX / 4 * 3 + 3)

static const char B64URL[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Characters base64url needs for n bytes, without padding. */
static size_t b64_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes the encoding of in (b64_len(n) characters, no NUL) to out. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = B64URL[v >> 18 & 63];
		out[o++] = B64URL[v >> 12 & 63];
		if (left > 1)
			out[o++] = B64URL[v >> 6 & 63];
		if (left > 2)
			out[o++] = B64URL[v & 63];
	}
}

/* The 6-bit value of a base64url character, or -1. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes n characters of in into out (room for cap bytes).  The decoded
 * length, or -1 if the text is not canonical unpadded base64url or does
 * not fit. */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, or two spellings would decode alike. */
	if (acc & ((1u << bits) - 1))
		return -1;
	return (long)o;
}

static int token_hmac(const uint8_t *secret, size_t secret_len,
		      const char *text, size_t len, uint8_t sig[SIG_LEN])
{
	unsigned sig_len = 0;

	if (secret_len > INT_MAX ||
	    !HMAC(EVP_sha256(), secret, (int)secret_len,
		  (const unsigned char *)text, len, sig, &sig_len) ||
	    sig_len != SIG_LEN)
		return -PROTO_E_INTERNAL;
	return 0;
}

int proto_token_sign(const uint8_t *secret, size_t secret_len,
		     const void *payload, size_t payload_len, char *out,
		     size_t out_len)
{
	uint8_t sig[SIG_LEN];
	size_t head, need;
	int rc;

	if (out_len > 0)
		out[0] = '\0';
	if (!secret || secret_len == 0)
		return -PROTO_E_MALFORMED;
	if (payload_len > CLAIMS_MAX)
		return -PROTO_E_TOO_LARGE;
	head = b64_len(payload_len);
	need = head + 1 + b64_len(SIG_LEN) + 1;
	if (need > out_len || need - 1 > PROTO_TOKEN_MAX)
		return -PROTO_E_TOO_LARGE;
	b64_encode(payload, payload_len, out);
	rc = token_hmac(secret, secret_len, out, head, sig);
	if (rc < 0) {
		out[0] = '\0';
		return rc;
	}
	out[head] = '.';
	b64_encode(sig, SIG_LEN, out + head + 1);
	out[need - 1] = '\0';
	OPENSSL_cleanse(sig, sizeof sig);
	return 0;
}

static bool id_valid(const char *s, const char *extra)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];

		if (n == PROTO_TOKEN_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || strchr(extra, c)))
			return false;
	}
	return n > 0;
}

bool proto_token_user_valid(const char *s)
{
	return id_valid(s, "._@-");
}

bool proto_token_desktop_valid(const char *s)
{
	return id_valid(s, "._-");
}

const char *proto_role_name(enum proto_role role)
{
	return role == PROTO_ROLE_ADMIN ? "admin" : "user";
}

int proto_role_parse(const char *s, enum proto_role *out)
{
	if (s && strcmp(s, "user") == 0)
		*out = PROTO_ROLE_USER;
	else if (s && strcmp(s, "admin") == 0)
		*out = PROTO_ROLE_ADMIN;
	else
		return -PROTO_E_MALFORMED;
	return 0;
}

static bool claims_valid(const struct proto_claims *c)
{
	return proto_token_user_valid(c->user) &&
	       (c->role == PROTO_ROLE_USER || c->role == PROTO_ROLE_ADMIN) &&
	       (c->desktop[0] == '\0' ||
		proto_token_desktop_valid(c->desktop)) &&
	       c->exp <= INT64_MAX && c->iat <= INT64_MAX;
}

static json_t *claims_to_json(const struct proto_claims *c)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "u", c->user, "r",
			      proto_role_name(c->role), "exp",
			      (json_int_t)c->exp, "iat", (json_int_t)c->iat);

	if (j && c->desktop[0] &&
	    json_object_set_new(j, "d", json_string(c->desktop)) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int proto_token_mint(const uint8_t *secret, size_t secret_len,
		     const struct proto_claims *claims, char *out,
		     size_t out_len)
{
	json_t *j;
	char *text;
	int rc;

	if (out_len > 0)
		out[0] = '\0';
	if (!claims || !claims_valid(claims))
		return -PROTO_E_MALFORMED;
	j = claims_to_json(claims);
	text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text)
		return -PROTO_E_INTERNAL;
	rc = proto_token_sign(secret, secret_len, text, strlen(text), out,
			      out_len);
	free(text);
	return rc;
}

/* Copies a valid id member into dst; false if it is absent or invalid. */
static bool claim_id(json_t *obj, const char *key, char *dst,
		     bool (*valid)(const char *))
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (!s || !valid(s))
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

/* A unix time member: a JSON integer in 0..INT64_MAX. */
static bool claim_time(json_t *obj, const char *key, uint64_t *dst)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*dst = (uint64_t)json_integer_value(v);
	return true;
}

static int claims_parse(const uint8_t *text, size_t len,
			struct proto_claims *out)
{
	json_t *obj = json_loadb((const char *)text, len,
				 JSON_REJECT_DUPLICATES, NULL);
	json_t *d;
	bool ok;

	ok = json_is_object(obj) &&
	     claim_id(obj, "u", out->user, proto_token_user_valid) &&
	     proto_role_parse(json_string_value(json_object_get(obj, "r")),
			      &out->role) == 0 &&
	     claim_time(obj, "exp", &out->exp) &&
	     claim_time(obj, "iat", &out->iat);
	d = ok ? json_object_get(obj, "d") : NULL;
	if (d && !claim_id(obj, "d", out->desktop, proto_token_desktop_valid))
		ok = false;
	json_decref(obj);
	return ok ? 0 : -PROTO_E_UNAUTHORIZED;
}

/* Checks the signature of a token of length len whose dot is at head. */
static int token_check_sig(const uint8_t *secret, size_t secret_len,
			   const char *token, size_t head, size_t len)
{
	uint8_t want[SIG_LEN], got[SIG_LEN + 1];
	long got_len;
	int rc;

	got_len = b64_decode(token + head + 1, len - head - 1, got,
			     sizeof got);
	if (got_len != SIG_LEN)
		return -PROTO_E_UNAUTHORIZED;
	rc = token_hmac(secret, secret_len, token, head, want);
	if (rc == 0 && CRYPTO_memcmp(want, got, SIG_LEN) != 0)
		rc = -PROTO_E_UNAUTHORIZED;
	OPENSSL_cleanse(want, sizeof want);
	return rc;
}

static int token_verify(const uint8_t *secret, size_t secret_len,
			const char *token, uint64_t now_s,
			struct proto_claims *out)
{
	uint8_t claims[CLAIMS_MAX];
	const char *dot;
	size_t len;
	long n;
	int rc;

	if (!secret || secret_len == 0 || !token)
		return -PROTO_E_UNAUTHORIZED;
	len = strnlen(token, PROTO_TOKEN_MAX + 1);
	dot = memchr(token, '.', len);
	if (len > PROTO_TOKEN_MAX || !dot || dot == token)
		return -PROTO_E_UNAUTHORIZED;
	rc = token_check_sig(secret, secret_len, token, (size_t)(dot - token),
			     len);
	if (rc < 0)
		return rc;
	n = b64_decode(token, (size_t)(dot - token), claims, sizeof claims);
	if (n <= 0)
		return -PROTO_E_UNAUTHORIZED;
	rc = claims_parse(claims, (size_t)n, out);
	if (rc < 0)
		return rc;
	return out->exp <= now_s ? -PROTO_E_TOKEN_EXPIRED : 0;
}

int proto_token_verify(const uint8_t *secret, size_t secret_len,
		       const char *token, uint64_t now_s,
		       struct proto_claims *out)
{
	int rc;

	memset(out, 0, sizeof *out);
	rc = token_verify(secret, secret_len, token, now_s, out);
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* Reads exactly n bytes; false on a short read or an error. */
static bool read_full(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static int secret_read(int fd, uint8_t out[PROTO_TOKEN_SECRET_LEN])
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -PROTO_E_INTERNAL;
	/* A secret others can read is a secret others can forge with. */
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    st.st_size != PROTO_TOKEN_SECRET_LEN)
		return -PROTO_E_UNAUTHORIZED;
	return read_full(fd, out, PROTO_TOKEN_SECRET_LEN) ? 0
							  : -PROTO_E_INTERNAL;
}

/* Creates path with fresh random bytes: 1 if it already existed (the
 * caller reads it instead), 0 when written, or a negative code. */
static int secret_create(const char *path)
{
	uint8_t rnd[PROTO_TOKEN_SECRET_LEN];
	int fd, rc = 0;

	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return -PROTO_E_INTERNAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		OPENSSL_cleanse(rnd, sizeof rnd);
		return errno == EEXIST ? 1 : -PROTO_E_INTERNAL;
	}
	if (write(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd || fsync(fd) < 0)
		rc = -PROTO_E_INTERNAL;
	OPENSSL_cleanse(rnd, sizeof rnd);
	if (close(fd) < 0 && rc == 0)
		rc = -PROTO_E_INTERNAL;
	/* A half-written secret would be refused forever: remove it. */
	if (rc < 0)
		unlink(path);
	return rc;
}

static int secret_load(const char *path, bool create,
		       uint8_t out[PROTO_TOKEN_SECRET_LEN])
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		rc = secret_create(path);
		if (rc < 0)
			return rc;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return errno == ENOENT ? -PROTO_E_NOT_FOUND
		       : errno == ELOOP ? -PROTO_E_UNAUTHORIZED
					: -PROTO_E_INTERNAL;
	rc = secret_read(fd, out);
	close(fd);
	return rc;
}

int proto_token_secret_load(const char *data_dir, bool create,
			    uint8_t out[PROTO_TOKEN_SECRET_LEN])
{
	char path[PATH_MAX];
	int n, rc;

	memset(out, 0, PROTO_TOKEN_SECRET_LEN);
	n = snprintf(path, sizeof path, "%s/secret", data_dir ? data_dir : "");
	if (!data_dir || n < 0 || (size_t)n >= sizeof path) {
		errno = ENAMETOOLONG;
		return -PROTO_E_INTERNAL;
	}
	rc = secret_load(path, create, out);
	if (rc < 0)
		OPENSSL_cleanse(out, PROTO_TOKEN_SECRET_LEN);
	return rc;
}
