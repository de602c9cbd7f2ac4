/*
 * relay_log: one line per event on stderr (see relay_log.h).
 *
 * A line is built whole in a buffer and written with one call, so lines
 * from the relay and from libraries never interleave mid-line.  Detail
 * longer than the buffer is cut, never split across lines.
 */
#include "relay/relay_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RELAY_LOG_LINE 2048

static bool relay_log_json;
static FILE *relay_log_file;
static bool relay_log_file_set; /* else stderr */

void relay_log_to(FILE *f)
{
	relay_log_file = f;
	relay_log_file_set = true;
}

void relay_log_set_json(bool json)
{
	relay_log_json = json;
}

struct relay_log_buf {
	char p[RELAY_LOG_LINE * 7]; /* every byte may become \u00XX */
	size_t len;
};

/* Appends all of s[0..n) or, when it does not fit, nothing: an escape is
 * never cut, and room stays for the closing "}\n. */
static void relay_log_put(struct relay_log_buf *b, const char *s, size_t n)
{
	if (n > sizeof(b->p) - 4 - b->len)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* s[0..n) as the inside of a JSON string. */
static void relay_log_escape(struct relay_log_buf *b, const char *s, size_t n)
{
	char esc[8];

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			relay_log_put(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			relay_log_put(b, esc, 6);
		} else {
			relay_log_put(b, &s[i], 1);
		}
	}
}

static void relay_log_field(struct relay_log_buf *b, const char *key,
			    size_t klen)
{
	relay_log_put(b, "\",\"", 3);
	relay_log_escape(b, key, klen);
	relay_log_put(b, "\":\"", 3);
}

/* A word that starts a field: KEY=..., KEY of [A-Za-z0-9_-]. */
static size_t relay_log_key_len(const char *w, size_t n)
{
	size_t k = 0;

	while (k < n && (('a' <= w[k] && w[k] <= 'z') ||
			 ('A' <= w[k] && w[k] <= 'Z') ||
			 ('0' <= w[k] && w[k] <= '9') || w[k] == '_' ||
			 w[k] == '-'))
		k++;
	return k > 0 && k < n && w[k] == '=' ? k : 0;
}

static void relay_log_json_detail(struct relay_log_buf *b, const char *d)
{
	bool open = false;

	while (*d) {
		size_t n = strcspn(d, " "), k = relay_log_key_len(d, n);

		if (k) {
			relay_log_field(b, d, k);
			relay_log_escape(b, d + k + 1, n - k - 1);
		} else {
			if (!open)
				relay_log_field(b, "msg", 3);
			else
				relay_log_put(b, " ", 1);
			relay_log_escape(b, d, n);
		}
		open = true;
		d += n;
		d += strspn(d, " ");
	}
}

void relay_log(const char *event, const char *fmt, ...)
{
	FILE *to = relay_log_file_set ? relay_log_file : stderr;
	struct relay_log_buf b = { .len = 0 };
	char when[32], detail[RELAY_LOG_LINE];
	time_t t;
	struct tm tm;
	va_list ap;

	if (!to)
		return;
	t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (relay_log_json) {
		relay_log_put(&b, "{\"time\":\"", 9);
		relay_log_put(&b, when, strlen(when));
		relay_log_put(&b, "\",\"event\":\"", 11);
		relay_log_escape(&b, event, strlen(event));
		relay_log_json_detail(&b, detail);
		memcpy(b.p + b.len, "\"}\n", 3);
		b.len += 3;
	} else {
		b.len = (size_t)snprintf(b.p, sizeof(b.p), "%s %s %s\n", when,
					 event, detail);
		if (b.len >= sizeof(b.p))
			b.len = sizeof(b.p) - 1;
	}
	fwrite(b.p, 1, b.len, to);
}

static uint64_t relay_log_failed_builds;

void relay_log_build_failed(const char *what)
{
	relay_log_failed_builds++;
	relay_log("build-failed", "message=%s", what);
}

uint64_t relay_log_build_failures(void)
{
	return relay_log_failed_builds;
}
