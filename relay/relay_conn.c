/*
 * relay_conn: lws callbacks for hosts and viewers, message assembly, and
 * the write path with its slow-viewer policy.
 *
 * The hot path: a host's binary message is copied once, from lws's
 * receive buffer into a frame sized from the media header's length field
 * (so it is allocated once, with LWS_PRE headroom).  The frame is then
 * queued by reference for each viewer and for the keyframe cache, and
 * each viewer's socket is written straight from it.  A frame larger than
 * RELAY_CHUNK goes out as WebSocket fragments; lws writes each fragment's
 * header into the LWS_PRE bytes before it, which are payload bytes of the
 * previous fragment of a shared frame, so they are saved and restored
 * around the write (lws has sent or copied everything when lws_write
 * returns).
 *
 * Slow viewers: a queue is bounded by queue_bytes and queue_msgs.  Over
 * the bound, discardable video and audio are dropped; other video makes
 * the viewer skip to the next keyframe (queued video is purged, the host
 * is asked for a keyframe).  Control messages and input are never
 * dropped; a viewer whose never-dropped backlog passes four times the
 * bound, or that makes no progress for stall_secs, is closed as slow.
 */
#include "relay/relay_conn.h"

#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"
#include "relay/relay_guard.h"

/* Largest single lws_write; matches the viewer protocol's tx_packet_size
 * so lws never splits (and copies) a write itself. */
#define RELAY_CHUNK (256 * 1024)
/* At most this many writes and bytes per connection per WRITEABLE turn. */
#define RELAY_TURN_WRITES 16
#define RELAY_TURN_BYTES (1024 * 1024)
/* Batches of at least this many queued messages are corked. */
#define RELAY_CORK_MIN 3
/* Before hello a text message is at most this long: a hello with a
 * token fits, and nothing unauthenticated costs more. */
#define RELAY_HELLO_MAX (8 * 1024)

static uint32_t relay_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- sending ------------------------------------------------------- */

static void relay_conn_want_write(struct relay_conn *c)
{
	lws_callback_on_writable(c->wsi);
}

static bool relay_is_media(const struct relay_frame *f, void *arg)
{
	(void)arg;
	return !f->text && f->kind != PROTO_KIND_INPUT &&
	       f->kind != PROTO_KIND_CONTROL;
}

static bool relay_is_video(const struct relay_frame *f, void *arg)
{
	(void)arg;
	return !f->text && f->kind == PROTO_KIND_VIDEO;
}

static void relay_count_drops(struct relay_conn *c, uint8_t kind, uint32_t n)
{
	if (!n)
		return;
	c->dropped += n;
	if (kind <= PROTO_KIND_CONTROL)
		c->relay->stats.dropped[kind] += n;
}

/* A peer that cannot keep up is told so (error slow, close 4017) if it
 * reads again within the close timeout; otherwise the timeout drops it.
 * Closing purges its queued media, so the error is next in line.  The
 * flag stops the error's own push from coming back here. */
static void relay_conn_kill_slow(struct relay_conn *c)
{
	c->slow_due = false;
	if (c->slow)
		return;
	c->slow = true;
	relay_log("slow", "desktop=%s role=%d",
		  c->session ? c->session->desktop : "-", c->role);
	relay_conn_refuse(c, -PROTO_E_SLOW, NULL);
}

static uint64_t relay_conn_stall_us(const struct relay *r)
{
	return (uint64_t)r->cfg.stall_secs * 1000000u;
}

static int relay_conn_write_some(struct relay_conn *c);

/* Writes what is queued at once, from the callback that queued it, when
 * lws holds nothing of an earlier write: a message to an idle viewer goes
 * out without asking for POLLOUT (two epoll_ctl calls) and waiting for
 * the next loop turn, as uWebSockets does.  What the socket does not take
 * stays queued, or in lws's buffer, for the writeable callback.  A failed
 * write cannot close the connection from another connection's callback,
 * so it is marked and closed from its own writeable turn. */
static void relay_conn_write_now(struct relay_conn *c)
{
	if (c->want_ping || c->write_failed || c->relay->stopping ||
	    lws_partial_buffered(c->wsi)) {
		relay_conn_want_write(c);
		return;
	}
	if (relay_conn_write_some(c) < 0) {
		c->write_failed = true;
		relay_conn_want_write(c);
		return;
	}
	c->last_progress_us = relay_turn_mono_us();
	if (c->is_host && c->session)
		c->relay->conn_events->drained(c);
	if (c->q.count)
		relay_conn_want_write(c);
}

