/*
 * client: one WebSocket client connection on its own lws context.
 *
 * The lws callback is the only place that writes or reads: the send queue
 * is drained one lws_write per CLIENT_WRITEABLE (whole messages up to
 * CLIENT_FRAG_LEN, fragments above), and CLIENT_RECEIVE appends to one
 * reassembly buffer until the final fragment.  See client.h for the
 * contract and the lws 4.1 traps this module exists to contain.
 */
#include "tools/common/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum client_state {
	CLIENT_WAITING, /* client_reconnect: the next attempt is scheduled */
	CLIENT_CONNECTING,
	CLIENT_OPEN,
	CLIENT_CLOSING, /* close asked for; draining the queue */
	CLIENT_CLOSED,
};

struct client_queue {
	struct client_out *head, *tail;
};

/* Where connection attempts go: the URL as lws_parse_uri cut it in place,
 * and the pieces the connect info points into. */
struct client_target {
	char url[512];
	char path[512];
	char host_hdr[300];
	size_t addr_off;  /* the host name, inside url */
	int port;
	int ssl;          /* LCCSCF_* */
};

struct client {
	struct lws_context *ctx;
	struct lws *wsi;
	struct lws_protocols protocols[2];
	const struct client_ops *ops;
	void *user;
	enum client_state state;
	bool done;        /* the connection is gone: client_run returns */
	bool destroying;  /* no more callbacks to the owner */

	/* Sending: urgent messages go first, but never split a message
	 * that has started (cur). */
	struct client_out *cur;
	struct client_queue urgent, normal;
	size_t queued_bytes;
	int close_code;
	char close_reason[124];
	struct client_timer close_timer;

	/* Receiving: one message being reassembled. */
	uint8_t *rx;
	size_t rx_len, rx_cap, rx_max;
	bool rx_binary;

	struct client_close_info info;
	/* What every connection attempt is made with; the strings below are
	 * what it points into. */
	struct lws_client_connect_info ci;
	struct client_timer retry_timer;
	bool retry_pending; /* client_reconnect called from on_closed */
	bool insecure;
	char suffix[128];   /* the config's path, appended to each URL's */
	struct client_target target;
};

static void client_queue_push(struct client_queue *q, struct client_out *o)
{
	o->next = NULL;
	if (q->tail)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
}

static struct client_out *client_queue_pop(struct client_queue *q)
{
	struct client_out *o = q->head;

	if (o) {
		q->head = o->next;
		if (!q->head)
			q->tail = NULL;
	}
	return o;
}

static void client_queue_free(struct client_queue *q)
{
	struct client_out *o;

	while ((o = client_queue_pop(q)))
		free(o);
}

static void client_drop_queues(struct client *c)
{
	free(c->cur);
	c->cur = NULL;
	client_queue_free(&c->urgent);
	client_queue_free(&c->normal);
	c->queued_bytes = 0;
}

struct client_out *client_out_new(size_t len)
{
	struct client_out *o;

	/* Nothing the relay accepts comes near this; it keeps the size
	 * arithmetic below far from overflow. */
	if (len > (size_t)1 << 30)
		return NULL;
	o = malloc(sizeof(*o) + LWS_PRE + len);
	if (!o)
		return NULL;
	o->next = NULL;
	o->len = len;
	o->sent = 0;
	o->binary = 0;
	return o;
}

static bool client_accepting(const struct client *c)
{
	return c->state == CLIENT_OPEN || c->state == CLIENT_CONNECTING;
}

int client_send_out(struct client *c, struct client_out *o, int flags)
{
	if (!client_accepting(c)) {
		free(o);
		return -ENOTCONN;
	}
	o->binary = !!(flags & CLIENT_SEND_BINARY);
	o->sent = 0;
	client_queue_push(flags & CLIENT_SEND_URGENT ? &c->urgent : &c->normal,
			  o);
	c->queued_bytes += o->len;
	if (c->wsi && c->state == CLIENT_OPEN)
		lws_callback_on_writable(c->wsi);
	return 0;
}

