/*
 * Unit tests for proto_error: the table is dense and consistent (its
 * match with docs/protocol.md is test_proto_doc's job), every lookup is
 * safe on any input, and "why" buffers never overflow.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_error.h"

static void test_close_codes_dense_and_unique(void **state)
{
	(void)state;
	for (int e = PROTO_E_MALFORMED; e < PROTO_E__COUNT; e++) {
		const struct proto_err_info *i = proto_err_info(e);

		assert_int_equal(i->close_code, 4000 + e - 1);
		assert_ptr_equal(proto_err_by_code(i->code), i);
		assert_ptr_equal(proto_err_info(-e), i);
		assert_true(i->http_status >= 400 && i->http_status <= 599);
		assert_true(strlen(i->message) > 0);
	}
}

static void test_known_rows(void **state)
{
	(void)state;
	assert_string_equal(proto_err_info(-PROTO_E_BUSY)->message,
			    PROTO_BUSY_MESSAGE);
	assert_string_equal(proto_err_info(-PROTO_E_STATE)->code, "bad_state");
	assert_int_equal(proto_err_info(-PROTO_E_TOO_LARGE)->http_status, 413);
	assert_int_equal(proto_err_info(-PROTO_E_UNAUTHORIZED)->close_code,
			 4013);
}

static void test_out_of_range_is_internal(void **state)
{
	const struct proto_err_info *internal = proto_err_info(PROTO_E_INTERNAL);
	const int odd[] = {0, PROTO_E__COUNT, -PROTO_E__COUNT, 1000, -1000,
			   INT_MAX, INT_MIN, INT_MIN + 1};

	(void)state;
	for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++)
		assert_ptr_equal(proto_err_info(odd[k]), internal);
	assert_null(proto_err_by_code(NULL));
	assert_null(proto_err_by_code(""));
	assert_null(proto_err_by_code("Busy"));
	assert_null(proto_err_by_code("busy "));
}

static void test_err_set_truncates(void **state)
{
	char buf[8];

	(void)state;
	proto_err_set(buf, sizeof buf, "field \"%s\" is missing", "x");
	assert_string_equal(buf, "field \"");
	proto_err_set(NULL, 0, "ignored %d", 1);
	buf[0] = 'z';
	proto_err_set(buf, 0, "ignored");
	assert_int_equal(buf[0], 'z');
	proto_err_set(buf, 1, "gone");
	assert_string_equal(buf, "");
}

static void test_err_set_keeps_utf8_whole(void **state)
{
	char buf[6];

	(void)state;
	/* "abcd" then a 3-byte character: 5 bytes fit, a cut character
	 * must not be left half written. */
	proto_err_set(buf, sizeof buf, "abcd%s", "\xe2\x82\xac");
	assert_string_equal(buf, "abcd");
	proto_err_set(buf, sizeof buf, "abc%s", "\xc3\xa9z");
	assert_string_equal(buf, "abc\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_codes_dense_and_unique),
		cmocka_unit_test(test_known_rows),
		cmocka_unit_test(test_out_of_range_is_internal),
		cmocka_unit_test(test_err_set_truncates),
		cmocka_unit_test(test_err_set_keeps_utf8_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
