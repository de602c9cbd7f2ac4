/*
 * relay_loop: libev on epoll, the relay's one event loop (relay_loop.h).
 */
#include "relay/relay_loop.h"

#include <errno.h>
#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <stdlib.h>

#include "relay/relay_alloc.h"
#include "relay/relay_clock.h"
#include "relay/relay_log.h"

#define RELAY_LOOP_SIGNALS 4

_Static_assert(sizeof(ev_timer) <= RELAY_TIMER_IMPL,
	       "struct relay_timer has no room for an ev_timer");

struct relay_signal {
	ev_signal w;
	void (*cb)(int signum, void *arg);
	void *arg;
};

struct relay_loop {
	struct ev_loop *ev;
	ev_check turn;   /* reads the clocks once per turn */
	struct relay_signal sig[RELAY_LOOP_SIGNALS];
	int nsig;
};

static void relay_loop_turn(struct ev_loop *ev, ev_check *w, int revents)
{
	(void)ev;
	(void)w;
	(void)revents;
	relay_clock_turn();
}

struct relay_loop *relay_loop_new(void)
{
	struct relay_loop *l = relay_xcalloc(1, sizeof(*l));

	l->ev = ev_loop_new(EVBACKEND_EPOLL);
	if (!l->ev) {
		relay_log("loop-error", "libev cannot create an epoll loop");
		free(l);
		return NULL;
	}
	/* First of the turn's callbacks, so they all see this turn's time;
	 * it does not keep the loop alive by itself. */
	ev_check_init(&l->turn, relay_loop_turn);
	ev_set_priority(&l->turn, EV_MAXPRI);
	ev_check_start(l->ev, &l->turn);
	ev_unref(l->ev);
	relay_clock_turn();
	return l;
}

void *relay_loop_native(struct relay_loop *l)
{
	return l->ev;
}

int relay_loop_attach_redis(struct relay_loop *l, struct redisAsyncContext *ac)
{
	redisLibevEvents *e;

	if (redisLibevAttach(l->ev, ac) != REDIS_OK)
		return -1;
	/* Redis's answers first in a turn: a lease renewal's answer is read
	 * before a burst of other sockets keeps the loop busy (relay_cluster
	 * judges Redis's health by it).  The watchers are not started yet,
	 * which ev_set_priority needs. */
	e = ac->ev.data;
	ev_set_priority(&e->rev, EV_MAXPRI);
	ev_set_priority(&e->wev, EV_MAXPRI);
	return 0;
}

static void relay_loop_signal_cb(struct ev_loop *ev, ev_signal *w, int revents)
{
	struct relay_signal *s = (struct relay_signal *)w;

	(void)ev;
	(void)revents;
	s->cb(w->signum, s->arg);
}

int relay_loop_on_signal(struct relay_loop *l, int signum,
			 void (*cb)(int signum, void *arg), void *arg)
{
	struct relay_signal *s;

	if (l->nsig == RELAY_LOOP_SIGNALS)
		return -ENOSPC;
	s = &l->sig[l->nsig++];
	s->cb = cb;
	s->arg = arg;
	ev_signal_init(&s->w, relay_loop_signal_cb, signum);
	ev_signal_start(l->ev, &s->w);
	return 0;
}

void relay_loop_run(struct relay_loop *l)
{
	ev_run(l->ev, 0);
}

void relay_loop_run_once(struct relay_loop *l, bool wait)
{
	ev_run(l->ev, wait ? EVRUN_ONCE : EVRUN_NOWAIT);
}

void relay_loop_break(struct relay_loop *l)
{
	ev_break(l->ev, EVBREAK_ALL);
}

void relay_loop_free(struct relay_loop *l)
{
	if (!l)
		return;
	for (int i = 0; i < l->nsig; i++)
		ev_signal_stop(l->ev, &l->sig[i].w);
	ev_ref(l->ev);
	ev_check_stop(l->ev, &l->turn);
	ev_loop_destroy(l->ev);
	free(l);
}

static void relay_timer_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct relay_timer *t = w->data;

	(void)ev;
	(void)revents;
	t->cb(t);
}

void relay_timer_init(struct relay_timer *t, struct relay_loop *l,
		      void (*cb)(struct relay_timer *t))
{
	ev_timer *w = (ev_timer *)t->impl;

	ev_timer_init(w, relay_timer_cb, 0., 0.);
	w->data = t;
	t->loop = l;
	t->cb = cb;
}

void relay_timer_start(struct relay_timer *t, uint64_t after_us)
{
	ev_timer *w = (ev_timer *)t->impl;

	ev_timer_stop(t->loop->ev, w);
	ev_timer_set(w, after_us / 1e6, 0.);
	ev_timer_start(t->loop->ev, w);
}

void relay_timer_stop(struct relay_timer *t)
{
	if (t->loop)
		ev_timer_stop(t->loop->ev, (ev_timer *)t->impl);
}

bool relay_timer_active(const struct relay_timer *t)
{
	return ev_is_active((const ev_timer *)t->impl);
}
