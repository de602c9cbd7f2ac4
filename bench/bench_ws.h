/*
 * bench_ws: many WebSocket connections on one epoll loop, on raw sockets.
 *
 * The load generator drives up to tens of thousands of connections from
 * one thread, so it cannot use one lws context per connection the way
 * the tools do (tools/common/client.h).  This module is the least
 * WebSocket (RFC 6455) the benchmark needs, built to cost the generator
 * as little as possible:
 *
 *  - client connections (ws:// and, with OpenSSL, wss://) and a server
 *    side for the "direct" and "pipe" targets, where the generator itself
 *    is the far end;
 *  - media messages are sent without copying the payload: every client
 *    connection masks with the same key, so one body buffer is masked
 *    once at start-up and handed to writev() for every message; only the
 *    frame header and the 32-byte media header are built per message;
 *  - a received binary message is never stored: the parser keeps its
 *    first 32 bytes (the media header, unmasked) and counts the rest;
 *    text messages are reassembled up to 64 KiB;
 *  - pings are answered; a close frame or an error ends the connection.
 *
 * Ownership: the loop owns every connection.  A connection is freed at
 * the end of the bench_loop_poll() turn in which it closed, so pointers
 * stay valid until the callbacks of that turn return; on_closed is the
 * owner's last chance to forget it.  Not thread-safe.
 */
#ifndef ASP_BENCH_WS_H
#define ASP_BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* The media header: what the parser keeps of each binary message. */
#define BENCH_WS_HEAD 32
/* Largest text message accepted (the protocol's control bound). */
#define BENCH_WS_TEXT_MAX (64 * 1024)
/* Largest media body bench_ws_send_media() can send. */
#define BENCH_WS_BODY_MAX (4u * 1024 * 1024)

struct bench_ws;
struct bench_loop;

struct bench_ws_ops {
	/* Handshake done: sending is possible. */
	void (*on_open)(struct bench_ws *w);
	/* A whole text message (not NUL-terminated), valid during the call. */
	void (*on_text)(struct bench_ws *w, const char *text, size_t len);
	/* A whole binary message of len bytes; head holds its first head_len
	 * (<= 32) bytes; now_us is the wall clock when its last byte was
	 * read. */
	void (*on_binary)(struct bench_ws *w, const uint8_t *head,
			  size_t head_len, uint64_t len, int64_t now_us);
	/* The connection ended (peer close, error, failed connect); not
	 * called for bench_ws_close().  w->why says why. */
	void (*on_closed)(struct bench_ws *w);
};

enum bench_ws_state {
	BENCH_WS_CONNECTING,
	BENCH_WS_TLS,
	BENCH_WS_HANDSHAKE,
	BENCH_WS_OPEN,
	BENCH_WS_CLOSED,
};

struct bench_ws_item;

struct bench_ws {
	struct bench_loop *loop;
	const struct bench_ws_ops *ops;
	void *user;          /* the owner's, untouched here */
	int slot;            /* the owner's, untouched here */
	int fd;
	enum bench_ws_state state;
	bool server;         /* accepted by bench_loop_listen() */
	bool paused;         /* reading stopped: see bench_ws_pause() */
	bool rx_more;        /* has unread data, queued for the next turn */
	SSL *ssl;
	char why[128];       /* why it closed */

	/* Output: a FIFO of frames, drained by writev() / SSL_write(). */
	struct bench_ws_item *out_head, *out_tail;
	size_t out_bytes;
	uint8_t *stage;      /* TLS: frames copied into one record */
	size_t stage_len, stage_sent;

	/* Handshake bytes until the blank line. */
	char *hs;
	size_t hs_len;

	/* Frame parser. */
	uint8_t fh[14];
	uint8_t fh_len, fh_need;
	uint8_t f_op, f_mask[4];
	bool f_fin, f_masked;
	uint64_t f_left, f_pos;

	/* Message being reassembled. */
	uint8_t m_op;
	uint64_t m_len;
	uint8_t m_head[BENCH_WS_HEAD];
	uint8_t m_head_len;
	char *m_text;
	size_t m_text_len;
	uint8_t ctl[125];
	uint8_t ctl_len;

	uint64_t rx_bytes, tx_bytes;
	struct bench_ws *next_dead;
};

/* Creates the loop: an epoll instance, a 256 KiB receive buffer, the
 * premasked body buffer and, when tls, a client SSL_CTX that accepts any
 * certificate (the benchmark talks to its own self-signed relay).  0 or
 * -ENOMEM / -EIO. */
int bench_loop_create(struct bench_loop **out, bool tls);
/* Closes every connection still open (without callbacks), frees all. */
void bench_loop_destroy(struct bench_loop *l);

/* Waits at most timeout_us (negative: not at all) for events and
 * dispatches them, then frees the connections that closed.  0 or -errno
 * from epoll_pwait2. */
int bench_loop_poll(struct bench_loop *l, int64_t timeout_us);

/* Connections the loop holds (open or opening). */
size_t bench_loop_count(const struct bench_loop *l);

/* Starts a connection to ws[s]://host:port/path with the subprotocol (or
 * none when NULL).  Callbacks come from bench_loop_poll().  0, or
 * -errno (socket, fd limit) / -ENOMEM. */
int bench_ws_connect(struct bench_loop *l, struct bench_ws **out,
		     const char *host, int port, const char *path,
		     const char *subprotocol, bool tls,
		     const struct bench_ws_ops *ops, void *user);

/* Accepts WebSocket connections on 127.0.0.1:*port (0 picks one, written
 * back).  After a handshake, accept(path) must return the ops and user
 * for the connection, or NULL to refuse it.  0 or -errno. */
typedef const struct bench_ws_ops *(*bench_ws_accept_fn)(
	struct bench_ws *w, const char *path, void *arg);
int bench_loop_listen(struct bench_loop *l, int *port, bench_ws_accept_fn fn,
		      void *arg);

/* Queues a text message.  0, -ENOTCONN or -ENOMEM. */
int bench_ws_send_text(struct bench_ws *w, const char *text);
/* Queues a binary message: the 32-byte media header hdr, then body_len
 * (<= BENCH_WS_BODY_MAX) filler bytes from the shared body buffer.
 * 0, -ENOTCONN, -EINVAL or -ENOMEM. */
int bench_ws_send_media(struct bench_ws *w, const uint8_t *hdr,
			size_t body_len);
/* Queues a small binary message copied from data (input events). */
int bench_ws_send_binary(struct bench_ws *w, const uint8_t *data, size_t len);

/* Bytes queued and not yet written to the socket. */
size_t bench_ws_queued(const struct bench_ws *w);
/* Stops reading for good: the kernel buffers fill and the peer sees
 * backpressure, as with a viewer on a stalled network. */
void bench_ws_pause(struct bench_ws *w);
/* Closes at once with a reset (no TIME_WAIT left behind), without
 * calling on_closed.  Safe on NULL and on a closed connection. */
void bench_ws_close(struct bench_ws *w);

/* Wall clock (CLOCK_REALTIME, as capture times) and monotonic clock. */
int64_t bench_wall_us(void);
int64_t bench_mono_us(void);

#endif
