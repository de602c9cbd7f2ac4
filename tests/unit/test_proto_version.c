/*
 * Unit tests for proto_version: the version syntax and the host and
 * client gates at and around every boundary docs/protocol.md names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/proto_error.h"
#include "protocol/proto_version.h"

/* Printable form of a possibly NULL string, for failure messages. */
#define SHOW(s) ((s) ? (s) : "(null)")

static void assert_parses(const char *s, uint32_t a, uint32_t b, uint32_t c,
			  uint32_t d)
{
	struct proto_version v;
	int rc = proto_version_parse(s, &v);

	if (rc != 0)
		fail_msg("\"%s\" did not parse (rc %d)", s, rc);
	assert_int_equal(v.part[0], a);
	assert_int_equal(v.part[1], b);
	assert_int_equal(v.part[2], c);
	assert_int_equal(v.part[3], d);
}

static void assert_malformed(const char *s)
{
	struct proto_version v;
	int rc = proto_version_parse(s, &v);

	if (rc != -PROTO_E_MALFORMED)
		fail_msg("\"%s\": rc %d, expected %d (malformed)", SHOW(s),
			 rc, -PROTO_E_MALFORMED);
}

static int cmp(const char *a, const char *b)
{
	struct proto_version va, vb;

	assert_int_equal(proto_version_parse(a, &va), 0);
	assert_int_equal(proto_version_parse(b, &vb), 0);
	return proto_version_cmp(&va, &vb);
}

static void test_parse_forms(void **state)
{
	(void)state;
	assert_parses("1", 1, 0, 0, 0);
	assert_parses("6.2", 6, 2, 0, 0);
	assert_parses("V6.2", 6, 2, 0, 0);
	assert_parses("v6.2", 6, 2, 0, 0);
	assert_parses("1.1.0", 1, 1, 0, 0);
	assert_parses("1.2.3.4", 1, 2, 3, 4);
	assert_parses("0", 0, 0, 0, 0);
	assert_parses("007.01", 7, 1, 0, 0);
	assert_parses("99999999.99999999.99999999.99999999", 99999999,
		      99999999, 99999999, 99999999);
}

static void test_parse_garbage(void **state)
{
	(void)state;
	assert_malformed(NULL);
	assert_malformed("");
	assert_malformed("V");
	assert_malformed("v");
	assert_malformed("VV6.2");
	assert_malformed("1..2");
	assert_malformed(".1");
	assert_malformed("1.");
	assert_malformed("1.2.3.4.5");
	assert_malformed("1.2.3.4.");
	assert_malformed("6.2a");
	assert_malformed("abc");
	assert_malformed(" 6.2");
	assert_malformed("6.2 ");
	assert_malformed("-1.0");
	assert_malformed("+1.0");
	assert_malformed("1,2");
	assert_malformed("6.2-beta");
	assert_malformed("100000000");
	assert_malformed("1.100000000");
	assert_malformed("99999999999999999999");
	assert_malformed("4294967296");
}

