/*
 * Unit tests for proto_token: a minted token verifies to the same claims
 * and matches an independent implementation (Node's crypto) byte for
 * byte; anything forged, mangled, oversized or with bad claims is
 * unauthorized; an old token is expired; and the secret file is created
 * private and refused when it is not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "protocol/proto_error.h"
#include "protocol/proto_token.h"

#define NOW 1800000000u

static uint8_t secret[PROTO_TOKEN_SECRET_LEN];

static struct proto_claims claims_of(const char *user, enum proto_role role,
				     const char *desktop, uint64_t exp)
{
	struct proto_claims c;

	memset(&c, 0, sizeof c);
	snprintf(c.user, sizeof c.user, "%s", user);
	snprintf(c.desktop, sizeof c.desktop, "%s", desktop);
	c.role = role;
	c.exp = exp;
	c.iat = NOW - 10;
	return c;
}

static int setup_secret(void **state)
{
	(void)state;
	memset(secret, 0x6b, sizeof secret);
	return 0;
}

/* Verifies token with the test secret at NOW and checks the result. */
static void expect_verify(const char *token, int want)
{
	struct proto_claims out;
	int rc = proto_token_verify(secret, sizeof secret, token, NOW, &out);

	if (rc != want)
		fail_msg("token \"%s\": got %d (%s), want %d (%s)",
			 token ? token : "(null)", rc, proto_err_info(rc)->code,
			 want, proto_err_info(want)->code);
	if (rc < 0 && (out.user[0] || out.exp))
		fail_msg("token \"%s\": claims not cleared on failure", token);
}

/* Signs a raw claims payload with the test secret. */
static void expect_payload(const char *json, int want)
{
	char tok[PROTO_TOKEN_BUF];

	assert_int_equal(proto_token_sign(secret, sizeof secret, json,
					  strlen(json), tok, sizeof tok), 0);
	if (proto_token_verify(secret, sizeof secret, tok, NOW,
			       &(struct proto_claims){0}) != want)
		fail_msg("claims %s: want %d", json, want);
}

static void test_round_trip(void **state)
{
	struct proto_claims c = claims_of("dana.k@example-1.org", PROTO_ROLE_USER,
					  "desk-42", NOW + 60);
	struct proto_claims out;
	char tok[PROTO_TOKEN_BUF];

	(void)state;
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	assert_int_equal(proto_token_verify(secret, sizeof secret, tok, NOW,
					    &out), 0);
	assert_string_equal(out.user, "dana.k@example-1.org");
	assert_string_equal(out.desktop, "desk-42");
	assert_int_equal(out.role, PROTO_ROLE_USER);
	assert_int_equal(out.exp, NOW + 60);
	assert_int_equal(out.iat, NOW - 10);

	c = claims_of("root", PROTO_ROLE_ADMIN, "", NOW + 1);
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	assert_int_equal(proto_token_verify(secret, sizeof secret, tok, NOW,
					    &out), 0);
	assert_int_equal(out.role, PROTO_ROLE_ADMIN);
	assert_string_equal(out.desktop, "");
}

/* The format is a contract with other implementations (the e2e tests
 * mint tokens in Node): this token was made with Node's crypto. */
static void test_matches_node(void **state)
{
	static const char node_tok[] =
		"eyJleHAiOjIwMDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwiciI6ImFkbWlu"
		"IiwidSI6InJvb3RAZXhhbXBsZS5jb20ifQ."
		"U8x5v2e8bYHe2zC3PujkxaFKsdl8A5rrVfBKLCOT84E";
	struct proto_claims c = claims_of("root@example.com", PROTO_ROLE_ADMIN,
					  "", 2000000000);
	char tok[PROTO_TOKEN_BUF];

	(void)state;
	c.iat = 1700000000;
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	assert_string_equal(tok, node_tok);
	expect_verify(node_tok, 0);
}

static void test_expiry(void **state)
{
	struct proto_claims c = claims_of("u", PROTO_ROLE_USER, "", NOW);
	char tok[PROTO_TOKEN_BUF];

	(void)state;
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	expect_verify(tok, -PROTO_E_TOKEN_EXPIRED);
	c.exp = 0;
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	expect_verify(tok, -PROTO_E_TOKEN_EXPIRED);
	c.exp = NOW + 1;
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	expect_verify(tok, 0);
}

