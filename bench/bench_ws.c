/*
 * bench_ws: a minimal, low-cost WebSocket for the load generator (see
 * bench_ws.h for what it does and does not do).
 *
 * One epoll instance, edge-triggered for both directions: an event makes
 * the connection read until the socket is empty and write until its queue
 * is empty or the socket is full.  The payload of a media message is
 * never copied on plain connections: writev() gathers the per-message
 * frame header with the shared, premasked body.
 */
#include "bench/bench_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define BENCH_RX_BUF (256 * 1024)
#define BENCH_EVENTS 256
#define BENCH_IOV 64
#define BENCH_HS_MAX 4096
#define BENCH_STAGE 16384
/* Reads of BENCH_RX_BUF per connection per loop turn: a sender that
 * keeps the socket full must not starve the rest of the loop. */
#define BENCH_READS_PER_TURN 4
#define BENCH_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC11B2E"

struct bench_ws_item {
	struct bench_ws_item *next;
	const uint8_t *body;
	size_t body_len;
	size_t head_len;
	size_t off; /* bytes of head + body already written */
	uint8_t head[];
};

struct bench_listener {
	int fd;
	bench_ws_accept_fn fn;
	void *arg;
};

struct bench_loop {
	int epfd;
	SSL_CTX *ssl_ctx;
	uint8_t *rx;
	uint8_t *body_plain;  /* what the server side sends */
	uint8_t *body_masked; /* the same, masked with mask[] */
	uint8_t mask[4];
	struct bench_listener listener;
	struct bench_ws *dead;
	struct bench_ws **all; /* every connection, for destroy */
	size_t nall, capall;
	/* Connections that stopped reading at the per-turn bound with data
	 * left: edge-triggered epoll will not report them again. */
	struct bench_ws **more;
	size_t nmore;
};

/* epoll data for the listener: its address, told apart from connections
 * by this tag. */
static struct bench_listener *bench_listener_tag(struct bench_loop *l)
{
	return &l->listener;
}

int64_t bench_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bench_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- loop ----------------------------------------------------------- */

static int bench_loop_bodies(struct bench_loop *l)
{
	l->body_plain = malloc(BENCH_WS_BODY_MAX);
	l->body_masked = malloc(BENCH_WS_BODY_MAX);
	if (!l->body_plain || !l->body_masked)
		return -ENOMEM;
	if (getrandom(l->mask, sizeof(l->mask), 0) != sizeof(l->mask))
		memcpy(l->mask, "\x5a\x13\xc7\x2e", 4);
	/* Compressible filler would flatter a compressing path; lws has
	 * permessage-deflate off, but keep it honest anyway. */
	for (size_t i = 0; i < BENCH_WS_BODY_MAX; i++)
		l->body_plain[i] = (uint8_t)((i * 2654435761u) >> 13);
	/* The media header is 32 bytes, a multiple of 4, so the body always
	 * starts at mask index 0. */
	for (size_t i = 0; i < BENCH_WS_BODY_MAX; i++)
		l->body_masked[i] = l->body_plain[i] ^ l->mask[i & 3];
	return 0;
}

static int bench_loop_tls(struct bench_loop *l)
{
	l->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!l->ssl_ctx)
		return -EIO;
	SSL_CTX_set_verify(l->ssl_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(l->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
}

int bench_loop_create(struct bench_loop **out, bool tls)
{
	struct bench_loop *l = calloc(1, sizeof(*l));
	int rc = -ENOMEM;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->listener.fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		rc = -errno;
		goto fail;
	}
	l->rx = malloc(BENCH_RX_BUF);
	if (!l->rx)
		goto fail;
	rc = bench_loop_bodies(l);
	if (rc)
		goto fail;
	if (tls && (rc = bench_loop_tls(l)))
		goto fail;
	*out = l;
	return 0;
fail:
	bench_loop_destroy(l);
	return rc;
}

static void bench_ws_free(struct bench_ws *w)
{
	struct bench_ws_item *it = w->out_head, *next;

	for (; it; it = next) {
		next = it->next;
		free(it);
	}
	if (w->ssl)
		SSL_free(w->ssl);
	free(w->stage);
	free(w->hs);
	free(w->m_text);
	free(w);
}