static void relay_conn_push(struct relay_conn *c, struct relay_frame *f)
{
	const struct relay_config *cfg = &c->relay->cfg;

	/* Nothing may follow the error that closes a connection: a data
	 * frame after a Close frame makes browsers fail the connection. */
	if (c->state == RELAY_ST_CLOSING)
		return;
	/* The stall clock runs only while something waits to be written. */
	if (!c->q.count) {
		c->last_progress_us = relay_turn_mono_us();
		if (!relay_timer_active(&c->stall_timer))
			relay_timer_start(&c->stall_timer,
					  relay_conn_stall_us(c->relay));
	}
	relay_queue_push(&c->q, relay_frame_ref(f));
	if (!c->is_host)
		relay_hist_add(&c->relay->stats.queue_depth, c->q.count);
	if (c->q.count == 1)
		relay_conn_write_now(c);
	else
		relay_conn_want_write(c);
	/* Hosts too: a host that sends and never reads piles up errors.  The
	 * refusal detaches c from its session, which the caller up the stack
	 * may be in the middle of (a fan-out, a replay, a detach), so it is
	 * made from c's own stall timer, at once but in its own turn. */
	if (c->q.bytes > 4 * cfg->queue_bytes && !c->slow && !c->slow_due) {
		c->slow_due = true;
		relay_timer_start(&c->stall_timer, 0);
	}
}

void relay_conn_send_always(struct relay_conn *c, struct relay_frame *f)
{
	relay_conn_push(c, f);
}

void relay_conn_send_json(struct relay_conn *c, char *json)
{
	struct relay_frame *f;

	if (!json) {
		char what[96];

		snprintf(what, sizeof(what), "to=%s desktop=%s",
			 c->is_host ? "host" : "viewer",
			 c->session ? c->session->desktop : "-");
		relay_log_build_failed(what);
		return;
	}
	f = relay_frame_text(json, strlen(json));
	free(json);
	relay_conn_push(c, f);
	relay_frame_unref(f);
}

void relay_conn_send_error(struct relay_conn *c, int err, const char *detail)
{
	int e = err < 0 ? -err : err;

	if (e < PROTO_E__COUNT)
		c->relay->stats.refusals[e]++;
	relay_conn_send_json(c, proto_ctrl_error(err, detail));
}