int client_send(struct client *c, const void *data, size_t len, int flags)
{
	struct client_out *o;

	if (!client_accepting(c))
		return -ENOTCONN;
	o = client_out_new(len);
	if (!o)
		return -ENOMEM;
	if (len)
		memcpy(client_out_data(o), data, len);
	return client_send_out(c, o, flags);
}

int client_send_text(struct client *c, const char *text, int flags)
{
	return client_send(c, text, strlen(text), flags & ~CLIENT_SEND_BINARY);
}

size_t client_queued_bytes(const struct client *c)
{
	return c->queued_bytes;
}

bool client_is_open(const struct client *c)
{
	return c->state == CLIENT_OPEN;
}

const struct client_close_info *client_close_info(const struct client *c)
{
	return &c->info;
}

void client_rx_pause(struct client *c, bool pause)
{
	if (c->wsi && c->state != CLIENT_CLOSED)
		lws_rx_flow_control(c->wsi, pause ? 0 : 1);
}

/* ---- timers ---- */

static void client_timer_fire(lws_sorted_usec_list_t *sul)
{
	struct client_timer *t = lws_container_of(sul, struct client_timer,
						  sul);

	t->fn(t);
}

void client_timer_start(struct client *c, struct client_timer *t,
			int64_t delay_us, void (*fn)(struct client_timer *t),
			void *arg)
{
	t->c = c;
	t->fn = fn;
	t->arg = arg;
	if (delay_us < 1)
		delay_us = 1;
	lws_sul_schedule(c->ctx, 0, &t->sul, client_timer_fire, delay_us);
}

void client_timer_stop(struct client_timer *t)
{
	if (t->c)
		lws_sul_cancel(&t->sul);
}

/* ---- closing ---- */

/* The drain took too long (a peer that stopped reading): drop what is
 * queued and let the next WRITEABLE send the close frame; if even that
 * never comes, kill the socket. */
static void client_close_expired(struct client_timer *t)
{
	struct client *c = t->arg;

	if (!c->wsi || c->state == CLIENT_CLOSED)
		return;
	if (c->queued_bytes || c->cur) {
		client_drop_queues(c);
		lws_callback_on_writable(c->wsi);
		client_timer_start(c, &c->close_timer, CLIENT_CLOSE_DRAIN_US,
				   client_close_expired, c);
		return;
	}
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE,
			LWS_TO_KILL_ASYNC);
}

void client_close(struct client *c, int code, const char *reason)
{
	if (c->state == CLIENT_CLOSING || c->state == CLIENT_CLOSED)
		return;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s",
		 reason ? reason : "");
	c->info.we_closed = true;
	if (c->state == CLIENT_CONNECTING || !c->wsi) {
		/* Nothing to say goodbye to yet (or only a reconnect
		 * waiting): stop the loop; destroying the context drops
		 * the attempt. */
		client_timer_stop(&c->retry_timer);
		c->state = CLIENT_CLOSED;
		c->done = true;
		return;
	}
	c->state = CLIENT_CLOSING;
	lws_callback_on_writable(c->wsi);
	client_timer_start(c, &c->close_timer, CLIENT_CLOSE_DRAIN_US,
			   client_close_expired, c);
}

/* ---- writing ---- */

static struct client_out *client_next_out(struct client *c)
{
	if (!c->cur) {
		c->cur = client_queue_pop(&c->urgent);
		if (!c->cur)
			c->cur = client_queue_pop(&c->normal);
	}
	return c->cur;
}

/* Writes one message or one fragment of it.  The buffer is private, so
 * lws may mask it in place and the next fragment's header may overwrite
 * the tail of the one already sent. */
static int client_write_one(struct client *c, struct client_out *o)
{
	size_t left = o->len - o->sent;
	size_t n = left > CLIENT_FRAG_LEN ? CLIENT_FRAG_LEN : left;
	int first = o->sent == 0, last = n == left;
	int initial = o->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
	int flags = lws_write_ws_flags(initial, first, last);
	uint8_t *p = o->buf + LWS_PRE + o->sent;

	if (lws_write(c->wsi, p, n, (enum lws_write_protocol)flags) < (int)n)
		return -1;
	o->sent += n;
	c->queued_bytes -= n;
	if (last) {
		free(o);
		c->cur = NULL;
	}
	return 0;
}