static void bench_loop_reap(struct bench_loop *l)
{
	while (l->dead) {
		struct bench_ws *w = l->dead;

		l->dead = w->next_dead;
		/* Swap-remove from the registry; slot is the owner's, so
		 * search (closes are rare next to messages). */
		for (size_t i = 0; i < l->nall; i++) {
			if (l->all[i] == w) {
				l->all[i] = l->all[--l->nall];
				break;
			}
		}
		for (size_t i = 0; w->rx_more && i < l->nmore; i++) {
			if (l->more[i] == w) {
				l->more[i] = l->more[--l->nmore];
				break;
			}
		}
		bench_ws_free(w);
	}
}

void bench_loop_destroy(struct bench_loop *l)
{
	if (!l)
		return;
	while (l->nall) {
		bench_ws_close(l->all[l->nall - 1]);
		bench_loop_reap(l);
	}
	if (l->listener.fd >= 0)
		close(l->listener.fd);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->ssl_ctx)
		SSL_CTX_free(l->ssl_ctx);
	free(l->all);
	free(l->more);
	free(l->rx);
	free(l->body_plain);
	free(l->body_masked);
	free(l);
}

size_t bench_loop_count(const struct bench_loop *l)
{
	return l->nall;
}

static int bench_loop_register(struct bench_loop *l, struct bench_ws *w)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
					    EPOLLET,
				  .data.ptr = w };

	if (l->nall == l->capall) {
		size_t cap = l->capall ? l->capall * 2 : 1024;
		struct bench_ws **n = realloc(l->all, cap * sizeof(*n));
		struct bench_ws **m;

		if (!n)
			return -ENOMEM;
		l->all = n;
		m = realloc(l->more, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		l->more = m;
		l->capall = cap;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev))
		return -errno;
	l->all[l->nall++] = w;
	return 0;
}

/* ---- closing -------------------------------------------------------- */

static void bench_ws_shut(struct bench_ws *w, bool notify, const char *why)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (w->state == BENCH_WS_CLOSED)
		return;
	if (why && !w->why[0])
		snprintf(w->why, sizeof(w->why), "%s", why);
	w->state = BENCH_WS_CLOSED;
	if (w->fd >= 0) {
		/* A reset leaves no TIME_WAIT: the scale steps open tens of
		 * thousands of loopback connections one after another. */
		setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
		w->fd = -1;
	}
	w->next_dead = w->loop->dead;
	w->loop->dead = w;
	if (notify && w->ops && w->ops->on_closed)
		w->ops->on_closed(w);
}

void bench_ws_close(struct bench_ws *w)
{
	if (w)
		bench_ws_shut(w, false, "closed by us");
}