static void test_forgery(void **state)
{
	struct proto_claims c = claims_of("alice", PROTO_ROLE_USER, "", NOW + 60);
	struct proto_claims admin = claims_of("alice", PROTO_ROLE_ADMIN, "",
					      NOW + 60);
	uint8_t other[PROTO_TOKEN_SECRET_LEN];
	char tok[PROTO_TOKEN_BUF], forged[PROTO_TOKEN_BUF * 2];
	char *dot;

	(void)state;
	memset(other, 0x6c, sizeof other);
	/* Signed with another secret. */
	assert_int_equal(proto_token_mint(other, sizeof other, &c, tok,
					  sizeof tok), 0);
	expect_verify(tok, -PROTO_E_UNAUTHORIZED);
	/* Claims promoted to admin, signature kept. */
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), 0);
	dot = strchr(tok, '.');
	assert_int_equal(proto_token_mint(secret, sizeof secret, &admin, forged,
					  sizeof forged), 0);
	strcpy(strchr(forged, '.'), dot);
	expect_verify(forged, -PROTO_E_UNAUTHORIZED);
	/* One character of the signature changed. */
	strcpy(forged, tok);
	forged[strlen(forged) - 2] ^= 1;
	expect_verify(forged, -PROTO_E_UNAUTHORIZED);
	/* Signature truncated, doubled, or missing. */
	strcpy(forged, tok);
	forged[strlen(forged) - 4] = '\0';
	expect_verify(forged, -PROTO_E_UNAUTHORIZED);
	snprintf(forged, sizeof forged, "%s%s", tok, dot + 1);
	expect_verify(forged, -PROTO_E_UNAUTHORIZED);
	snprintf(forged, sizeof forged, "%.*s.", (int)(dot - tok), tok);
	expect_verify(forged, -PROTO_E_UNAUTHORIZED);
	/* The last signature character with non-zero trailing bits decodes
	 * to the same bytes but is not the canonical spelling. */
	strcpy(forged, tok);
	forged[strlen(forged) - 1] |= 1;
	if (strcmp(forged, tok) != 0)
		expect_verify(forged, -PROTO_E_UNAUTHORIZED);
	expect_verify(tok, 0);
}

static void test_malformed(void **state)
{
	char big[PROTO_TOKEN_MAX + 16];

	(void)state;
	expect_verify(NULL, -PROTO_E_UNAUTHORIZED);
	expect_verify("", -PROTO_E_UNAUTHORIZED);
	expect_verify("abc", -PROTO_E_UNAUTHORIZED);
	expect_verify(".", -PROTO_E_UNAUTHORIZED);
	expect_verify(".abc", -PROTO_E_UNAUTHORIZED);
	expect_verify("a.b.c", -PROTO_E_UNAUTHORIZED);
	expect_verify("eyJ1IjoiYSJ9.====", -PROTO_E_UNAUTHORIZED);
	expect_verify("ey J1.abcd", -PROTO_E_UNAUTHORIZED);
	memset(big, 'A', sizeof big);
	big[sizeof big - 1] = '\0';
	big[10] = '.';
	expect_verify(big, -PROTO_E_UNAUTHORIZED);
	/* The empty secret never verifies. */
	assert_int_equal(proto_token_verify(secret, 0, "a.b", NOW,
					    &(struct proto_claims){0}),
			 -PROTO_E_UNAUTHORIZED);
}

/* Genuine signatures over claims that are not acceptable. */
static void test_bad_claims(void **state)
{
	(void)state;
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1}", 0);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1,\"later\":[1,2]}", 0);
	expect_payload("not json", -PROTO_E_UNAUTHORIZED);
	expect_payload("", -PROTO_E_UNAUTHORIZED);
	expect_payload("[1]", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"root\",\"exp\":1900000000,"
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"Admin\",\"exp\":1900000000,"
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"r\":\"user\",\"exp\":1900000000,\"iat\":1}",
		       -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a b\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		       "aaaaaaaaaaaaaaaaaa\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":\"1900000000\","
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":-1,\"iat\":1}",
		       -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":1900000000.5,"
		       "\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":1900000000}",
		       -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1,\"d\":null}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\",\"r\":\"user\",\"exp\":1900000000,"
		       "\"iat\":1,\"d\":\"a@b\"}", -PROTO_E_UNAUTHORIZED);
	/* A duplicate would let two readers see different users. */
	expect_payload("{\"u\":\"a\",\"u\":\"root\",\"r\":\"user\","
		       "\"exp\":1900000000,\"iat\":1}", -PROTO_E_UNAUTHORIZED);
	expect_payload("{\"u\":\"a\\u0000b\",\"r\":\"user\","
		       "\"exp\":1900000000,\"iat\":1}", -PROTO_E_UNAUTHORIZED);
}

static void test_mint_refuses(void **state)
{
	struct proto_claims c = claims_of("ok", PROTO_ROLE_USER, "", NOW + 60);
	char tok[PROTO_TOKEN_BUF];

	(void)state;
	c.user[0] = '\0';
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), -PROTO_E_MALFORMED);
	assert_string_equal(tok, "");
	c = claims_of("a/b", PROTO_ROLE_USER, "", NOW + 60);
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), -PROTO_E_MALFORMED);
	c = claims_of("ok", PROTO_ROLE_USER, "desk 1", NOW + 60);
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), -PROTO_E_MALFORMED);
	c = claims_of("ok", (enum proto_role)7, "", NOW + 60);
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), -PROTO_E_MALFORMED);
	c = claims_of("ok", PROTO_ROLE_USER, "", UINT64_MAX);
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok,
					  sizeof tok), -PROTO_E_MALFORMED);
	c = claims_of("ok", PROTO_ROLE_USER, "", NOW + 60);
	assert_int_equal(proto_token_mint(secret, 0, &c, tok, sizeof tok),
			 -PROTO_E_MALFORMED);
	assert_int_equal(proto_token_mint(secret, sizeof secret, &c, tok, 20),
			 -PROTO_E_TOO_LARGE);
	assert_string_equal(tok, "");
}

