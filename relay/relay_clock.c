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

int64_t relay_clock_s(const struct relay *r)
{
	return (int64_t)time(NULL) + r->clock_offset_s;
}
