/*
 * relay_loop: the event loop, at the bottom of relay/.
 *
 * The relay runs one libev loop on epoll; libwebsockets joins it as a
 * foreign loop (LWS_SERVER_OPTION_LIBEV), so lws's sockets, lws's own
 * timers and the relay's timers and signals are all watched by one
 * epoll_wait.  Debian's lws defaults to poll(), whose cost grows with
 * every connection on every wake-up; epoll's grows with what is ready.
 * (lws's libuv loop would do too, but Debian's _DEBUG build closes a
 * connection twice under libuv and loses its close frame: see
 * shared/notes/libwebsockets-4.1.md.)
 *
 * This is the only file that includes the event library.  Timers are
 * one-shot, kept in libev's 4-heap (O(log n) to arm), so every
 * connection can own its timers; callers embed a struct relay_timer and
 * find themselves from it with container_of.  Everything runs on the
 * loop's one thread; nothing here is locked.
 */
#ifndef ASP_RELAY_LOOP_H
#define ASP_RELAY_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay_loop;

/* Room for libev's ev_timer (relay_loop.c checks the size). */
#define RELAY_TIMER_IMPL 64

struct relay_timer {
	_Alignas(max_align_t) unsigned char impl[RELAY_TIMER_IMPL];
	struct relay_loop *loop;
	void (*cb)(struct relay_timer *t);
};

/* Creates a loop on epoll; NULL if the kernel refuses (logged). */
struct relay_loop *relay_loop_new(void);

/* The libev loop itself, for lws's info.foreign_loops. */
void *relay_loop_native(struct relay_loop *l);

struct redisAsyncContext;
/* Puts a hiredis asynchronous connection on the loop (hiredis's libev
 * adapter), so its replies arrive on the loop's thread.  0 or -1. */
int relay_loop_attach_redis(struct relay_loop *l, struct redisAsyncContext *ac);

/* Calls cb(signum, arg) on the loop's thread when signum arrives (at most
 * four signals per loop).  Returns 0 or -ENOSPC. */
int relay_loop_on_signal(struct relay_loop *l, int signum,
			 void (*cb)(int signum, void *arg), void *arg);

/* Runs until relay_loop_break. */
void relay_loop_run(struct relay_loop *l);

/* One pass of the loop: runs what is ready and returns, waiting for
 * something to become ready first only if wait (the fuzz driver steps
 * the relay this way). */
void relay_loop_run_once(struct relay_loop *l, bool wait);

/* Makes relay_loop_run return once the current callback does. */
void relay_loop_break(struct relay_loop *l);

/* Stops the signal watchers and frees the loop; every timer must be
 * stopped and lws's context destroyed first. */
void relay_loop_free(struct relay_loop *l);

/* Prepares t to call cb; it does not run until started. */
void relay_timer_init(struct relay_timer *t, struct relay_loop *l,
		      void (*cb)(struct relay_timer *t));

/* (Re)arms t to fire once, after_us from now. */
void relay_timer_start(struct relay_timer *t, uint64_t after_us);

/* Disarms t; safe on a timer that is not running or never started. */
void relay_timer_stop(struct relay_timer *t);

bool relay_timer_active(const struct relay_timer *t);

#endif
