/*
 * relay_clock: the relay's clocks, at the bottom of relay/.
 *
 * Three clocks, each for one purpose: the wall clock in microseconds is
 * the capture clock of media headers (latency is now minus capture); the
 * monotonic clock measures timeouts, which must not jump with the wall
 * clock; and the relay's clock in seconds is what tokens, expiry and the
 * audit log use, which tests may move forward (--test-clock).
 */
#ifndef ASP_RELAY_CLOCK_H
#define ASP_RELAY_CLOCK_H

#include <stdint.h>

struct relay;

/* Wall clock in microseconds since the Unix epoch (the capture clock). */
uint64_t relay_now_us(void);

/* Monotonic microseconds, for timeouts and rates. */
uint64_t relay_mono_us(void);

/* The same two clocks as read once per loop turn, when the loop has
 * gathered its events (relay_clock_turn, called by relay_loop): what the
 * per-message path reads instead of a clock_gettime per message, as h2o
 * reads h2o_now().  Behind the real clocks by at most one turn. */
uint64_t relay_turn_now_us(void);
uint64_t relay_turn_mono_us(void);

/* Reads both clocks for the turn that begins. */
void relay_clock_turn(void);

/* The relay's clock for tokens, expiry and the audit log: unix seconds,
 * plus the offset tests may inject (--test-clock). */
int64_t relay_clock_s(const struct relay *r);

#endif