void relay_conn_close(struct relay_conn *c, int code, const char *reason)
{
	if (c->state == RELAY_ST_CLOSING)
		return;
	c->state = RELAY_ST_CLOSING;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	/* What is still queued for a departing viewer is of no use to it. */
	relay_queue_purge(&c->q, relay_is_media, NULL, NULL);
	/* Read nothing more: lws would still parse what the peer sent
	 * after the refused message, and a WebSocket protocol error in it
	 * made lws send its own Close (1002) ahead of the relay's error,
	 * which then followed the Close and was lost.  lws reads again
	 * once it awaits the peer's answer to the relay's Close. */
	lws_rx_flow_control(c->wsi, 0);
	relay_conn_want_write(c);
	/* A peer that stops reading must not hold the connection open. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

void relay_conn_refuse(struct relay_conn *c, int err, const char *detail)
{
	const struct proto_err_info *info = proto_err_info(err);

	if (c->state == RELAY_ST_CLOSING)
		return;
	relay_log("refuse", "reason=%s desktop=%s", info->code,
		  c->session ? c->session->desktop : "-");
	c->relay->conn_events->gone(c);
	relay_conn_send_error(c, err, detail);
	relay_conn_close(c, info->close_code, info->code);
}

void relay_conn_refuse_retry(struct relay_conn *c, int err, const char *detail,
			     int64_t retry_after_s)
{
	const struct proto_err_info *info = proto_err_info(err);
	int e = err < 0 ? -err : err;

	if (c->state == RELAY_ST_CLOSING)
		return;
	relay_log("refuse", "reason=%s retry_after=%lld desktop=%s", info->code,
		  (long long)retry_after_s,
		  c->session ? c->session->desktop : "-");
	c->relay->conn_events->gone(c);
	if (e < PROTO_E__COUNT)
		c->relay->stats.refusals[e]++;
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_ERROR,
		"{s:s, s:s, s:I}", "code", info->code, "message",
		detail ? detail : info->message, "retry_after",
		(json_int_t)retry_after_s));
	relay_conn_close(c, info->close_code, info->code);
}

void relay_conn_redirect(struct relay_conn *c, const char *url)
{
	const struct proto_err_info *info = proto_err_info(-PROTO_E_REDIRECT);

	if (c->state == RELAY_ST_CLOSING)
		return;
	relay_log("redirect", "url=%s role=%s", url, c->is_host ? "host" : "viewer");
	c->relay->conn_events->gone(c);
	c->relay->stats.refusals[PROTO_E_REDIRECT]++;
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_ERROR,
		"{s:s, s:s, s:s}", "code", info->code, "message",
		info->message, "url", url));
	relay_conn_close(c, info->close_code, info->code);
}

void relay_conn_wait_keyframe(struct relay_conn *c)
{
	c->skip_video = true;
}

/* Video over the bound: drop what is queued and restart at a keyframe,
 * which is fresher for the viewer than the backlog it could not read. */
static void relay_conn_video_overflow(struct relay_conn *c,
				      struct relay_frame *f)
{
	uint32_t n = relay_queue_purge(&c->q, relay_is_video, NULL, NULL);

	relay_count_drops(c, PROTO_KIND_VIDEO, n);
	if (f->flags & PROTO_F_KEYFRAME) {
		relay_conn_push(c, f);
		return;
	}
	relay_count_drops(c, PROTO_KIND_VIDEO, 1);
	c->skip_video = true;
	c->relay->conn_events->want_keyframe(c);
}

void relay_conn_send_media(struct relay_conn *c, struct relay_frame *f)
{
	const struct relay_config *cfg = &c->relay->cfg;
	bool fits;

	if (c->state != RELAY_ST_JOINED)
		return;
	if (f->kind == PROTO_KIND_VIDEO && c->skip_video) {
		if (!(f->flags & PROTO_F_KEYFRAME)) {
			relay_count_drops(c, PROTO_KIND_VIDEO, 1);
			return;
		}
		c->skip_video = false;
	}
	fits = c->q.bytes + f->len <= cfg->queue_bytes &&
	       c->q.count < cfg->queue_msgs;
	if (fits || f->kind == PROTO_KIND_CONTROL) {
		relay_conn_push(c, f);
		return;
	}
	if (f->kind == PROTO_KIND_VIDEO && !(f->flags & PROTO_F_DISCARDABLE)) {
		relay_conn_video_overflow(c, f);
		return;
	}
	relay_count_drops(c, f->kind, 1);
}

/* ---- writing ------------------------------------------------------- */

static int relay_conn_write_ping(struct relay_conn *c)
{
	unsigned char buf[LWS_PRE + 8];

	c->want_ping = false;
	c->ping_sent_us = relay_now_us();
	memcpy(buf + LWS_PRE, "asp-ping", 8);
	if (lws_write(c->wsi, buf + LWS_PRE, 8, LWS_WRITE_PING) < 0)
		return -1;
	return 0;
}

/* Writes the head's next piece; pops it when it is all written. */
static int relay_conn_write_head(struct relay_conn *c, struct relay_frame *f)
{
	struct relay *r = c->relay;
	size_t off = c->q.sent_off, n = f->len - off;
	unsigned char *p = relay_frame_data(f) + off;
	unsigned char saved[LWS_PRE];
	enum lws_write_protocol wp;
	int rc;

	if (f->text) {
		wp = LWS_WRITE_TEXT;
	} else {
		if (n > RELAY_CHUNK)
			n = RELAY_CHUNK;
		wp = lws_write_ws_flags(LWS_WRITE_BINARY, off == 0,
					off + n == f->len);
	}
	if (off)
		memcpy(saved, p - LWS_PRE, LWS_PRE);
	rc = lws_write(c->wsi, p, n, wp);
	if (off)
		memcpy(p - LWS_PRE, saved, LWS_PRE);
	if (rc < 0)
		return -1;
	if (lws_partial_buffered(c->wsi))
		r->stats.partial_writes++;
	r->stats.bytes_out += n;
	c->q.sent_off += n;
	if (c->q.sent_off < f->len)
		return 0;
	r->stats.msgs_out++;
	if (!f->text) {
		uint64_t now = relay_turn_now_us();

		r->stats.forwarded_bytes += f->len;
		if (c->session)
			c->session->forwarded_bytes += f->len;
		if (f->capture_us)
			c->last_age_us = now - f->capture_us;
		/* Not the keyframe cache replayed at join, nor a clock step. */
		if (f->recv_us >= c->joined_us && now >= f->recv_us)
			relay_hist_add(&r->stats.forward_us, now - f->recv_us);
	}
	relay_queue_pop(&c->q);
	return 0;
}

/* Writes queued messages until the socket pushes back (lws had to buffer
 * part of a write) or the turn's budget is spent: one poll per message
 * was the cost of small messages.  The budget keeps one busy connection
 * from starving the others. */
/* Corks the socket around a batch of several messages, so the kernel
 * sends them in full segments instead of one packet per message (with
 * TCP_NODELAY, which lws sets, each small write was its own packet, and
 * the per-packet work was most of the relay's CPU at 1 KiB). */
static void relay_conn_cork(struct relay_conn *c, int on)
{
	int fd = (int)lws_get_socket_fd(c->wsi);

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static int relay_conn_write_some(struct relay_conn *c)
{
	size_t budget = RELAY_TURN_BYTES;
	bool cork = c->q.count >= RELAY_CORK_MIN;
	struct relay_frame *f;
	int rc = 0;

	if (cork)
		relay_conn_cork(c, 1);
	for (int n = 0; n < RELAY_TURN_WRITES; n++) {
		uint64_t before = c->relay->stats.bytes_out;

		f = relay_queue_head(&c->q);
		if (!f)
			break;
		if (relay_conn_write_head(c, f) < 0) {
			rc = -1;
			break;
		}
		if (lws_partial_buffered(c->wsi))
			break;
		if (c->relay->stats.bytes_out - before >= budget)
			break;
		budget -= c->relay->stats.bytes_out - before;
	}
	if (cork)
		relay_conn_cork(c, 0);
	return rc;
}

static int relay_conn_writable(struct relay_conn *c)
{
	if (c->write_failed)
		return -1;
	if (c->want_ping && !c->q.sent_off && c->state != RELAY_ST_CLOSING) {
		if (relay_conn_write_ping(c) < 0)
			return -1;
		relay_conn_want_write(c);
		return 0;
	}
	if (!relay_queue_head(&c->q)) {
		/* Close only from a turn that wrote nothing, so the error
		 * before it is not still in lws's buffer. */
		if (c->state == RELAY_ST_CLOSING) {
			lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
					 (unsigned char *)c->close_reason,
					 strlen(c->close_reason));
			return -1;
		}
		return 0;
	}
	if (relay_conn_write_some(c) < 0)
		return -1;
	c->last_progress_us = relay_turn_mono_us();
	if (c->is_host && c->session)
		c->relay->conn_events->drained(c);
	if (c->q.count || c->state == RELAY_ST_CLOSING)
		relay_conn_want_write(c);
	return 0;
}

/* ---- receiving: control -------------------------------------------- */

static void relay_conn_echo(struct relay_conn *c, const struct proto_ctrl *m)
{
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_ECHO, "{s:I}", "t",
		(json_int_t)proto_ctrl_int(m, "t", 0)));
}