static void bench_ws_fail(struct bench_ws *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bench_ws_fail(struct bench_ws *w, const char *fmt, ...)
{
	char why[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	bench_ws_shut(w, true, why);
}

/* ---- output --------------------------------------------------------- */

static struct bench_ws_item *bench_item_new(size_t head_len)
{
	struct bench_ws_item *it = malloc(sizeof(*it) + head_len);

	if (!it)
		return NULL;
	it->next = NULL;
	it->body = NULL;
	it->body_len = 0;
	it->head_len = head_len;
	it->off = 0;
	return it;
}

static void bench_ws_enqueue(struct bench_ws *w, struct bench_ws_item *it)
{
	if (w->out_tail)
		w->out_tail->next = it;
	else
		w->out_head = it;
	w->out_tail = it;
	w->out_bytes += it->head_len + it->body_len;
}

/* Writes a frame header for a payload of len bytes at p; returns its
 * length.  Clients mask with the loop's key (RFC 6455 5.3). */
static size_t bench_frame_header(const struct bench_ws *w, uint8_t *p,
				 uint8_t op, uint64_t len)
{
	size_t n = 0;
	uint8_t maskbit = w->server ? 0 : 0x80;

	p[n++] = (uint8_t)(0x80 | op);
	if (len < 126) {
		p[n++] = (uint8_t)(maskbit | len);
	} else if (len <= 0xffff) {
		p[n++] = maskbit | 126;
		p[n++] = (uint8_t)(len >> 8);
		p[n++] = (uint8_t)len;
	} else {
		p[n++] = maskbit | 127;
		for (int i = 7; i >= 0; i--)
			p[n++] = (uint8_t)(len >> (8 * i));
	}
	if (!w->server) {
		memcpy(p + n, w->loop->mask, 4);
		n += 4;
	}
	return n;
}

static void bench_ws_mask(const struct bench_ws *w, uint8_t *p, size_t len)
{
	if (w->server)
		return;
	for (size_t i = 0; i < len; i++)
		p[i] ^= w->loop->mask[i & 3];
}

static int bench_ws_flush(struct bench_ws *w);

static int bench_ws_send_frame(struct bench_ws *w, uint8_t op,
			       const uint8_t *data, size_t len)
{
	struct bench_ws_item *it;
	size_t hl;

	if (w->state != BENCH_WS_OPEN)
		return -ENOTCONN;
	it = bench_item_new(14 + len);
	if (!it)
		return -ENOMEM;
	hl = bench_frame_header(w, it->head, op, len);
	memcpy(it->head + hl, data, len);
	bench_ws_mask(w, it->head + hl, len);
	it->head_len = hl + len;
	bench_ws_enqueue(w, it);
	return bench_ws_flush(w);
}

int bench_ws_send_text(struct bench_ws *w, const char *text)
{
	return bench_ws_send_frame(w, 1, (const uint8_t *)text, strlen(text));
}

int bench_ws_send_binary(struct bench_ws *w, const uint8_t *data, size_t len)
{
	return bench_ws_send_frame(w, 2, data, len);
}

int bench_ws_send_media(struct bench_ws *w, const uint8_t *hdr,
			size_t body_len)
{
	struct bench_ws_item *it;
	size_t hl;

	if (w->state != BENCH_WS_OPEN)
		return -ENOTCONN;
	if (body_len > BENCH_WS_BODY_MAX)
		return -EINVAL;
	it = bench_item_new(14 + BENCH_WS_HEAD);
	if (!it)
		return -ENOMEM;
	hl = bench_frame_header(w, it->head, 2, BENCH_WS_HEAD + body_len);
	memcpy(it->head + hl, hdr, BENCH_WS_HEAD);
	bench_ws_mask(w, it->head + hl, BENCH_WS_HEAD);
	it->head_len = hl + BENCH_WS_HEAD;
	it->body = w->server ? w->loop->body_plain : w->loop->body_masked;
	it->body_len = body_len;
	bench_ws_enqueue(w, it);
	return bench_ws_flush(w);
}

size_t bench_ws_queued(const struct bench_ws *w)
{
	return w->out_bytes + (w->stage_len - w->stage_sent);
}

/* Drops written bytes from the head of the queue. */
static void bench_ws_consume(struct bench_ws *w, size_t n)
{
	w->tx_bytes += n;
	w->out_bytes -= n;
	while (n) {
		struct bench_ws_item *it = w->out_head;
		size_t left = it->head_len + it->body_len - it->off;

		if (n < left) {
			it->off += n;
			return;
		}
		n -= left;
		w->out_head = it->next;
		if (!w->out_head)
			w->out_tail = NULL;
		free(it);
	}
}

static int bench_ws_fill_iov(const struct bench_ws *w, struct iovec *iov)
{
	int n = 0;

	for (struct bench_ws_item *it = w->out_head; it && n < BENCH_IOV - 1;
	     it = it->next) {
		size_t off = it->off;

		if (off < it->head_len) {
			iov[n].iov_base = it->head + off;
			iov[n++].iov_len = it->head_len - off;
			off = 0;
		} else {
			off -= it->head_len;
		}
		if (it->body_len > off) {
			iov[n].iov_base = (void *)(it->body + off);
			iov[n++].iov_len = it->body_len - off;
		}
	}
	return n;
}

static int bench_ws_flush_plain(struct bench_ws *w)
{
	struct iovec iov[BENCH_IOV];

	while (w->out_head) {
		int n = bench_ws_fill_iov(w, iov);
		ssize_t r = writev(w->fd, iov, n);

		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			bench_ws_fail(w, "write: %s", strerror(errno));
			return -EIO;
		}
		bench_ws_consume(w, (size_t)r);
	}
	return 0;
}

/* TLS: copy queued frames into one record-sized stage, so small messages
 * do not each cost a record; the stage stays put until SSL_write takes it
 * all, as OpenSSL requires for a retried write. */
static void bench_ws_stage(struct bench_ws *w)
{
	struct iovec iov[BENCH_IOV];
	int n = bench_ws_fill_iov(w, iov);
	size_t len = 0;

	for (int i = 0; i < n && len < BENCH_STAGE; i++) {
		size_t k = iov[i].iov_len;

		if (k > BENCH_STAGE - len)
			k = BENCH_STAGE - len;
		memcpy(w->stage + len, iov[i].iov_base, k);
		len += k;
	}
	w->stage_len = len;
	w->stage_sent = 0;
	bench_ws_consume(w, len);
	w->tx_bytes -= len; /* counted when SSL_write takes it */
}

static int bench_ws_flush_tls(struct bench_ws *w)
{
	if (!w->stage && !(w->stage = malloc(BENCH_STAGE))) {
		bench_ws_fail(w, "%s", "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		int r, err;

		if (w->stage_sent == w->stage_len) {
			if (!w->out_head)
				return 0;
			bench_ws_stage(w);
		}
		r = SSL_write(w->ssl, w->stage + w->stage_sent,
			      (int)(w->stage_len - w->stage_sent));
		if (r > 0) {
			w->stage_sent += (size_t)r;
			w->tx_bytes += (size_t)r;
			continue;
		}
		err = SSL_get_error(w->ssl, r);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
			return 0;
		bench_ws_fail(w, "TLS write failed (%s)",
			      ERR_reason_error_string(ERR_peek_last_error()));
		return -EIO;
	}
}

static int bench_ws_flush(struct bench_ws *w)
{
	if (w->state != BENCH_WS_OPEN && w->state != BENCH_WS_HANDSHAKE)
		return 0;
	return w->ssl ? bench_ws_flush_tls(w) : bench_ws_flush_plain(w);
}

/* ---- frame parser --------------------------------------------------- */

static void bench_ws_deliver(struct bench_ws *w, int64_t now)
{
	if (w->m_op == 1) {
		if (w->ops->on_text)
			w->ops->on_text(w, w->m_text ? w->m_text : "",
					w->m_text_len);
	} else if (w->ops->on_binary) {
		w->ops->on_binary(w, w->m_head, w->m_head_len, w->m_len, now);
	}
	w->m_op = 0;
}

static void bench_ws_control(struct bench_ws *w)
{
	if (w->f_op == 9) {
		bench_ws_send_frame(w, 10, w->ctl, w->ctl_len);
	} else if (w->f_op == 8) {
		char why[64];
		int code = w->ctl_len >= 2 ? (w->ctl[0] << 8) | w->ctl[1] : 0;

		snprintf(why, sizeof(why), "peer closed: %d %.*s", code,
			 w->ctl_len > 2 ? w->ctl_len - 2 : 0,
			 (const char *)w->ctl + 2);
		bench_ws_shut(w, true, why);
	}
}

static void bench_ws_end_frame(struct bench_ws *w, int64_t now)
{
	if (w->f_op >= 8)
		bench_ws_control(w);
	else if (w->f_fin)
		bench_ws_deliver(w, now);
	w->fh_len = 0;
	w->fh_need = 2;
}

/* The header is complete: check it and start the frame.  -1 on a
 * protocol violation (the connection is closed). */
static int bench_ws_begin_frame(struct bench_ws *w)
{
	const uint8_t *h = w->fh;
	uint8_t len7 = h[1] & 0x7f;
	size_t at = 2;

	w->f_fin = h[0] & 0x80;
	w->f_op = h[0] & 0x0f;
	w->f_masked = h[1] & 0x80;
	if (len7 == 126) {
		w->f_left = ((uint64_t)h[2] << 8) | h[3];
		at = 4;
	} else if (len7 == 127) {
		w->f_left = 0;
		for (int i = 0; i < 8; i++)
			w->f_left = (w->f_left << 8) | h[2 + i];
		at = 10;
	} else {
		w->f_left = len7;
	}
	if (w->f_masked)
		memcpy(w->f_mask, h + at, 4);
	w->f_pos = 0;
	if (w->f_op >= 8) {
		if (w->f_left > 125 || !w->f_fin)
			goto bad;
		w->ctl_len = 0;
		return 0;
	}
	if (w->f_op == 0) {
		if (!w->m_op)
			goto bad;
		return 0;
	}
	if ((w->f_op != 1 && w->f_op != 2) || w->m_op)
		goto bad;
	w->m_op = w->f_op;
	w->m_len = 0;
	w->m_head_len = 0;
	w->m_text_len = 0;
	return 0;
bad:
	bench_ws_fail(w, "bad frame (opcode %s)", w->f_op >= 8 ? "control" :
					       "data");
	return -1;
}

/* How many header bytes are needed, given the first two. */
static uint8_t bench_ws_header_need(const uint8_t *h)
{
	uint8_t need = 2, len7 = h[1] & 0x7f;

	if (len7 == 126)
		need += 2;
	else if (len7 == 127)
		need += 8;
	if (h[1] & 0x80)
		need += 4;
	return need;
}

static int bench_ws_text_append(struct bench_ws *w, const uint8_t *p,
				size_t k)
{
	if (w->m_text_len + k > BENCH_WS_TEXT_MAX) {
		bench_ws_fail(w, "%s", "text message too large");
		return -1;
	}
	if (!w->m_text && !(w->m_text = malloc(BENCH_WS_TEXT_MAX))) {
		bench_ws_fail(w, "%s", "out of memory");
		return -1;
	}
	memcpy(w->m_text + w->m_text_len, p, k);
	for (size_t i = 0; w->f_masked && i < k; i++)
		w->m_text[w->m_text_len + i] ^= w->f_mask[(w->f_pos + i) & 3];
	w->m_text_len += k;
	return 0;
}

static int bench_ws_payload(struct bench_ws *w, const uint8_t *p, size_t k)
{
	if (w->f_op >= 8) {
		for (size_t i = 0; i < k; i++)
			w->ctl[w->ctl_len++] =
				p[i] ^ (w->f_masked ? w->f_mask[(w->f_pos + i) & 3]
						    : 0);
	} else if (w->m_op == 1) {
		if (bench_ws_text_append(w, p, k))
			return -1;
	} else {
		for (size_t i = 0; i < k && w->m_head_len < BENCH_WS_HEAD; i++)
			w->m_head[w->m_head_len++] =
				p[i] ^ (w->f_masked ? w->f_mask[(w->f_pos + i) & 3]
						    : 0);
	}
	w->m_len += w->f_op >= 8 ? 0 : k;
	w->f_pos += k;
	w->f_left -= k;
	return 0;
}

static void bench_ws_feed(struct bench_ws *w, const uint8_t *p, size_t n,
			  int64_t now)
{
	while (n && w->state == BENCH_WS_OPEN) {
		if (w->fh_len < w->fh_need) {
			size_t k = w->fh_need - w->fh_len;

			if (k > n)
				k = n;
			memcpy(w->fh + w->fh_len, p, k);
			w->fh_len += (uint8_t)k;
			p += k;
			n -= k;
			if (w->fh_len == 2)
				w->fh_need = bench_ws_header_need(w->fh);
			if (w->fh_len < w->fh_need)
				continue;
			if (bench_ws_begin_frame(w))
				return;
			if (w->f_left == 0)
				bench_ws_end_frame(w, now);
			continue;
		}
		size_t k = w->f_left < n ? (size_t)w->f_left : n;

		if (bench_ws_payload(w, p, k))
			return;
		p += k;
		n -= k;
		if (w->f_left == 0)
			bench_ws_end_frame(w, now);
	}
}

/* ---- handshakes ----------------------------------------------------- */

static void bench_ws_open(struct bench_ws *w)
{
	w->state = BENCH_WS_OPEN;
	w->fh_len = 0;
	w->fh_need = 2;
	free(w->hs);
	w->hs = NULL;
	if (w->ops->on_open)
		w->ops->on_open(w);
}

/* A header's value in a request or response (case-insensitive name), or
 * false. */
static bool bench_hs_header(const char *hs, const char *name, char *out,
			    size_t out_len)
{
	size_t nl = strlen(name);

	for (const char *p = strstr(hs, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		const char *v = p + 2, *e;
		size_t k;

		if (strncasecmp(v, name, nl) || v[nl] != ':')
			continue;
		v += nl + 1;
		while (*v == ' ')
			v++;
		e = strstr(v, "\r\n");
		k = e ? (size_t)(e - v) : strlen(v);
		if (k >= out_len)
			return false;
		memcpy(out, v, k);
		out[k] = '\0';
		return true;
	}
	return false;
}

static int bench_ws_queue_raw(struct bench_ws *w, const char *text)
{
	size_t len = strlen(text);
	struct bench_ws_item *it = bench_item_new(len);

	if (!it)
		return -ENOMEM;
	memcpy(it->head, text, len);
	bench_ws_enqueue(w, it);
	return 0;
}

static void bench_ws_client_hs_done(struct bench_ws *w, const char *hs)
{
	if (strncmp(hs, "HTTP/1.1 101", 12)) {
		char line[96];
		const char *e = strstr(hs, "\r\n");
		size_t k = e ? (size_t)(e - hs) : 0;

		snprintf(line, sizeof(line), "%.*s", (int)(k < 80 ? k : 80), hs);
		bench_ws_fail(w, "handshake refused: %s", line);
		return;
	}
	bench_ws_open(w);
}

static void bench_ws_accept_key(const char *key, char out[32])
{
	unsigned char sha[SHA_DIGEST_LENGTH];
	char buf[128];

	snprintf(buf, sizeof(buf), "%s%s", key, BENCH_WS_GUID);
	SHA1((const unsigned char *)buf, strlen(buf), sha);
	EVP_EncodeBlock((unsigned char *)out, sha, SHA_DIGEST_LENGTH);
}

static void bench_ws_server_hs_done(struct bench_ws *w, const char *hs)
{
	struct bench_listener *ls = &w->loop->listener;
	char path[256], key[64], proto[64], accept[32], resp[512];
	const struct bench_ws_ops *ops;

	if (sscanf(hs, "GET %255s HTTP/1.1", path) != 1 ||
	    !bench_hs_header(hs, "Sec-WebSocket-Key", key, sizeof(key))) {
		bench_ws_fail(w, "%s", "bad upgrade request");
		return;
	}
	ops = ls->fn(w, path, ls->arg);
	if (!ops) {
		bench_ws_fail(w, "refused path %s", path);
		return;
	}
	w->ops = ops;
	bench_ws_accept_key(key, accept);
	if (bench_hs_header(hs, "Sec-WebSocket-Protocol", proto, sizeof(proto)))
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
			 "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
			 "Sec-WebSocket-Protocol: %s\r\n\r\n",
			 accept, proto);
	else
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
			 "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s"
			 "\r\n\r\n",
			 accept);
	if (bench_ws_queue_raw(w, resp)) {
		bench_ws_fail(w, "%s", "out of memory");
		return;
	}
	bench_ws_open(w);
	bench_ws_flush(w);
}

/* Handshake bytes: accumulate to the blank line, then hand what follows
 * to the frame parser. */
static void bench_ws_handshake_bytes(struct bench_ws *w, const uint8_t *p,
				     size_t n, int64_t now)
{
	size_t take = n, used;
	char *end;

	if (!w->hs && !(w->hs = malloc(BENCH_HS_MAX + 1))) {
		bench_ws_fail(w, "%s", "out of memory");
		return;
	}
	if (take > BENCH_HS_MAX - w->hs_len)
		take = BENCH_HS_MAX - w->hs_len;
	memcpy(w->hs + w->hs_len, p, take);
	w->hs[w->hs_len + take] = '\0';
	end = strstr(w->hs, "\r\n\r\n");
	if (!end) {
		w->hs_len += take;
		if (w->hs_len == BENCH_HS_MAX)
			bench_ws_fail(w, "%s", "handshake too long");
		return;
	}
	used = (size_t)(end + 4 - w->hs) - w->hs_len;
	end[2] = '\0';
	if (w->server)
		bench_ws_server_hs_done(w, w->hs);
	else
		bench_ws_client_hs_done(w, w->hs);
	if (w->state == BENCH_WS_OPEN && n > used)
		bench_ws_feed(w, p + used, n - used, now);
}

/* ---- reading -------------------------------------------------------- */

static ssize_t bench_ws_recv(struct bench_ws *w, uint8_t *buf, size_t cap)
{
	ssize_t r;

	if (!w->ssl) {
		r = read(w->fd, buf, cap);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return -EAGAIN;
		if (r < 0)
			bench_ws_fail(w, "read: %s", strerror(errno));
		else if (r == 0)
			bench_ws_fail(w, "%s", "peer closed the socket");
		return r <= 0 ? -EIO : r;
	}
	r = SSL_read(w->ssl, buf, (int)cap);
	if (r > 0)
		return r;
	switch (SSL_get_error(w->ssl, (int)r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		bench_ws_fail(w, "%s", "peer closed TLS");
		return -EIO;
	default:
		bench_ws_fail(w, "TLS read failed (%s)",
			      ERR_reason_error_string(ERR_peek_last_error()));
		return -EIO;
	}
}

static void bench_ws_read(struct bench_ws *w)
{
	struct bench_loop *l = w->loop;
	uint8_t *buf = l->rx;
	int reads = 0;

	while (!w->paused && (w->state == BENCH_WS_OPEN ||
			      w->state == BENCH_WS_HANDSHAKE)) {
		ssize_t r;
		int64_t now;

		if (reads++ == BENCH_READS_PER_TURN) {
			if (!w->rx_more) {
				w->rx_more = true;
				l->more[l->nmore++] = w;
			}
			return;
		}
		r = bench_ws_recv(w, buf, BENCH_RX_BUF);
		if (r < 0)
			return;
		now = bench_wall_us();
		w->rx_bytes += (size_t)r;
		if (w->state == BENCH_WS_HANDSHAKE)
			bench_ws_handshake_bytes(w, buf, (size_t)r, now);
		else
			bench_ws_feed(w, buf, (size_t)r, now);
	}
}

void bench_ws_pause(struct bench_ws *w)
{
	w->paused = true;
}

/* ---- connecting ----------------------------------------------------- */

static int bench_ws_request(struct bench_ws *w, const char *host, int port,
			    const char *path, const char *subprotocol)
{
	char req[768];
	unsigned char nonce[16];
	char key[32];

	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		memset(nonce, 0x42, sizeof(nonce));
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
		 path, host, port, key,
		 subprotocol ? "Sec-WebSocket-Protocol: " : "",
		 subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");
	return bench_ws_queue_raw(w, req);
}

static void bench_ws_tls_step(struct bench_ws *w)
{
	int r = SSL_connect(w->ssl), err;

	if (r == 1) {
		w->state = BENCH_WS_HANDSHAKE;
		bench_ws_flush(w);
		return;
	}
	err = SSL_get_error(w->ssl, r);
	if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
		bench_ws_fail(w, "TLS handshake failed (%s)",
			      ERR_reason_error_string(ERR_peek_last_error()));
}

static void bench_ws_connected(struct bench_ws *w)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err == EINPROGRESS)
		return;
	if (err) {
		bench_ws_fail(w, "connect: %s", strerror(err));
		return;
	}
	if (w->ssl) {
		w->state = BENCH_WS_TLS;
		bench_ws_tls_step(w);
		return;
	}
	w->state = BENCH_WS_HANDSHAKE;
	bench_ws_flush(w);
}

