/*
 * relay_log: one line per event on stderr (see relay_log.h).
 */
#include "relay/relay_log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static FILE *relay_log_file;
static bool relay_log_set;

void relay_log_to(FILE *f)
{
	relay_log_file = f;
	relay_log_set = true;
}

void relay_log(const char *event, const char *fmt, ...)
{
	FILE *to = relay_log_set ? relay_log_file : stderr;
	char when[32];
	time_t t;
	struct tm tm;
	va_list ap;

	if (!to)
		return;
	t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(to, "%s %s ", when, event);
	va_start(ap, fmt);
	vfprintf(to, fmt, ap);
	va_end(ap);
	fputc('\n', to);
}