static void relay_conn_metrics_req(struct relay_conn *c,
				   const struct proto_ctrl *m)
{
	int64_t ms = proto_ctrl_int(m, "interval_ms", -1);

	if (ms > 0 && (ms < 100 || ms > 60000)) {
		relay_conn_send_error(c, -PROTO_E_MALFORMED,
			"field \"interval_ms\" must be 0 or 100-60000");
		return;
	}
	if (ms >= 0)
		c->metrics_interval_ms = (uint32_t)ms;
	if (c->metrics_interval_ms)
		relay_timer_start(&c->metrics_timer,
				  c->metrics_interval_ms * 1000ull);
	else
		relay_timer_stop(&c->metrics_timer);
	relay_conn_report_metrics(c);
}

/* Rights are re-checked on every action, not only at hello: a token
 * that expired closes the connection. */
static bool relay_conn_token_live(struct relay_conn *c)
{
	if (c->state != RELAY_ST_READY && c->state != RELAY_ST_JOINED)
		return true;
	if ((int64_t)c->who.exp > relay_clock_s(c->relay))
		return true;
	relay_log("token-expired", "user=%s", c->who.user);
	relay_conn_refuse(c, -PROTO_E_TOKEN_EXPIRED, NULL);
	return false;
}

/* Arms the token timer for the seconds the token has left. */
static void relay_conn_token_arm(struct relay_conn *c)
{
	int64_t left = (int64_t)c->who.exp - relay_clock_s(c->relay);

	relay_timer_start(&c->token_timer,
			  left > 0 ? (uint64_t)left * 1000000u : 0);
}

static void relay_conn_token_due(struct relay_timer *t)
{
	struct relay_conn *c = lws_container_of(t, struct relay_conn,
						token_timer);

	if (relay_conn_token_live(c))
		relay_conn_token_arm(c);
}

static void relay_conn_hello_due(struct relay_timer *t)
{
	struct relay_conn *c = lws_container_of(t, struct relay_conn,
						hello_timer);

	if (c->state == RELAY_ST_HELLO)
		relay_conn_refuse(c, -PROTO_E_HELLO_TIMEOUT, NULL);
}

static void relay_conn_hello(struct relay_conn *c, const struct proto_ctrl *m)
{
	if (m->type != PROTO_MSG_HELLO) {
		/* Nothing can happen before a valid hello. */
		relay_conn_refuse(c, -PROTO_E_STATE, "Say hello first.");
		return;
	}
	c->relay->conn_events->hello(c, m);
	if (c->state != RELAY_ST_READY && c->state != RELAY_ST_JOINED)
		return;
	relay_timer_stop(&c->hello_timer);
	relay_guard_hello_done(c->relay, c, proto_ctrl_str(m, "token"));
	relay_conn_token_arm(c);
}