static int bench_socket_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct bench_ws *bench_ws_new(struct bench_loop *l, int fd,
				     const struct bench_ws_ops *ops, void *user)
{
	struct bench_ws *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->loop = l;
	w->fd = fd;
	w->ops = ops;
	w->user = user;
	w->fh_need = 2;
	return w;
}

int bench_ws_connect(struct bench_loop *l, struct bench_ws **out,
		     const char *host, int port, const char *path,
		     const char *subprotocol, bool tls,
		     const struct bench_ws_ops *ops, void *user)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	struct bench_ws *w = NULL;
	int fd, rc;

	*out = NULL;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	if (tls && !l->ssl_ctx)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	bench_socket_nodelay(fd);
	w = bench_ws_new(l, fd, ops, user);
	rc = -ENOMEM;
	if (!w)
		goto fail_fd;
	if (bench_ws_request(w, host, port, path, subprotocol))
		goto fail_w;
	if (tls) {
		if (!(w->ssl = SSL_new(l->ssl_ctx)) || !SSL_set_fd(w->ssl, fd))
			goto fail_w;
		SSL_set_connect_state(w->ssl);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    errno != EINPROGRESS) {
		rc = -errno;
		goto fail_w;
	}
	w->state = BENCH_WS_CONNECTING;
	rc = bench_loop_register(l, w);
	if (rc)
		goto fail_w;
	*out = w;
	return 0;
