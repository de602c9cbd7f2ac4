/*
 * relay_log: the relay's log, at the bottom of relay/.
 *
 * One line per event on stderr: time, event name, then key=value detail.
 * Lines never carry payloads, codes or tokens; callers pass only ids,
 * names and counts.  Every module may call down into it; it calls
 * nothing of the relay's.
 *
 * Two formats with the same fields (--log-format): text,
 *   2026-12-01T15:00:00Z owner-join desktop=d1
 * and json, one object per line for journald, Loki or Elasticsearch,
 *   {"time":"2026-12-01T15:00:00Z","event":"owner-join","desktop":"d1"}
 * where every value is a string.  Detail words without a key continue the
 * previous key's value ("why=cannot read x"), or form "msg" if first.
 */
#ifndef ASP_RELAY_LOG_H
#define ASP_RELAY_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Chooses the format of the lines that follow (text by default). */
void relay_log_set_json(bool json);

/* One log line on stderr: time, event and detail. */
void relay_log(const char *event, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sends the lines to f instead of stderr; NULL drops them (the fuzz
 * driver, whose stderr is libFuzzer's report). */
void relay_log_to(FILE *f);

/* A control message the relay failed to build (a JSON encoder refusing a
 * string): logged as build-failed with `what` and counted for
 * asp_build_failures_total.  Never silent.  Here, at the bottom floor,
 * so every module that builds messages can report one. */
void relay_log_build_failed(const char *what);
uint64_t relay_log_build_failures(void);

#endif
