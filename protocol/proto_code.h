/*
 * proto_code: collaboration codes, as people read, type and say them.
 *
 * A code is PROTO_CODE_CHARS characters from a 30-symbol alphabet with
 * no look-alikes (no 0/O, 1/I/L, U), shown in groups of four joined by
 * '-': "K7M4-Q2XW-9PDH".  That is 12 * log2(30) = 58.9 bits.  Entry is
 * forgiving: case, spaces and dashes are ignored.
 *
 * The module is pure: the caller brings the randomness (the relay uses
 * OpenSSL's RAND_bytes).
 */
#ifndef ASP_PROTO_CODE_H
#define ASP_PROTO_CODE_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_CODE_ALPHABET "23456789ABCDEFGHJKMNPQRSTVWXYZ"
#define PROTO_CODE_SYMBOLS 30
#define PROTO_CODE_CHARS 12
#define PROTO_CODE_GROUP 4
/* Canonical form: 12 symbols and a NUL. */
#define PROTO_CODE_CANON_LEN (PROTO_CODE_CHARS + 1)
/* Display form: 12 symbols, 2 dashes and a NUL. */
#define PROTO_CODE_DISPLAY_LEN (PROTO_CODE_CHARS + 2 + 1)

/* Draws a canonical code from rnd by rejection sampling (bytes >= 240
 * are skipped so every symbol is equally likely).  0, or -1 if rnd ran
 * out first (the caller draws more bytes and calls again; 32 bytes fail
 * with probability below 1e-9). */
int proto_code_from_random(const uint8_t *rnd, size_t rnd_len,
			   char out[PROTO_CODE_CANON_LEN]);

/* Canonicalises what a person typed: drops spaces and dashes, upper-
 * cases.  0, or -PROTO_E_BAD_CODE when the result is not exactly
 * PROTO_CODE_CHARS alphabet symbols. */
int proto_code_normalize(const char *typed, char out[PROTO_CODE_CANON_LEN]);

/* Writes the grouped display form of a canonical code. */
void proto_code_display(const char *canon, char out[PROTO_CODE_DISPLAY_LEN]);

#endif
