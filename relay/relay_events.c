/*
 * relay_events: subscribers, their bounded buffers and the event text
 * (text/event-stream); see the header.
 */
#include "relay/relay_events.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay.h"
#include "relay/relay_alloc.h"
#include "relay/relay_clock.h"

#define RELAY_EVENTS_RESYNC "event: resync\ndata: {}\n\n"
#define RELAY_EVENTS_PING ": ping\n\n"

static void relay_events_append(struct relay_events_sub *sub, const char *text,
				size_t n)
{
	if (sub->len + n > RELAY_EVENTS_BUF) {
		sub->lost = true;
		return;
	}
	memcpy(sub->buf + LWS_PRE + sub->len, text, n);
	sub->len += n;
	lws_callback_on_writable(sub->wsi);
}

void relay_events_subscribe(struct relay *r, struct relay_events_sub *sub,
			    struct lws *wsi)
{
	char hello[64];

	*sub = (struct relay_events_sub){
	    .wsi = wsi,
	    .buf = relay_xmalloc(LWS_PRE + RELAY_EVENTS_BUF),
	    .next = r->events,
	    .on = true,
	};
	if (r->events)
		r->events->prev = sub;
	r->events = sub;
	snprintf(hello, sizeof(hello), "event: hello\ndata: {\"now\":%lld}\n\n",
		 (long long)relay_clock_s(r));
	relay_events_append(sub, hello, strlen(hello));
}

void relay_events_unsubscribe(struct relay *r, struct relay_events_sub *sub)
{
	if (!sub->on)
		return;
	if (sub->prev)
		sub->prev->next = sub->next;
	else
		r->events = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	free(sub->buf);
	*sub = (struct relay_events_sub){0};
}

int relay_events_write(struct relay_events_sub *sub)
{
	size_t n = sub->len;

	if (!n)
		return 0;
	sub->len = 0;
	if (lws_write(sub->wsi, (unsigned char *)sub->buf + LWS_PRE, n,
		      LWS_WRITE_HTTP) < 0)
		return -1;
	if (sub->lost) {
		sub->lost = false;
		relay_events_append(sub, RELAY_EVENTS_RESYNC,
				    strlen(RELAY_EVENTS_RESYNC));
	}
	return 0;
}

void relay_events_ping(struct relay_events_sub *sub)
{
	relay_events_append(sub, RELAY_EVENTS_PING, strlen(RELAY_EVENTS_PING));
}

static json_t *relay_events_json(struct relay *r, const char *event,
				 const char *actor, const char *desktop,
				 const char *detail)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I}", "event", event, "actor",
			 actor ? actor : "", "desktop", desktop ? desktop : "",
			 "detail", detail ? detail : "", "time",
			 (json_int_t)relay_clock_s(r));
}

void relay_events_publish(struct relay *r, const char *event, const char *actor,
			  const char *desktop, const char *detail)
{
	json_t *j;

	/* In a cluster every node's console sees every node's changes. */
	if (r->events_out) {
		j = relay_events_json(r, event, actor, desktop, detail);
		if (j)
			r->events_out(r, j);
		json_decref(j);
	}
	if (r->events)
		relay_events_deliver(r, relay_events_json(r, event, actor,
							  desktop, detail));
}

void relay_events_deliver(struct relay *r, json_t *j)
{
	char *data, *text;
	size_t n;

	if (!r->events) {
		json_decref(j);
		return;
	}
	json_object_del(j, "op");
	json_object_del(j, "from");
	data = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!data) {
		relay_log_build_failed("to=event-stream");
		return;
	}
	/* Compact JSON has no newline, so it is one data: line. */
	n = strlen(data) + 32;
	text = relay_xmalloc(n);
	snprintf(text, n, "event: change\ndata: %s\n\n", data);
	for (struct relay_events_sub *sub = r->events; sub; sub = sub->next)
		relay_events_append(sub, text, strlen(text));
	free(text);
	free(data);
}
