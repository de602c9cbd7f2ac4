/*
 * relay_clock: wall, monotonic and the relay's own clock (relay_clock.h).
 * clock_gettime goes through the vDSO: no system call.
 */
#include "relay/relay_clock.h"

#include <time.h>

#include "relay/relay.h"

static uint64_t relay_clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t relay_now_us(void)
{
	return relay_clock_us(CLOCK_REALTIME);
}

uint64_t relay_mono_us(void)
{
	return relay_clock_us(CLOCK_MONOTONIC);
}

static uint64_t relay_turn_wall, relay_turn_mono;

void relay_clock_turn(void)
{
	relay_turn_wall = relay_now_us();
	relay_turn_mono = relay_mono_us();
}

uint64_t relay_turn_now_us(void)
{
	return relay_turn_wall;
}

uint64_t relay_turn_mono_us(void)
{
	return relay_turn_mono;
}

int64_t relay_clock_s(const struct relay *r)
{
	return (int64_t)time(NULL) + r->clock_offset_s;
}