static void relay_conn_dispatch(struct relay_conn *c, const struct proto_ctrl *m)
{
	const struct relay_conn_events *ev = c->relay->conn_events;

	if (c->state == RELAY_ST_HELLO) {
		relay_conn_hello(c, m);
		return;
	}
	if (!relay_conn_token_live(c))
		return;
	switch (m->type) {
	case PROTO_MSG_ECHO:
		relay_conn_echo(c, m);
		return;
	case PROTO_MSG_METRICS:
		relay_conn_metrics_req(c, m);
		return;
	case PROTO_MSG_JOIN:
		if (!c->is_host) {
			ev->join(c, m);
			return;
		}
		break;
	default:
		break;
	}
	if (c->state != RELAY_ST_JOINED || m->type == PROTO_MSG_HELLO)
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
	else
		ev->msg(c, m);
}

/* One whole control message: parsed and dispatched; kept for later if
 * the layer above deferred it. */
static void relay_conn_text(struct relay_conn *c, const char *text, size_t len)
{
	struct proto_ctrl m;
	char why[256];
	enum proto_dir dir = c->is_host ? PROTO_DIR_HOST_TO_RELAY :
					  PROTO_DIR_VIEWER_TO_RELAY;
	int err = proto_ctrl_parse(text, len, dir, &m, why, sizeof(why));

	if (err && c->state == RELAY_ST_HELLO) {
		/* Nothing can happen before a valid hello. */
		relay_conn_refuse(c, err, why);
		return;
	}
	if (err) {
		relay_conn_send_error(c, err, why);
		return;
	}
	c->defer_asked = false;
	relay_conn_dispatch(c, &m);
	proto_ctrl_release(&m);
	if (!c->defer_asked || c->state == RELAY_ST_CLOSING) {
		c->deferred_since_us = 0;
		return;
	}
	if (text != c->deferred) {
		free(c->deferred);
		c->deferred = relay_xmalloc(len);
		memcpy(c->deferred, text, len);
		c->deferred_len = len;
		c->deferred_since_us = relay_mono_us();
		lws_rx_flow_control(c->wsi, 0);
	}
}

static void relay_conn_text_done(struct relay_conn *c)
{
	size_t len = c->rx_text_len;

	c->rx_text_len = 0;
	relay_conn_text(c, c->rx_text, len);
}

void relay_conn_defer(struct relay_conn *c, uint64_t delay_us)
{
	c->defer_asked = true;
	/* The deferral has its own deadline (the layer above's): the hello
	 * timer must not end a hello that is only waiting. */
	relay_timer_stop(&c->hello_timer);
	relay_timer_start(&c->defer_timer, delay_us);
}

uint64_t relay_conn_deferred_for(const struct relay_conn *c)
{
	return c->deferred_since_us ? relay_mono_us() - c->deferred_since_us
				    : 0;
}

static void relay_conn_defer_due(struct relay_timer *t)
{
	struct relay_conn *c = lws_container_of(t, struct relay_conn,
						defer_timer);

	if (!c->deferred || c->state == RELAY_ST_CLOSING)
		return;
	relay_conn_text(c, c->deferred, c->deferred_len);
	if (c->defer_asked || !c->deferred)
		return;
	free(c->deferred);
	c->deferred = NULL;
	if (c->state != RELAY_ST_CLOSING)
		lws_rx_flow_control(c->wsi, 1);
}

static void relay_conn_rx_text(struct relay_conn *c, const void *in,
			       size_t len, bool final)
{
	if (c->rx_skip) {
		if (final) {
			c->rx_skip = false;
			relay_conn_refuse(c, c->rx_skip_err, NULL);
		}
		return;
	}
	if (c->rx_text_len + len > (c->state == RELAY_ST_HELLO ?
				    RELAY_HELLO_MAX : PROTO_CTRL_MAX_LEN)) {
		c->rx_text_len = 0;
		c->rx_skip = true;
		c->rx_skip_err = -PROTO_E_TOO_LARGE;
		relay_conn_rx_text(c, NULL, 0, final);
		return;
	}
	if (c->rx_text_len + len > c->rx_text_cap) {
		c->rx_text_cap = c->rx_text_len + len;
		c->rx_text = relay_xrealloc(c->rx_text, c->rx_text_cap);
	}
	if (len)
		memcpy(c->rx_text + c->rx_text_len, in, len);
	c->rx_text_len += len;
	if (final)
		relay_conn_text_done(c);
}

/* ---- receiving: media ---------------------------------------------- */