static int client_writeable(struct client *c)
{
	struct client_out *o = client_next_out(c);

	if (o) {
		if (client_write_one(c, o))
			return -1;
		if (client_next_out(c) || c->state == CLIENT_CLOSING)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->state == CLIENT_CLOSING) {
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason,
				 strlen(c->close_reason));
		return -1;
	}
	return 0;
}

/* ---- reading ---- */

static int client_rx_grow(struct client *c, size_t need)
{
	size_t cap = c->rx_cap ? c->rx_cap : 64 * 1024;
	uint8_t *p;

	while (cap < need)
		cap *= 2;
	if (cap > c->rx_max)
		cap = c->rx_max;
	p = realloc(c->rx, cap);
	if (!p)
		return -1;
	c->rx = p;
	c->rx_cap = cap;
	return 0;
}

static int client_too_large(struct client *c)
{
	static const char why[] = "message too large";

	lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
			 (unsigned char *)why, sizeof(why) - 1);
	snprintf(c->info.connect_error, sizeof(c->info.connect_error),
		 "a received message exceeds %zu bytes", c->rx_max);
	return -1;
}

static int client_receive(struct client *c, const uint8_t *in, size_t len)
{
	size_t remaining = lws_remaining_packet_payload(c->wsi);

	if (lws_is_first_fragment(c->wsi)) {
		c->rx_len = 0;
		c->rx_binary = lws_frame_is_binary(c->wsi);
	}
	/* Bound before adding: len and remaining both come from the peer. */
	if (len > c->rx_max - c->rx_len ||
	    remaining > c->rx_max - c->rx_len - len)
		return client_too_large(c);
	if (c->rx_len + len + remaining > c->rx_cap &&
	    client_rx_grow(c, c->rx_len + len + remaining))
		return -1;
	if (len)
		memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (remaining || !lws_is_final_fragment(c->wsi))
		return 0;
	if (c->rx_binary && c->ops->on_binary && !c->destroying)
		c->ops->on_binary(c->user, c->rx, c->rx_len);
	if (!c->rx_binary && c->ops->on_text && !c->destroying)
		c->ops->on_text(c->user, (const char *)c->rx, c->rx_len);
	c->rx_len = 0;
	return 0;
}

static void client_peer_close(struct client *c, const uint8_t *in, size_t len)
{
	size_t rlen;

	if (len < 2)
		return;
	c->info.peer_code = in[0] << 8 | in[1];
	rlen = len - 2;
	if (rlen >= sizeof(c->info.peer_reason))
		rlen = sizeof(c->info.peer_reason) - 1;
	memcpy(c->info.peer_reason, in + 2, rlen);
	c->info.peer_reason[rlen] = '\0';
}

static void client_closed(struct client *c)
{
	c->state = CLIENT_CLOSED;
	c->wsi = NULL;
	client_timer_stop(&c->close_timer);
	c->done = true;
}

