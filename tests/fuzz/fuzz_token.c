/*
 * fuzz_token: libFuzzer driver for proto_token_verify, which parses
 * tokens from anyone who connects.
 *
 * The first input byte picks the mode.  Even: the rest is the token as
 * sent, which almost never gets past the signature check.  Odd: the rest
 * is a claims payload that the driver signs first, so the base64url
 * decoder, the JSON parser and the claims checks are fuzzed behind the
 * signature too.  Whatever verifies must re-mint to a token that
 * verifies to the same claims, and every failure must be one of the two
 * documented codes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_error.h"
#include "protocol/proto_token.h"

#define NOW 1800000000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[PROTO_TOKEN_SECRET_LEN] = "fuzz-secret-fuzz-secret-fuzz-se";

/* A verified token's claims survive mint + verify unchanged. */
static void check_round_trip(const struct proto_claims *c)
{
	struct proto_claims again;
	char tok[PROTO_TOKEN_BUF];

	if (proto_token_mint(SECRET, sizeof SECRET, c, tok, sizeof tok) != 0 ||
	    proto_token_verify(SECRET, sizeof SECRET, tok, NOW, &again) != 0 ||
	    memcmp(c, &again, sizeof again) != 0)
		abort();
}

static void check(const char *token)
{
	struct proto_claims c;
	int rc = proto_token_verify(SECRET, sizeof SECRET, token, NOW, &c);

	if (rc == 0)
		check_round_trip(&c);
	else if (rc != -PROTO_E_UNAUTHORIZED && rc != -PROTO_E_TOKEN_EXPIRED)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1 || size > 4096)
		return 0;
	if (data[0] & 1) {
		char tok[PROTO_TOKEN_BUF];

		if (proto_token_sign(SECRET, sizeof SECRET, data + 1, size - 1,
				     tok, sizeof tok) == 0)
			check(tok);
		return 0;
	}
	/* The relay gets tokens as C strings out of JSON. */
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	check(text);
	free(text);
	return 0;
}