static void relay_conn_media_done(struct relay_conn *c)
{
	struct relay_frame *f = c->rx;
	struct proto_media_hdr h;
	char why[256];
	int err;

	c->rx = NULL;
	c->rx_have = 0;
	err = proto_media_decode(relay_frame_data(f), f->len, &h, why,
				 sizeof(why));
	if (!err && c->is_host && h.kind == PROTO_KIND_INPUT)
		err = -PROTO_E_MALFORMED, snprintf(why, sizeof(why),
			"hosts do not send input messages");
	if (!err && !c->is_host && h.kind != PROTO_KIND_INPUT)
		err = -PROTO_E_MALFORMED, snprintf(why, sizeof(why),
			"viewers send only input messages");
	if (err) {
		relay_conn_send_error(c, err, why);
		relay_frame_unref(f);
		return;
	}
	f->kind = h.kind;
	f->flags = h.flags;
	f->codec = h.codec;
	f->stream = h.stream;
	f->seq = h.seq;
	f->capture_us = h.capture_us;
	f->recv_us = relay_turn_now_us();
	c->relay->stats.msgs_in++;
	if (!c->is_host && !relay_conn_token_live(c)) {
		relay_frame_unref(f);
		return;
	}
	if (c->state != RELAY_ST_JOINED)
		relay_conn_send_error(c, -PROTO_E_STATE, NULL);
	else
		c->relay->conn_events->media(c, f);
	relay_frame_unref(f);
}

/* Starts a frame once the 32 header bytes are known: the header's length
 * field sizes the one allocation. */
static int relay_conn_rx_begin(struct relay_conn *c, const uint8_t *hdr)
{
	size_t max = c->is_host ? c->relay->cfg.max_message : PROTO_CTRL_MAX_LEN;
	size_t total;

	if (hdr[0] != PROTO_MEDIA_MAGIC) {
		c->rx_skip = true;
		c->rx_skip_err = -PROTO_E_MALFORMED;
		return -1;
	}
	total = (size_t)PROTO_MEDIA_HDR_LEN + relay_be32(hdr + 12);
	if (total > max) {
		c->rx_skip = true;
		c->rx_skip_err = -PROTO_E_TOO_LARGE;
		return -1;
	}
	c->rx = relay_frame_new(total);
	c->rx->len = (uint32_t)total;
	c->rx_have = 0;
	return 0;
}

static void relay_conn_rx_skip_done(struct relay_conn *c)
{
	c->rx_skip = false;
	c->rx_hdr_have = 0;
	if (c->rx_skip_err == -PROTO_E_TOO_LARGE)
		relay_conn_refuse(c, c->rx_skip_err, NULL);
	else
		relay_conn_send_error(c, c->rx_skip_err,
			"the binary message is not a valid media message");
}

static void relay_conn_rx_copy(struct relay_conn *c, const uint8_t *p,
			       size_t n)
{
	struct relay *r = c->relay;

	if (c->rx_have + n > c->rx->len) {
		/* More bytes than the header announced. */
		relay_frame_unref(c->rx);
		c->rx = NULL;
		c->rx_skip = true;
		c->rx_skip_err = -PROTO_E_MALFORMED;
		return;
	}
	memcpy(relay_frame_data(c->rx) + c->rx_have, p, n);
	c->rx_have += n;
	r->stats.copied_bytes += n;
	if (c->session)
		c->session->copied_bytes += n;
}

static void relay_conn_rx_binary(struct relay_conn *c, const uint8_t *in,
				 size_t len, bool final)
{
	c->relay->stats.bytes_in += len;
	if (c->state == RELAY_ST_HELLO) {
		/* Refused at once, before its declared length is allocated. */
		relay_conn_refuse(c, -PROTO_E_STATE,
				  "Say hello first: no binary message before it.");
		return;
	}
	if (!c->rx && !c->rx_skip) {
		if (!c->rx_hdr_have && len >= PROTO_MEDIA_HDR_LEN) {
			relay_conn_rx_begin(c, in);
		} else {
			/* Rare: a header split across reads is staged. */
			size_t need = PROTO_MEDIA_HDR_LEN - c->rx_hdr_have;
			size_t n = len < need ? len : need;

			memcpy(c->rx_hdr + c->rx_hdr_have, in, n);
			c->rx_hdr_have += n;
			in += n;
			len -= n;
			if (c->rx_hdr_have == PROTO_MEDIA_HDR_LEN) {
				c->rx_hdr_have = 0;
				if (relay_conn_rx_begin(c, c->rx_hdr) == 0)
					relay_conn_rx_copy(c, c->rx_hdr,
							   PROTO_MEDIA_HDR_LEN);
			}
		}
	}
	if (c->rx && len)
		relay_conn_rx_copy(c, in, len);
	if (!final)
		return;
	if (!c->rx && !c->rx_skip) {
		/* The message ended inside its header. */
		c->rx_skip = true;
		c->rx_skip_err = -PROTO_E_MALFORMED;
	} else if (c->rx && c->rx_have != c->rx->len) {
		relay_frame_unref(c->rx);
		c->rx = NULL;
		c->rx_skip = true;
		c->rx_skip_err = -PROTO_E_MALFORMED;
	}
	if (c->rx_skip) {
		relay_conn_rx_skip_done(c);
		return;
	}
	c->relay->stats.copies++;
	relay_conn_media_done(c);
}

