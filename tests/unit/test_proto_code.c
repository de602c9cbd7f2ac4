/*
 * Unit tests for proto_code: codes drawn from random bytes use every
 * symbol evenly, entry forgives case, spaces and dashes but nothing else,
 * and the display form is three groups of four.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_code.h"
#include "protocol/proto_error.h"

static void test_from_random_maps_bytes(void **state)
{
	uint8_t rnd[PROTO_CODE_CHARS];
	char out[PROTO_CODE_CANON_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof rnd; i++)
		rnd[i] = (uint8_t)i;
	assert_int_equal(proto_code_from_random(rnd, sizeof rnd, out), 0);
	assert_string_equal(out, "23456789ABCD");
	/* 30 and 239 wrap onto the first and last symbols. */
	memset(rnd, 30, sizeof rnd);
	rnd[11] = 239;
	assert_int_equal(proto_code_from_random(rnd, sizeof rnd, out), 0);
	assert_string_equal(out, "22222222222Z");
}

static void test_from_random_rejects_high_bytes(void **state)
{
	uint8_t rnd[32];
	char out[PROTO_CODE_CANON_LEN];

	(void)state;
	memset(rnd, 255, sizeof rnd);
	assert_int_equal(proto_code_from_random(rnd, sizeof rnd, out), -1);
	assert_string_equal(out, "");
	/* 240..255 are skipped, so 12 usable bytes among them still do. */
	for (size_t i = 0; i < sizeof rnd; i++)
		rnd[i] = (i % 2) ? 240 + (uint8_t)(i % 16) : (uint8_t)(i / 2);
	assert_int_equal(proto_code_from_random(rnd, 23, out), 0);
	assert_string_equal(out, "23456789ABCD");
	assert_int_equal(proto_code_from_random(rnd, 22, out), -1);
	assert_int_equal(proto_code_from_random(NULL, 0, out), -1);
	assert_int_equal(proto_code_from_random(rnd, 0, out), -1);
}

static void test_from_random_is_uniform(void **state)
{
	unsigned count[PROTO_CODE_SYMBOLS] = {0};
	uint8_t rnd[PROTO_CODE_CHARS];
	char out[PROTO_CODE_CANON_LEN];

	(void)state;
	/* Every byte value once per position: a biased mapping (plain
	 * byte % 30) would give the first 16 symbols 9 hits, not 8. */
	for (unsigned b = 0; b < 256; b++) {
		memset(rnd, (int)b, sizeof rnd);
		if (proto_code_from_random(rnd, sizeof rnd, out) < 0)
			continue;
		count[strchr(PROTO_CODE_ALPHABET, out[0]) - PROTO_CODE_ALPHABET]++;
	}
	for (int s = 0; s < PROTO_CODE_SYMBOLS; s++)
		assert_int_equal(count[s], 8);
}

static void expect_norm(const char *typed, const char *want)
{
	char out[PROTO_CODE_CANON_LEN];
	int rc = proto_code_normalize(typed, out);

	if (want && (rc != 0 || strcmp(out, want) != 0))
		fail_msg("\"%s\": rc %d \"%s\", want \"%s\"", typed, rc, out,
			 want);
	if (!want && rc != -PROTO_E_BAD_CODE)
		fail_msg("\"%s\": rc %d \"%s\", want bad_code", typed ? typed : "",
			 rc, out);
}

static void test_normalize(void **state)
{
	(void)state;
	expect_norm("K7M4-Q2XW-9PDH", "K7M4Q2XW9PDH");
	expect_norm("k7m4q2xw9pdh", "K7M4Q2XW9PDH");
	expect_norm(" k7m4 - q2xw - 9pdh ", "K7M4Q2XW9PDH");
	expect_norm("K7M4\tQ2XW\t9PDH", "K7M4Q2XW9PDH");
	expect_norm("--k-7-m-4-q-2-x-w-9-p-d-h--", "K7M4Q2XW9PDH");
	expect_norm("K7M4-Q2XW-9PD", NULL);      /* 11 symbols */
	expect_norm("K7M4-Q2XW-9PDHX", NULL);    /* 13 symbols */
	expect_norm("K7M4-Q2XW-9PDO", NULL);     /* O is not a symbol */
	expect_norm("K7M4-Q2XW-9PD0", NULL);     /* nor 0 */
	expect_norm("K7M4-Q2XW-9PDI", NULL);     /* nor I, L, U, 1 */
	expect_norm("K7M4-Q2XW-9PDL", NULL);
	expect_norm("K7M4-Q2XW-9PDU", NULL);
	expect_norm("K7M4-Q2XW-9PD1", NULL);
	expect_norm("K7M4_Q2XW_9PDH", NULL);
	expect_norm("K7M4-Q2XW-9PD\xc3\xa9", NULL);
	expect_norm("", NULL);
	expect_norm("   ---   ", NULL);
	expect_norm(NULL, NULL);
}

static void test_normalize_huge(void **state)
{
	char big[100000];

	(void)state;
	memset(big, 'A', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	expect_norm(big, NULL);
	memset(big, '-', sizeof big - 1);
	memcpy(big + 5000, "k7m4q2xw9pdh", 12);
	expect_norm(big, "K7M4Q2XW9PDH");
}

static void test_display(void **state)
{
	char out[PROTO_CODE_DISPLAY_LEN];
	char canon[PROTO_CODE_CANON_LEN];

	(void)state;
	proto_code_display("K7M4Q2XW9PDH", out);
	assert_string_equal(out, "K7M4-Q2XW-9PDH");
	assert_int_equal(proto_code_normalize(out, canon), 0);
	assert_string_equal(canon, "K7M4Q2XW9PDH");
	proto_code_display("K7M4Q", out);
	assert_string_equal(out, "K7M4-Q");
	proto_code_display(NULL, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_random_maps_bytes),
		cmocka_unit_test(test_from_random_rejects_high_bytes),
		cmocka_unit_test(test_from_random_is_uniform),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_normalize_huge),
		cmocka_unit_test(test_display),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