static void test_ids(void **state)
{
	(void)state;
	assert_true(proto_token_user_valid("a.b_c@d-e"));
	assert_false(proto_token_user_valid(""));
	assert_false(proto_token_user_valid(NULL));
	assert_false(proto_token_user_valid("é"));
	assert_true(proto_token_desktop_valid("desk-42"));
	assert_false(proto_token_desktop_valid("desk@42"));
	assert_true(proto_token_user_valid(
		"0123456789012345678901234567890123456789012345678901234567890123"));
	assert_false(proto_token_user_valid(
		"01234567890123456789012345678901234567890123456789012345678901234"));
}

/* A private scratch directory; removed with its files by rm_dir. */
static void make_dir(char dir[64])
{
	snprintf(dir, 64, "/tmp/asp-token-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void rm_dir(const char *dir)
{
	char path[128];

	snprintf(path, sizeof path, "%s/secret", dir);
	unlink(path);
	rmdir(dir);
}

static void write_file(const char *dir, size_t len, mode_t mode)
{
	char path[128];
	uint8_t buf[64] = {1};
	FILE *f;

	snprintf(path, sizeof path, "%s/secret", dir);
	unlink(path);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_secret_create_and_reload(void **state)
{
	uint8_t a[PROTO_TOKEN_SECRET_LEN], b[PROTO_TOKEN_SECRET_LEN];
	uint8_t zero[PROTO_TOKEN_SECRET_LEN] = {0};
	char dir[64], path[128];
	struct stat st;

	(void)state;
	make_dir(dir);
	assert_int_equal(proto_token_secret_load(dir, false, a),
			 -PROTO_E_NOT_FOUND);
	assert_int_equal(proto_token_secret_load(dir, true, a), 0);
	assert_memory_not_equal(a, zero, sizeof a);
	snprintf(path, sizeof path, "%s/secret", dir);
	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 0777) != 0600)
		fail_msg("secret mode %o, want 600", st.st_mode & 0777);
	assert_int_equal(st.st_size, PROTO_TOKEN_SECRET_LEN);
	/* Loading again, with or without create, gives the same secret. */
	assert_int_equal(proto_token_secret_load(dir, true, b), 0);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(proto_token_secret_load(dir, false, b), 0);
	assert_memory_equal(a, b, sizeof a);
	rm_dir(dir);
	/* A missing directory is not silently created. */
	assert_int_equal(proto_token_secret_load(dir, true, a),
			 -PROTO_E_INTERNAL);
	assert_memory_equal(a, zero, sizeof a);
}

static void test_secret_refused(void **state)
{
	uint8_t out[PROTO_TOKEN_SECRET_LEN];
	uint8_t zero[PROTO_TOKEN_SECRET_LEN] = {0};
	char dir[64], path[128];

	(void)state;
	make_dir(dir);
	write_file(dir, PROTO_TOKEN_SECRET_LEN, 0600);
	assert_int_equal(proto_token_secret_load(dir, false, out), 0);
	write_file(dir, PROTO_TOKEN_SECRET_LEN, 0640);
	assert_int_equal(proto_token_secret_load(dir, true, out),
			 -PROTO_E_UNAUTHORIZED);
	assert_memory_equal(out, zero, sizeof out);
	write_file(dir, PROTO_TOKEN_SECRET_LEN, 0604);
	assert_int_equal(proto_token_secret_load(dir, true, out),
			 -PROTO_E_UNAUTHORIZED);
	write_file(dir, 16, 0600);
	assert_int_equal(proto_token_secret_load(dir, true, out),
			 -PROTO_E_UNAUTHORIZED);
	write_file(dir, 33, 0600);
	assert_int_equal(proto_token_secret_load(dir, true, out),
			 -PROTO_E_UNAUTHORIZED);
	/* A symlink could point the relay at any file. */
	snprintf(path, sizeof path, "%s/secret", dir);
	unlink(path);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_int_equal(proto_token_secret_load(dir, true, out),
			 -PROTO_E_UNAUTHORIZED);
	rm_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_matches_node),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_forgery),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_claims),
		cmocka_unit_test(test_mint_refuses),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_secret_create_and_reload),
		cmocka_unit_test(test_secret_refused),
	};

	return cmocka_run_group_tests(tests, setup_secret, NULL);
}
