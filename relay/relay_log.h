/*
 * relay_log: the relay's log, at the bottom of relay/.
 *
 * One line per event on stderr: time, event name, then key=value detail.
 * Lines never carry payloads, codes or tokens; callers pass only ids,
 * names and counts.  Every module may call down into it; it calls
 * nothing of the relay's.
 */
#ifndef ASP_RELAY_LOG_H
#define ASP_RELAY_LOG_H

/* One log line on stderr: time, event and detail. */
void relay_log(const char *event, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
