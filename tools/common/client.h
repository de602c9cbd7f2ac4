/*
 * client: one WebSocket client connection on its own lws context.
 *
 * The tools (asp-host, asp-view) and the benchmark each speak to the relay
 * over exactly one WebSocket, so a client owns an lws context with one
 * protocol and one connection.  It hides what lws 4.1 makes easy to get
 * wrong (docs: /work/shared/notes/libwebsockets-4.1.md):
 *
 *  - an lws client masks payloads in place, so every queued message has a
 *    private buffer with LWS_PRE headroom (struct client_out);
 *  - writes happen only on CLIENT_WRITEABLE, one lws_write per callback,
 *    and messages above CLIENT_FRAG_LEN go out as fragments;
 *  - received fragments are reassembled into one message (bounded by
 *    max_message) before the owner sees it;
 *  - the peer's close code and reason are kept for the exit status;
 *  - a lost connection can be made again on the same context
 *    (client_reconnect), with fresh per-connection state, to the same
 *    URL or another (client_retarget).
 *
 * Everything runs on the thread that calls client_run(); no function here
 * is thread-safe.  Callbacks are never made after client_destroy() starts.
 */
#ifndef ASP_CLIENT_H
#define ASP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

/* Messages above this go out as fragments of this size. */
#define CLIENT_FRAG_LEN (64 * 1024)
/* Default bound on one received message when the config gives none:
 * above any --max-message a relay is likely to run with; memory grows
 * only to the largest message actually received. */
#define CLIENT_DEFAULT_MAX_MESSAGE (256u * 1024 * 1024)
/* A clean close that cannot drain its queue in this long is forced. */
#define CLIENT_CLOSE_DRAIN_US (3 * LWS_US_PER_SEC)

struct client;

/* An outgoing message: a private buffer with LWS_PRE bytes of headroom
 * before the payload, because lws writes the frame header there and masks
 * the payload in place. */
struct client_out {
	struct client_out *next;
	size_t len;   /* payload bytes */
	size_t sent;  /* payload bytes already handed to lws_write */
	int binary;
	uint8_t buf[]; /* LWS_PRE + len */
};

/* Send flags. */
enum client_send_flag {
	CLIENT_SEND_BINARY = 1 << 0,
	/* Goes ahead of every queued message that has not started yet; for
	 * control messages that must not wait behind video. */
	CLIENT_SEND_URGENT = 1 << 1,
};

struct client_ops {
	/* The WebSocket is open; sending is possible. */
	void (*on_open)(struct client *c, void *user);
	/* One whole received message, text or binary.  The bytes are valid
	 * only during the call (they are the client's reassembly buffer);
	 * text is not NUL-terminated. */
	void (*on_text)(void *user, const char *text, size_t len);
	void (*on_binary)(void *user, const uint8_t *data, size_t len);
	/* The connection is gone (closed, or never opened: see
	 * client_close_info()).  Called by client_run() outside any lws
	 * callback; client_run() then returns unless this called
	 * client_reconnect().  It must not destroy the client. */
	void (*on_closed)(struct client *c, void *user);
};

struct client_config {
	const char *url;          /* ws://, wss://, http:// or https:// */
	const char *path;         /* appended to the URL's own path: "/host" */
	const char *subprotocol;  /* "asp.host.v1" */
	bool insecure;            /* accept self-signed / mismatched certs */
	size_t max_message;       /* receive bound; 0 = the default above */
	const struct client_ops *ops;
	void *user;
};

/* How the connection ended, for the exit status. */
struct client_close_info {
	bool established;     /* the WebSocket opened at some point */
	bool connect_failed;  /* never opened: refused, DNS, TLS, handshake */
	bool we_closed;       /* we sent the close (client_close) */
	int peer_code;        /* close code the peer sent, 0 if none */
	char peer_reason[128];
	char connect_error[256];
};

/* Creates the context and starts connecting; nothing is called back
 * before client_run().  0, or -EINVAL (bad URL) / -ENOMEM / -EIO (lws
 * failed), with a sentence in why.  On failure *out is NULL. */
int client_create(struct client **out, const struct client_config *cfg,
		  char *why, size_t why_len);

/* Services the connection until it has closed (or failed to open), then
 * calls on_closed, and goes on servicing if that reconnected.  Returns 0,
 * or -EIO if lws failed. */
int client_run(struct client *c);

/* From on_closed only: makes a fresh connection attempt to the same URL
 * after delay_us, on the same context (timers keep running meanwhile).
 * What was queued for the lost connection is dropped, and the close info
 * is cleared when the attempt starts; on_open is called again once it
 * opens, on_closed again if it fails or later closes.  Sending fails
 * with -ENOTCONN until the attempt starts; client_close() in the
 * meantime cancels it.  0, or -EINVAL if the connection is not closed. */
int client_reconnect(struct client *c, int64_t delay_us);

/* From on_closed only, before client_reconnect: the attempts from now on
 * go to url (another relay of a list, or the node a redirect names), with
 * the same path, subprotocol and TLS settings.  0, or -EINVAL (a URL that
 * does not parse, or the connection is not closed), with a sentence in
 * why; the old URL stays then. */
int client_retarget(struct client *c, const char *url, char *why,
		    size_t why_len);

/* Closes the connection at once without the callbacks (safe on NULL),
 * then frees everything: queued messages, buffers, the context. */
void client_destroy(struct client *c);

/* A message of len payload bytes for the caller to fill through
 * client_out_data() and hand to client_send_out(); NULL if out of
 * memory or len is absurd.  Freed with free() if never sent. */
struct client_out *client_out_new(size_t len);
static inline uint8_t *client_out_data(struct client_out *o)
{
	return o->buf + LWS_PRE;
}

/* Queues o (ownership passes to the client in every case).  0, or
 * -ENOTCONN if the connection is not open or is closing (o is freed). */
int client_send_out(struct client *c, struct client_out *o, int flags);
/* Copies data into a new private message and queues it.  0, -ENOMEM or
 * -ENOTCONN. */
int client_send(struct client *c, const void *data, size_t len, int flags);
/* client_send() of a NUL-terminated text message. */
int client_send_text(struct client *c, const char *text, int flags);

/* Bytes queued and not yet handed to lws. */
size_t client_queued_bytes(const struct client *c);
bool client_is_open(const struct client *c);

/* Starts a clean close: what is queued still goes out, then a close frame
 * with code and reason (at most 123 bytes).  A queue that does not drain
 * within CLIENT_CLOSE_DRAIN_US is dropped and the socket closed.  Safe to
 * call more than once and in any state. */
void client_close(struct client *c, int code, const char *reason);

/* Stops (pause true) or resumes reading: TCP backpressure reaches the
 * peer while paused. */
void client_rx_pause(struct client *c, bool pause);

/* How the latest connection attempt ended. */
const struct client_close_info *client_close_info(const struct client *c);

/* One-shot timers on the client's loop.  The struct must stay alive (and
 * not move) while scheduled; starting a scheduled timer reschedules it. */
struct client_timer {
	lws_sorted_usec_list_t sul;
	struct client *c;
	void (*fn)(struct client_timer *t);
	void *arg;
};
void client_timer_start(struct client *c, struct client_timer *t,
			int64_t delay_us, void (*fn)(struct client_timer *t),
			void *arg);
void client_timer_stop(struct client_timer *t);

#endif