/* ---- lifetime ------------------------------------------------------ */

static void relay_conn_stall_check(struct relay_timer *t);
static void relay_conn_metrics_due(struct relay_timer *t);
static void relay_conn_keepalive(struct relay_timer *t);

static uint64_t relay_conn_ping_us(const struct relay *r)
{
	return (uint64_t)r->cfg.keepalive_secs * 1000000u * 2 / 3;
}

static void relay_conn_open(struct relay_conn *c, struct lws *wsi, bool host)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));

	memset(c, 0, sizeof(*c));
	c->relay = r;
	c->wsi = wsi;
	c->is_host = host;
	c->last_progress_us = relay_turn_mono_us();
	c->opened_us = relay_turn_now_us();
	relay_timer_init(&c->stall_timer, r->loop, relay_conn_stall_check);
	relay_timer_init(&c->metrics_timer, r->loop, relay_conn_metrics_due);
	relay_timer_init(&c->hello_timer, r->loop, relay_conn_hello_due);
	relay_timer_init(&c->token_timer, r->loop, relay_conn_token_due);
	relay_timer_init(&c->keepalive_timer, r->loop, relay_conn_keepalive);
	relay_timer_init(&c->defer_timer, r->loop, relay_conn_defer_due);
	c->last_rx_us = c->last_progress_us;
	relay_timer_start(&c->keepalive_timer, relay_conn_ping_us(r));
	relay_queue_init(&c->q);
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	r->nconns++;
	if (host)
		r->nhosts++;
	else
		r->nviewers++;
	if (r->stopping) {
		relay_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
		return;
	}
	if (relay_guard_open(r, c)) {
		relay_conn_refuse(c, -PROTO_E_TOO_MANY,
				  "Too many connections from this address are waiting to say hello.");
		return;
	}
	relay_timer_start(&c->hello_timer,
			  (uint64_t)r->cfg.hello_timeout_s * 1000000u);
}

static void relay_conn_gone(struct relay_conn *c)
{
	struct relay *r = c->relay;

	if (!r)
		return; /* never opened */
	r->conn_events->gone(c);
	relay_guard_close(r, c);
	relay_timer_stop(&c->stall_timer);
	relay_timer_stop(&c->metrics_timer);
	relay_timer_stop(&c->hello_timer);
	relay_timer_stop(&c->token_timer);
	relay_timer_stop(&c->keepalive_timer);
	relay_timer_stop(&c->defer_timer);
	relay_queue_free(&c->q);
	relay_frame_unref(c->rx);
	free(c->rx_text);
	free(c->deferred);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->nconns--;
	if (c->is_host)
		r->nhosts--;
	else
		r->nviewers--;
	c->relay = NULL;
}

/* The path of the upgrade request must match the subprotocol. */
static int relay_conn_filter(struct lws *wsi, bool host)
{
	char uri[64];
	int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);

	if (n <= 0)
		return 1;
	return strcmp(uri, host ? "/host" : "/view") != 0;
}

static int relay_conn_cb(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len, bool host)
{
	struct relay_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return relay_conn_filter(wsi, host);
	case LWS_CALLBACK_ESTABLISHED:
		relay_conn_open(c, wsi, host);
		break;
	case LWS_CALLBACK_RECEIVE:
		c->last_rx_us = relay_turn_mono_us();
		if (c->state == RELAY_ST_CLOSING)
			break;
		if (lws_frame_is_binary(wsi))
			relay_conn_rx_binary(c, in, len,
					     lws_is_final_fragment(wsi));
		else
			relay_conn_rx_text(c, in, len,
					   lws_is_final_fragment(wsi));
		break;
	case LWS_CALLBACK_RECEIVE_PONG:
		c->last_rx_us = relay_turn_mono_us();
		if (c->ping_sent_us) {
			c->rtt_ms = (relay_now_us() - c->ping_sent_us) / 1000.0;
			c->ping_sent_us = 0;
		}
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return relay_conn_writable(c);
	case LWS_CALLBACK_CLOSED:
		relay_conn_gone(c);
		break;
	default:
		break;
	}
	return 0;
}