static void test_parse_huge(void **state)
{
	char big[4096];

	(void)state;
	memset(big, '1', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_malformed(big);
	for (size_t i = 1; i < sizeof big - 1; i += 2)
		big[i] = '.';
	assert_malformed(big);
}

static void test_cmp(void **state)
{
	(void)state;
	assert_true(cmp("1.10.0", "1.9.9") > 0);
	assert_true(cmp("1.9.9", "1.10.0") < 0);
	assert_int_equal(cmp("6.2", "6.2.0"), 0);
	assert_int_equal(cmp("V6.2", "6.2.0.0"), 0);
	assert_true(cmp("6.1.9", "6.2") < 0);
	assert_true(cmp("6.2.0.1", "6.2") > 0);
	assert_true(cmp("99999999", "1.99999999") > 0);
	assert_true(cmp("0", "0.0.0.1") < 0);
}

static void expect_host(const char *os, const char *image, const char *ver,
			int want_rc, const char *want_why)
{
	char why[512] = "";
	int rc = proto_gate_host(os, image, ver, why, sizeof why);

	if (rc != want_rc)
		fail_msg("host %s/%s/%s: rc %d, expected %d (%s)", SHOW(os),
			 SHOW(image), SHOW(ver), rc, want_rc, why);
	if (want_why && strcmp(why, want_why) != 0)
		fail_msg("host %s: why\n  got  \"%s\"\n  want \"%s\"",
			 SHOW(ver), why, want_why);
}

static void test_host_gate_version(void **state)
{
	(void)state;
	expect_host("windows", "system", "1.1.0", 0, NULL);
	expect_host("windows", "system", "1.1", 0, NULL);
	expect_host("windows", "system", "V1.1", 0, NULL);
	expect_host("windows", "custom", "1.1.0.1", 0, NULL);
	expect_host("windows", "system", "1.10.0", 0, NULL);
	expect_host("windows", "system", "2", 0, NULL);
	expect_host("windows", "system", "1.0.9", -PROTO_E_BAD_VERSION,
		    "ASP version 1.0.9 is not supported: the host needs ASP "
		    "1.1.0 or later.");
	expect_host("windows", "system", "1.0.99999999.99999999",
		    -PROTO_E_BAD_VERSION, NULL);
	expect_host("windows", "system", "1", -PROTO_E_BAD_VERSION, NULL);
	expect_host("windows", "system", "v1.0", -PROTO_E_BAD_VERSION,
		    "ASP version v1.0 is not supported: the host needs ASP "
		    "1.1.0 or later.");
	expect_host("windows", "system", "1.x", -PROTO_E_MALFORMED,
		    "ASP version \"1.x\" is not a version number (expected up "
		    "to four dot-separated numbers, like 1.1.0).");
	expect_host("windows", "system", "", -PROTO_E_MALFORMED, NULL);
	expect_host("windows", "system", NULL, -PROTO_E_MALFORMED, NULL);
	expect_host("windows", "system", "100000000", -PROTO_E_MALFORMED, NULL);
	expect_host("windows", "system", "99999999", 0, NULL);
}

static void test_host_gate_os_image(void **state)
{
	(void)state;
	expect_host("Windows", "system", "1.1.0", 0, NULL);
	expect_host("WINDOWS", "Custom", "1.1.0", 0, NULL);
	expect_host("linux", "system", "1.1.0", -PROTO_E_UNSUPPORTED_OS,
		    "Operating system \"linux\" is not supported: only Windows "
		    "images (system images, or custom images made from them) "
		    "can share their desktop.");
	expect_host("windows ", "system", "1.1.0", -PROTO_E_UNSUPPORTED_OS,
		    NULL);
	expect_host("", "system", "1.1.0", -PROTO_E_UNSUPPORTED_OS, NULL);
	expect_host(NULL, "system", "1.1.0", -PROTO_E_UNSUPPORTED_OS, NULL);
	expect_host("windows", "ubuntu", "1.1.0", -PROTO_E_UNSUPPORTED_OS,
		    "Image type \"ubuntu\" is not supported: the image must be "
		    "\"system\" or \"custom\" (made from a Windows system "
		    "image).");
	expect_host("windows", NULL, "1.1.0", -PROTO_E_UNSUPPORTED_OS, NULL);
	/* The OS is judged before the version: a Linux host learns that
	 * upgrading ASP would not help. */
	expect_host("macos", "system", "0.1", -PROTO_E_UNSUPPORTED_OS, NULL);
}

#define DESK_NEED "Windows and macOS clients need V6.2 or later."

/* docs/protocol.md "Version rules", client rows, at every boundary. */
static const struct {
	const char *client, *version;
	int rc;
	const char *why; /* NULL: not checked */
} client_cases[] = {
	{"windows", "6.2", 0, NULL},
	{"windows", "V6.2", 0, NULL},
	{"windows", "6.2.0", 0, NULL},
	{"windows", "6.3", 0, NULL},
	{"windows", "6.10", 0, NULL},
	{"macos", "v6.2.0.0", 0, NULL},
	{"windows", "6.1.9", -PROTO_E_BAD_VERSION,
	 "Windows client 6.1.9 is not supported: " DESK_NEED},
	{"macos", "6.1", -PROTO_E_BAD_VERSION,
	 "macOS client 6.1 is not supported: " DESK_NEED},
	{"windows", "6.1.99999999", -PROTO_E_BAD_VERSION, NULL},
	{"windows", "6", -PROTO_E_BAD_VERSION, NULL},
	{"windows", "", -PROTO_E_MALFORMED, NULL},
	{"windows", NULL, -PROTO_E_MALFORMED, NULL},
	{"macos", "six", -PROTO_E_MALFORMED,
	 "macOS client version \"six\" is not a version number (expected up "
	 "to four dot-separated numbers, like 1.1.0)."},
	{"terminal", "6.3", 0, NULL},
	{"terminal", "6.3.0", 0, NULL},
	{"terminal", "V7", 0, NULL},
	{"terminal", "6.2", -PROTO_E_BAD_VERSION,
	 "Hardware terminal client 6.2 is not supported: hardware terminals "
	 "need V6.3 or later."},
	{"terminal", "6.2.99", -PROTO_E_BAD_VERSION, NULL},
	{"terminal", "6..3", -PROTO_E_MALFORMED, NULL},
	{"web", "", 0, NULL},
	{"web", NULL, 0, NULL},
	{"web", "not a version", 0, NULL},
	{"web", "0.0.1", 0, NULL},
	{"Windows", "6.2", -PROTO_E_UNSUPPORTED_CLIENT,
	 "Client \"Windows\" is not supported: use the Windows, macOS, "
	 "hardware terminal or web client."},
	{"WEB", "1.0", -PROTO_E_UNSUPPORTED_CLIENT, NULL},
	{"android", "6.2", -PROTO_E_UNSUPPORTED_CLIENT, NULL},
	{"", "6.2", -PROTO_E_UNSUPPORTED_CLIENT, NULL},
	{NULL, "6.2", -PROTO_E_UNSUPPORTED_CLIENT, NULL},
};

static void test_client_gate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof client_cases / sizeof client_cases[0];
	     i++) {
		const char *client = client_cases[i].client;
		const char *ver = client_cases[i].version;
		char why[512] = "";
		int rc = proto_gate_client(client, ver, why, sizeof why);

		if (rc != client_cases[i].rc)
			fail_msg("client %s %s: rc %d, expected %d (%s)",
				 SHOW(client), SHOW(ver), rc,
				 client_cases[i].rc, why);
		if (client_cases[i].why && strcmp(why, client_cases[i].why))
			fail_msg("client %s %s: why\n  got  \"%s\"\n  want "
				 "\"%s\"", SHOW(client), SHOW(ver), why,
				 client_cases[i].why);
	}
}

static void test_gate_null_why(void **state)
{
	char tiny[8];

	(void)state;
	/* why is optional, and a short buffer truncates safely. */
	assert_int_equal(proto_gate_client("windows", "6.1", NULL, 0),
			 -PROTO_E_BAD_VERSION);
	assert_int_equal(proto_gate_host("windows", "system", "1.0", tiny,
					 sizeof tiny), -PROTO_E_BAD_VERSION);
	assert_string_equal(tiny, "ASP ver");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_parse_huge),
		cmocka_unit_test(test_cmp),
		cmocka_unit_test(test_host_gate_version),
		cmocka_unit_test(test_host_gate_os_image),
		cmocka_unit_test(test_client_gate),
		cmocka_unit_test(test_gate_null_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
