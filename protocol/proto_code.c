/*
 * proto_code: makes collaboration codes from random bytes, and turns what
 * a person typed or read aloud back into the canonical code.
 *
 * 256 is not a multiple of 30, so a plain byte % 30 would favour the
 * first 16 symbols; bytes >= 240 (the incomplete last block) are skipped
 * instead, which keeps every symbol equally likely.
 */
#include "protocol/proto_code.h"

#include <string.h>

#include "protocol/proto_error.h"

/* The largest multiple of the alphabet size that fits in a byte. */
#define CODE_BYTE_LIMIT (256 - 256 % PROTO_CODE_SYMBOLS)

int proto_code_from_random(const uint8_t *rnd, size_t rnd_len,
			   char out[PROTO_CODE_CANON_LEN])
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; rnd && i < rnd_len && n < PROTO_CODE_CHARS; i++) {
		if (rnd[i] >= CODE_BYTE_LIMIT)
			continue;
		out[n++] = PROTO_CODE_ALPHABET[rnd[i] % PROTO_CODE_SYMBOLS];
	}
	if (n < PROTO_CODE_CHARS) {
		out[0] = '\0';
		return -1;
	}
	out[n] = '\0';
	return 0;
}

/* The symbol for c typed in either case, or 0 if it is not one. */
static char code_symbol(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	if (c == '\0' || !strchr(PROTO_CODE_ALPHABET, c))
		return 0;
	return c;
}

int proto_code_normalize(const char *typed, char out[PROTO_CODE_CANON_LEN])
{
	size_t n = 0;

	out[0] = '\0';
	if (!typed)
		return -PROTO_E_BAD_CODE;
	for (const char *p = typed; *p; p++) {
		char sym;

		if (*p == ' ' || *p == '-' || *p == '\t')
			continue;
		sym = code_symbol(*p);
		/* Stop at the 13th symbol: a longer entry is wrong anyway,
		 * and out has room for exactly twelve. */
		if (!sym || n == PROTO_CODE_CHARS) {
			out[0] = '\0';
			return -PROTO_E_BAD_CODE;
		}
		out[n++] = sym;
	}
	out[n] = '\0';
	if (n != PROTO_CODE_CHARS) {
		out[0] = '\0';
		return -PROTO_E_BAD_CODE;
	}
	return 0;
}

void proto_code_display(const char *canon, char out[PROTO_CODE_DISPLAY_LEN])
{
	size_t o = 0;

	for (size_t i = 0; canon && i < PROTO_CODE_CHARS && canon[i]; i++) {
		if (i > 0 && i % PROTO_CODE_GROUP == 0)
			out[o++] = '-';
		out[o++] = canon[i];
	}
	out[o] = '\0';
}