int relay_conn_host_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	return relay_conn_cb(wsi, reason, user, in, len, true);
}

int relay_conn_view_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	return relay_conn_cb(wsi, reason, user, in, len, false);
}

/* ---- metrics and health -------------------------------------------- */

static json_t *relay_streams_json(const struct relay_session *s)
{
	json_t *a = json_array();

	for (int i = 0; i < RELAY_STREAMS_MAX && s->streams[i].used; i++) {
		const struct relay_stream_stats *st = &s->streams[i];
		json_t *o = json_pack("{s:s, s:i, s:s, s:f, s:f, s:I, s:I}",
			"kind", proto_kind_name(st->kind), "stream", st->stream,
			"codec", proto_codec_name(st->codec), "fps", st->fps,
			"bytes_per_s", st->bytes_per_s, "messages",
			(json_int_t)st->msgs, "bytes", (json_int_t)st->bytes);

		if (st->kind == PROTO_KIND_VIDEO && s->width > 0) {
			json_object_set_new(o, "width", json_integer(s->width));
			json_object_set_new(o, "height", json_integer(s->height));
		}
		json_array_append_new(a, o);
	}
	return a;
}

void relay_conn_report_metrics(struct relay_conn *c)
{
	const struct relay_session *s = c->session;
	double latency = c->last_age_us / 1000.0 + c->rtt_ms / 2;

	c->want_ping = true;
	relay_conn_want_write(c);
	relay_conn_send_json(c, proto_ctrl_build(PROTO_MSG_METRICS,
		"{s:s, s:o, s:I, s:I, s:f, s:f, s:I, s:I}",
		"session", s ? s->desktop : "",
		"streams", s ? relay_streams_json(s) : json_array(),
		"dropped", (json_int_t)c->dropped,
		"queued_bytes", (json_int_t)c->q.bytes,
		"rtt_ms", c->rtt_ms, "latency_ms", latency,
		"copied_bytes", (json_int_t)(s ? s->copied_bytes : 0),
		"forwarded_bytes", (json_int_t)(s ? s->forwarded_bytes : 0)));
}

/* A viewer that has data waiting and wrote nothing for stall_secs is
 * slow.  The timer was armed when data began waiting; writes only move
 * last_progress_us, and the timer re-arms itself for what is left. */
static void relay_conn_stall_check(struct relay_timer *t)
{
	struct relay_conn *c = lws_container_of(t, struct relay_conn,
						stall_timer);
	uint64_t stall = relay_conn_stall_us(c->relay);
	uint64_t now = relay_turn_mono_us();
	uint64_t idle = now > c->last_progress_us ? now - c->last_progress_us : 0;

	if (c->state == RELAY_ST_CLOSING)
		return;
	if (c->slow_due || (c->q.count && idle >= stall)) {
		relay_conn_kill_slow(c);
		return;
	}
	if (!c->q.count)
		return;
	relay_timer_start(t, stall - idle);
}

static void relay_conn_metrics_due(struct relay_timer *t)
{
	struct relay_conn *c = lws_container_of(t, struct relay_conn,
						metrics_timer);

	if (c->state == RELAY_ST_CLOSING || !c->metrics_interval_ms)
		return;
	relay_timer_start(t, c->metrics_interval_ms * 1000ull);
	relay_conn_report_metrics(c);
}

/* A peer that has sent nothing for two thirds of keepalive_secs is pinged
 * (its pong counts as traffic); one silent for keepalive_secs is dropped
 * without a close frame, as lws's own keepalive did: it is not there to
 * read one.  The timer is armed once and re-arms itself for what is left,
 * so received traffic costs one store of the turn's time. */
static void relay_conn_keepalive(struct relay_timer *t)
{
	struct relay_conn *c = lws_container_of(t, struct relay_conn,
						keepalive_timer);
	uint64_t hangup = (uint64_t)c->relay->cfg.keepalive_secs * 1000000u;
	uint64_t ping = relay_conn_ping_us(c->relay);
	uint64_t now = relay_turn_mono_us();
	uint64_t idle;

	/* A deferred hello or join reads nothing (not even a pong) while
	 * it waits, within its own deadline: its silence is ours. */
	if (c->deferred)
		c->last_rx_us = now;
	idle = now > c->last_rx_us ? now - c->last_rx_us : 0;
	if (idle >= hangup) {
		relay_log("keepalive-timeout", "desktop=%s role=%d",
			  c->session ? c->session->desktop : "-", c->role);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	if (idle >= ping) {
		c->want_ping = true;
		relay_conn_want_write(c);
		relay_timer_start(t, hangup - idle);
		return;
	}
	relay_timer_start(t, ping - idle);
}