fail_w:
	w->fd = -1;
	bench_ws_free(w);
fail_fd:
	close(fd);
	return rc;
}

/* ---- server side ---------------------------------------------------- */

int bench_loop_listen(struct bench_loop *l, int *port, bench_ws_accept_fn fn,
		      void *arg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)*port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.ptr = bench_listener_tag(l) };
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	*port = ntohs(sa.sin_port);
	l->listener = (struct bench_listener){ .fd = fd, .fn = fn, .arg = arg };
	return 0;
}

/* Until the handshake names a path, an accepted connection has these
 * ops: nothing to call back. */
static const struct bench_ws_ops bench_ws_no_ops;

static void bench_loop_accept(struct bench_loop *l)
{
	for (;;) {
		int fd = accept4(l->listener.fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct bench_ws *w;

		if (fd < 0)
			return;
		bench_socket_nodelay(fd);
		w = bench_ws_new(l, fd, &bench_ws_no_ops, NULL);
		if (!w) {
			close(fd);
			continue;
		}
		w->server = true;
		w->state = BENCH_WS_HANDSHAKE;
		if (bench_loop_register(l, w)) {
			w->fd = -1;
			bench_ws_free(w);
			close(fd);
		}
	}
}

/* ---- dispatch ------------------------------------------------------- */

static void bench_ws_event(struct bench_ws *w, uint32_t ev)
{
	if (w->state == BENCH_WS_CLOSED)
		return;
	if (w->state == BENCH_WS_CONNECTING) {
		bench_ws_connected(w);
		if (w->state == BENCH_WS_CONNECTING ||
		    w->state == BENCH_WS_CLOSED)
			return;
	}
	if (w->state == BENCH_WS_TLS) {
		bench_ws_tls_step(w);
		if (w->state != BENCH_WS_HANDSHAKE)
			return;
	}
	if (w->out_head || w->stage_len > w->stage_sent)
		bench_ws_flush(w);
	if (w->state != BENCH_WS_CLOSED && (ev & (EPOLLIN | EPOLLRDHUP |
						  EPOLLHUP | EPOLLERR)))
		bench_ws_read(w);
	/* TLS reads can leave writes pending (renegotiation, tickets). */
	if (w->state == BENCH_WS_OPEN && w->ssl &&
	    (w->out_head || w->stage_len > w->stage_sent))
		bench_ws_flush(w);
}

/* Continues the reads that stopped at the per-turn bound.  A connection
 * may re-add itself while this runs, so work on a snapshot. */
static void bench_loop_more(struct bench_loop *l)
{
	size_t n = l->nmore;

	for (size_t i = 0; i < n; i++) {
		struct bench_ws *w = l->more[0];

		l->more[0] = l->more[--l->nmore];
		w->rx_more = false;
		if (w->state != BENCH_WS_CLOSED)
			bench_ws_read(w);
	}
}

int bench_loop_poll(struct bench_loop *l, int64_t timeout_us)
{
	struct epoll_event ev[BENCH_EVENTS];
	struct timespec ts = { .tv_sec = timeout_us / 1000000,
			       .tv_nsec = (timeout_us % 1000000) * 1000 };
	int n;

	/* Microsecond timeouts: frames are due every few hundred us at the
	 * standard load, and epoll_wait()'s milliseconds would either spin
	 * or send late in bursts. */
	if (timeout_us < 0 || l->nmore)
		ts = (struct timespec){ 0, 0 };
	n = epoll_pwait2(l->epfd, ev, BENCH_EVENTS, &ts, NULL);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	bench_loop_more(l);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == bench_listener_tag(l))
			bench_loop_accept(l);
		else
			bench_ws_event(ev[i].data.ptr, ev[i].events);
	}
	bench_loop_reap(l);
	return 0;
}