static int client_callback(struct lws *wsi, enum lws_callback_reasons reason,
			   void *user, void *in, size_t len)
{
	/* Only our connection carries the client: lws also calls this for
	 * its own internal wsis, which are none of our business. */
	struct client *c = lws_get_opaque_user_data(wsi);

	(void)user;
	if (!c)
		return 0;
	/* After a reconnect, what lws still says about an earlier attempt's
	 * wsi is history: only the current one changes our state. */
	if (c->state == CLIENT_WAITING || (c->wsi && wsi != c->wsi))
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->wsi = wsi;
		c->info.established = true;
		if (c->state == CLIENT_CONNECTING)
			c->state = CLIENT_OPEN;
		if (c->ops->on_open && !c->destroying)
			c->ops->on_open(c, c->user);
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		c->info.connect_failed = !c->info.established;
		snprintf(c->info.connect_error, sizeof(c->info.connect_error),
			 "%s", in ? (const char *)in : "connection failed");
		client_closed(c);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return client_receive(c, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return client_writeable(c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		client_peer_close(c, in, len);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		client_closed(c);
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* Whatever else lws said or did not say, the wsi is gone. */
		if (!c->done && !c->info.established) {
			c->info.connect_failed = true;
			if (!*c->info.connect_error)
				snprintf(c->info.connect_error,
					 sizeof(c->info.connect_error),
					 "the connection closed during the "
					 "handshake");
		}
		client_closed(c);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- connecting ---- */

/* One connection attempt with fresh per-connection state. */
static void client_connect(struct client *c)
{
	struct lws *wsi;

	memset(&c->info, 0, sizeof(c->info));
	c->state = CLIENT_CONNECTING;
	c->done = false;
	c->wsi = NULL;
	wsi = lws_client_connect_via_info(&c->ci);
	/* A NULL return means the attempt already failed; unless the
	 * callback saw CONNECTION_ERROR, say so here.  Either way
	 * client_run() returns (or calls on_closed) at once. */
	if (!wsi && !c->done) {
		c->info.connect_failed = true;
		snprintf(c->info.connect_error, sizeof(c->info.connect_error),
			 "cannot connect to %s:%d", c->ci.address, c->ci.port);
		client_closed(c);
	}
	/* Known from here on, so callbacks from an older wsi are told
	 * apart; not if the attempt is already over (it may be freed). */
	if (wsi && !c->done)
		c->wsi = wsi;
}

static void client_retry_due(struct client_timer *t)
{
	client_connect(t->arg);
}

int client_reconnect(struct client *c, int64_t delay_us)
{
	if (c->state != CLIENT_CLOSED || c->destroying)
		return -EINVAL;
	/* Nothing of the lost connection is sent on the new one: the
	 * owner says hello again and starts over. */
	client_drop_queues(c);
	c->rx_len = 0;
	c->state = CLIENT_WAITING;
	c->done = false;
	c->retry_pending = true;
	client_timer_start(c, &c->retry_timer, delay_us, client_retry_due, c);
	return 0;
}

/* ---- setup ---- */

/* Splits url into *t (the config's path appended to the URL's own). */
static int client_parse_url(const struct client *c, const char *url,
			    struct client_target *t, char *why,
			    size_t why_len)
{
	const char *prot, *addr, *upath;
	size_t n;

	if (snprintf(t->url, sizeof(t->url), "%s", url) >=
	    (int)sizeof(t->url) ||
	    lws_parse_uri(t->url, &prot, &addr, &t->port, &upath) || !*addr) {
		snprintf(why, why_len, "cannot parse relay URL '%s'", url);
		return -EINVAL;
	}
	t->ssl = 0;
	if (!strcmp(prot, "wss") || !strcmp(prot, "https")) {
		t->ssl = LCCSCF_USE_SSL;
		if (c->insecure)
			t->ssl |= LCCSCF_ALLOW_SELFSIGNED |
				LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
				LCCSCF_ALLOW_INSECURE | LCCSCF_ALLOW_EXPIRED;
	} else if (strcmp(prot, "ws") && strcmp(prot, "http")) {
		snprintf(why, why_len,
			 "relay URL '%s' must start with ws:// or wss://", url);
		return -EINVAL;
	}
	/* Join the URL's path and ours without doubling the slash. */
	n = strlen(upath);
	while (n && upath[n - 1] == '/')
		n--;
	if (snprintf(t->path, sizeof(t->path), "/%.*s%s", (int)n, upath,
		     c->suffix) >= (int)sizeof(t->path) ||
	    snprintf(t->host_hdr, sizeof(t->host_hdr), "%s:%d", addr,
		     t->port) >= (int)sizeof(t->host_hdr)) {
		snprintf(why, why_len, "relay URL '%s' is too long", url);
		return -EINVAL;
	}
	if (t->path[1] == '/')  /* empty URL path: "/" + "/host" */
		memmove(t->path, t->path + 1, strlen(t->path));
	t->addr_off = (size_t)(addr - t->url);
	return 0;
}

/* Points the connect info at c's copy of t. */
static void client_use_target(struct client *c, const struct client_target *t)
{
	struct lws_client_connect_info *ci = &c->ci;

	c->target = *t;
	ci->ssl_connection = t->ssl;
	ci->address = c->target.url + t->addr_off;
	ci->port = t->port;
	ci->path = c->target.path;
	ci->host = c->target.host_hdr;
	ci->origin = c->target.host_hdr;
}

int client_retarget(struct client *c, const char *url, char *why,
		    size_t why_len)
{
	struct client_target t;
	int err;

	if (c->state != CLIENT_CLOSED || c->destroying) {
		snprintf(why, why_len, "the connection is not closed");
		return -EINVAL;
	}
	err = client_parse_url(c, url, &t, why, why_len);
	if (!err)
		client_use_target(c, &t);
	return err;
}

static int client_context(struct client *c, const struct client_config *cfg)
{
	struct lws_context_creation_info info;

	c->protocols[0].name = cfg->subprotocol;
	c->protocols[0].callback = client_callback;
	/* Big reads and whole 64 KiB fragments per send (notes: the
	 * defaults send 4 KB at a time and copy the rest). */
	c->protocols[0].rx_buffer_size = 256 * 1024;
	c->protocols[0].tx_packet_size = CLIENT_FRAG_LEN + LWS_PRE + 16;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = c->protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.pt_serv_buf_size = 256 * 1024;
	/* Video is already compressed: no permessage-deflate. */
	info.extensions = NULL;
	/* lws notices clutter the stderr the tests show; errors stay. */
	lws_set_log_level(LLL_ERR, NULL);
	c->ctx = lws_create_context(&info);
	return c->ctx ? 0 : -EIO;
}

int client_create(struct client **out, const struct client_config *cfg,
		  char *why, size_t why_len)
{
	struct client_target t;
	struct client *c;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	c->ops = cfg->ops;
	c->user = cfg->user;
	c->rx_max = cfg->max_message ? cfg->max_message
				     : CLIENT_DEFAULT_MAX_MESSAGE;
	c->insecure = cfg->insecure;
	err = -EINVAL;
	if (snprintf(c->suffix, sizeof(c->suffix), "%s",
		     cfg->path ? cfg->path : "") >= (int)sizeof(c->suffix))
		snprintf(why, why_len, "path '%s' is too long", cfg->path);
	else
		err = client_parse_url(c, cfg->url, &t, why, why_len);
	if (err)
		goto fail_free;
	client_use_target(c, &t);
	err = client_context(c, cfg);
	if (err) {
		snprintf(why, why_len, "cannot create the lws context");
		goto fail_free;
	}
	c->ci.context = c->ctx;
	c->ci.protocol = cfg->subprotocol;
	c->ci.opaque_user_data = c;
	/* One connection per TCP stream: no HTTP/2 multiplexing. */
	c->ci.alpn = "http/1.1";
	client_connect(c);
	*out = c;
	return 0;

fail_free:
	free(c);
	return err;
}

int client_run(struct client *c)
{
	do {
		while (!c->done)
			if (lws_service(c->ctx, 0) < 0)
				return -EIO;
		c->retry_pending = false;
		/* Called here, never from inside lws, so the owner may
		 * reconnect in it; not destroy the client, which is read
		 * right after. */
		if (c->ops->on_closed)
			c->ops->on_closed(c, c->user);
	} while (c->retry_pending);
	return 0;
}

void client_destroy(struct client *c)
{
	if (!c)
		return;
	c->destroying = true;
	client_timer_stop(&c->close_timer);
	client_timer_stop(&c->retry_timer);
	if (c->ctx)
		lws_context_destroy(c->ctx);
	client_drop_queues(c);
	free(c->rx);
	free(c);
}
