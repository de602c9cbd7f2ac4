/*
 * relay_log: one line per event on stderr (see relay_log.h).
 */
#include "relay/relay_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void relay_log(const char *event, const char *fmt, ...)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s ", when, event);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
