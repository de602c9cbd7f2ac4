/*
 * docs/protocol.md is the contract other implementations are written
 * from, so these tests read it and hold the code to it: the error table
 * row by row, and the table of message fields, direction by direction
 * (every required field is enforced by name and type, and a message is
 * refused in every direction the document does not list for it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "protocol/proto_ctrl.h"
#include "protocol/proto_error.h"

/* The tests run from the repository root (tests/run.sh, make test). */
#define PROTOCOL_DOC "docs/protocol.md"
#define FIELDS_HEAD \
	"| type | sent by | required | optional |\n|---|---|---|---|\n"
#define MAX_NAMES 16
#define ALL_DIRS 15u

static char *read_doc(void)
{
	FILE *f = fopen(PROTOCOL_DOC, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		fail_msg("cannot open %s (run from the repository root)",
			 PROTOCOL_DOC);
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = calloc(1, (size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	assert_non_null(buf);
	return buf;
}

static void test_error_table_matches_doc(void **state)
{
	char *doc = read_doc();
	char row[512];

	(void)state;
	for (int e = PROTO_E_MALFORMED; e < PROTO_E__COUNT; e++) {
		const struct proto_err_info *i = proto_err_info(-e);

		snprintf(row, sizeof row, "| `%s` | %d | %d | %s |", i->code,
			 i->close_code, i->http_status, i->message);
		if (!strstr(doc, row))
			fail_msg("docs/protocol.md has no row\n  %s", row);
	}
	free(doc);
}

/* One name in a table cell, with the JSON type the document gives it. */
struct name {
	char text[64];
	const char *type; /* "string", "integer", "number", ... */
};

struct row {
	struct name types[MAX_NAMES], req[MAX_NAMES], opt[MAX_NAMES];
	int ntypes, nreq, nopt;
	int one_of; /* "exactly one of" the required names */
	unsigned dirs;
};

/* "(integers)" after a group types the group; "(integer)" the name
 * before it.  Groups are separated by ';'. */
static void type_names(struct name *n, int count, int group, const char *w)
{
	static const char *const kinds[] = {"integer", "number", "boolean",
					    "array", "object"};
	size_t len = strcspn(w, ")");
	int plural = len > 1 && w[len - 1] == 's';

	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		if (strncmp(w, kinds[k], strlen(kinds[k])) != 0)
			continue;
		for (int i = plural ? group : count - 1; i < count; i++)
			n[i].type = kinds[k];
		return;
	}
	fail_msg("unknown type in docs: (%.*s)", (int)len, w);
}

static int cell_names(const char *cell, size_t len, struct name *n)
{
	int count = 0, group = 0;

	for (size_t i = 0; i < len; i++) {
		if (cell[i] == ';')
			group = count;
		if (cell[i] == '(')
			type_names(n, count, group, cell + i + 1);
		if (cell[i] != '`')
			continue;
		size_t end = i + 1 + strcspn(cell + i + 1, "`");
		assert_true(count < MAX_NAMES && end - i - 1 < sizeof n->text);
		snprintf(n[count].text, sizeof n->text, "%.*s",
			 (int)(end - i - 1), cell + i + 1);
		n[count++].type = "string";
		i = end;
	}
	return count;
}

static unsigned cell_dirs(const char *cell, size_t len)
{
	char buf[128];
	int relay_to;
	unsigned dirs = 0;

	snprintf(buf, sizeof buf, "%.*s", (int)len, cell);
	relay_to = strstr(buf, "relay \xe2\x86\x92") != NULL;
	if (strstr(buf, "host"))
		dirs |= relay_to ? PROTO_DIR_RELAY_TO_HOST
				 : PROTO_DIR_HOST_TO_RELAY;
	if (strstr(buf, "viewer"))
		dirs |= relay_to ? PROTO_DIR_RELAY_TO_VIEWER
				 : PROTO_DIR_VIEWER_TO_RELAY;
	if (!relay_to && strstr(buf, "relay"))
		dirs |= PROTO_DIR_RELAY_TO_HOST | PROTO_DIR_RELAY_TO_VIEWER;
	return dirs;
}

/* Parses one "| types | sent by | required | optional |" line. */
static void parse_row(const char *line, struct row *r)
{
	const char *cell[4];
	size_t len[4];
	const char *p = line + 1;

	for (int c = 0; c < 4; c++) {
		cell[c] = p;
		len[c] = strcspn(p, "|\n");
		assert_int_equal(p[len[c]], '|');
		p += len[c] + 1;
	}
	memset(r, 0, sizeof *r);
	r->ntypes = cell_names(cell[0], len[0], r->types);
	r->dirs = cell_dirs(cell[1], len[1]);
	r->nreq = cell_names(cell[2], len[2], r->req);
	r->nopt = cell_names(cell[3], len[3], r->opt);
	r->one_of = strstr(cell[2], "exactly one of") != NULL &&
		    strstr(cell[2], "exactly one of") < cell[2] + len[2];
	if (r->ntypes == 0 || r->dirs == 0)
		fail_msg("cannot read the fields table row: %.*s",
			 (int)strcspn(line, "\n"), line);
}

static json_t *value_of(const char *type, int right)
{
	if (!right)
		return strcmp(type, "string") ? json_string("x") : json_integer(1);
	if (!strcmp(type, "string"))
		return json_string("x");
	if (!strcmp(type, "integer") || !strcmp(type, "number"))
		return json_integer(1);
	if (!strcmp(type, "boolean"))
		return json_true();
	return !strcmp(type, "array") ? json_array() : json_object();
}

/* The message type with every required field (or the first of a
 * "one of" set); skip, if not NULL, is left out; wrong, if not NULL,
 * gets a value of the wrong JSON type. */
static char *make_msg(const char *type, const struct row *r,
		      const struct name *skip, const struct name *wrong)
{
	json_t *o = json_pack("{s:s}", "type", type);
	char *s;

	for (int i = 0; i < r->nreq && !(r->one_of && i > 0); i++)
		if (&r->req[i] != skip)
			json_object_set_new(o, r->req[i].text,
					    value_of(r->req[i].type, 1));
	if (wrong)
		json_object_set_new(o, wrong->text, value_of(wrong->type, 0));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

static int parse(const char *json, enum proto_dir dir, char *why, size_t len)
{
	struct proto_ctrl m;
	int rc = proto_ctrl_parse(json, strlen(json), (enum proto_dir)dir,
				  &m, why, len);

	if (rc == 0)
		proto_ctrl_release(&m);
	return rc;
}

static void expect_refused(const char *json, unsigned dir, const char *want)
{
	char why[256] = "";
	int rc = parse(json, (enum proto_dir)dir, why, sizeof why);

	if (rc != -PROTO_E_MALFORMED || !strstr(why, want))
		fail_msg("docs/protocol.md: dir %u %s\n  got rc %d \"%s\", "
			 "want malformed \"%s\"", dir, json, rc, why, want);
}

static void check_names(const char *type, const struct row *r, unsigned dir,
			const struct name *n, int count, int required)
{
	char want[128];

	for (int i = 0; i < count; i++) {
		char *json;

		if (required && !r->one_of) {
			json = make_msg(type, r, &n[i], NULL);
			snprintf(want, sizeof want, "field \"%s\" is missing",
				 n[i].text);
			expect_refused(json, dir, want);
			free(json);
		}
		json = make_msg(type, r, NULL, &n[i]);
		snprintf(want, sizeof want, "field \"%s\" must be %s %s",
			 n[i].text, strchr("aeiou", n[i].type[0]) ? "an" : "a",
			 n[i].type);
		expect_refused(json, dir, want);
		free(json);
	}
}

/* Checks one (type, direction) of the table against the parser. */
static void check_row(const char *type, const struct row *r, unsigned dir)
{
	char why[256] = "";
	char *json = make_msg(type, r, NULL, NULL);

	if (parse(json, (enum proto_dir)dir, why, sizeof why) != 0)
		fail_msg("docs/protocol.md says %s is sent in dir %u, but "
			 "%s is refused: %s", type, dir, json, why);
	free(json);
	check_names(type, r, dir, r->req, r->nreq, 1);
	check_names(type, r, dir, r->opt, r->nopt, 0);
}

static void test_fields_table_matches_parser(void **state)
{
	char *doc = read_doc();
	const char *line = strstr(doc, FIELDS_HEAD);
	unsigned dirs_of[PROTO_MSG__COUNT] = {0};

	(void)state;
	if (!line)
		fail_msg("docs/protocol.md has no fields table");
	for (line += strlen(FIELDS_HEAD); *line == '|';
	     line += strcspn(line, "\n") + 1) {
		struct row r;

		parse_row(line, &r);
		for (int t = 0; t < r.ntypes; t++) {
			int found = 0;
			for (unsigned d = 1; d <= 8; d <<= 1)
				if (r.dirs & d)
					check_row(r.types[t].text, &r, d);
			for (int m = 0; m < PROTO_MSG__COUNT; m++)
				if (!strcmp(proto_msg_name(m), r.types[t].text)) {
					dirs_of[m] |= r.dirs;
					found = 1;
				}
			if (!found)
				fail_msg("docs type %s is not a proto_msg",
					 r.types[t].text);
		}
	}
	/* Every message exists in the document, and nowhere else. */
	for (int m = 0; m < PROTO_MSG__COUNT; m++) {
		char json[64];

		if (!dirs_of[m])
			fail_msg("%s is missing from the docs fields table",
				 proto_msg_name(m));
		snprintf(json, sizeof json, "{\"type\":\"%s\"}",
			 proto_msg_name(m));
		for (unsigned d = 1; d <= 8; d <<= 1)
			if (!(dirs_of[m] & d))
				expect_refused(json, d, "is not a message sent");
	}
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table_matches_doc),
		cmocka_unit_test(test_fields_table_matches_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
