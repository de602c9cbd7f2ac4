/*
 * libFuzzer driver for the relay's own receive path, end to end: every
 * input is played by one or two WebSocket clients against the real relay
 * (its lws protocols table and callbacks, sessions, store and HTTP
 * handler) over socketpairs adopted by a real lws context, the way h2o's
 * fuzz/driver.cc pushes bytes through its whole server.  Nothing is
 * mocked: lws parses the handshake and the frames, relay_conn assembles
 * the messages and dispatches them, relay_session applies the rules.
 *
 * An input is one scenario byte, then steps:
 *
 *   byte 0   bits 0-1  cast: 0 a host, 1 a viewer, 2 a host and its
 *                      owner viewer, 3 a host and a guest viewer
 *            bit 2     no prelude: start before hello
 *            bits 3-4  the first client's upgrade: 0 as it should be,
 *                      1 the other path, 2 an unknown subprotocol, 3 no
 *                      upgrade (the steps are bytes of plain HTTP)
 *   step     one byte h, a length (one byte, two if h bit 5), payload
 *            h bits 0-2  0 continuation, 1 text, 2 binary, 3 ping,
 *                        4 pong, 5 close, 6 raw bytes, 7 run the loop
 *                        until it is quiet (no payload)
 *            h bit 3     FIN
 *            h bit 4     to the second client (if there is one)
 *            h bit 6     raw bytes to an HTTP client (opened on first
 *                        use), e.g. the admin API with "@A"
 *
 * The prelude, unless skipped, says hello with a valid token for each
 * client; the owner then joins with the owner key, or the host shares
 * and the guest joins with the code; so mutations start in every state.  Payloads may name secrets the relay
 * made or the driver can mint: "@H" a host token for desktop fz-desk,
 * "@V" a viewer token (a user holding both permissions), "@N" one for a
 * user holding none, "@A" an administrator's token, "@K" fz-desk's owner
 * key, "@C" its collaboration code, "@I" its open assistance request.
 *
 * What the relay sends back is checked too: every text message must
 * parse as a control message of its direction (docs/protocol.md); the
 * relay's close carries the close code of the error sent just before it,
 * or 1000/1001, and nothing follows it.  (lws answers a WebSocket
 * protocol error with a close of its own, and 4.1.6 lets writes follow
 * that one, which the driver tolerates.)  After the
 * steps every client hangs up; the connections and sessions must be gone
 * and the store is put back (permissions, open assistance requests)
 * before the next input, so inputs do not depend on each other and
 * LeakSanitizer sees every leak.  The relay runs with small bounds
 * (LLVMFuzzerInitialize) so that short inputs pass them.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "protocol/proto_code.h"
#include "protocol/proto_ctrl.h"
#include "protocol/proto_error.h"
#include "protocol/proto_token.h"
#include "relay/relay.h"
#include "relay/relay_conn.h"
#include "relay/relay_events.h"
#include "relay/relay_log.h"
#include "relay/relay_loop.h"
#include "relay/relay_server.h"
#include "relay/relay_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_DESKTOP "fz-desk"
#define FZ_HOST_USER "fz-host"
#define FZ_VIEW_USER "fz-guest"
#define FZ_NONE_USER "fz-none"
#define FZ_ADMIN_USER "fz-admin"
/* Loop turns without progress that count as quiet, and the most turns
 * one wait may take (a relay that never goes quiet is a finding). */
#define FZ_QUIET_TURNS 2
#define FZ_MAX_TURNS 2000
/* What the driver keeps of a client's incoming stream. */
#define FZ_RX_MAX (8u << 20)

struct fz_client {
	int fd;            /* our end; -1 once hung up */
	int relay_fd;      /* the end lws adopted */
	ino_t relay_ino;   /* to tell when lws closed it */
	int unread;        /* bytes the relay had not read, last turn */
	bool host;
	bool http;         /* plain HTTP: the output is not parsed */
	/* The relay's output: HTTP response head, then frames; the
	 * buffer is kept from input to input. */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	bool head_done;
	bool closed;       /* the relay's close frame arrived */
	bool lws_closed;   /* lws's own close (a WebSocket protocol error) */
	bool sent_close;   /* we sent a close frame: lws echoes its code */
	char last_error[32]; /* the code of the last text, if an error */
	char *text;        /* a fragmented text message */
	size_t text_len;
	bool in_text;
};

static struct relay fz_relay;
static char fz_dir[128];
static struct fz_client fz_clients[3];
static int fz_nclients;
static int fz_http = -1; /* index of the HTTP client, if opened */
static bool fz_trace; /* ASP_FUZZ_TRACE=1: print what the relay sends */

static void fz_die(const char *what)
{
	fprintf(stderr, "fuzz_relay: %s\n", what);
	abort();
}

static int fz_rm(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- the relay, as relay_main.c sets it up, without a listener ----- */

/* The permissions each input starts with. */
static const struct fz_perm {
	const char *user;
	bool help, collab;
} fz_perms[] = {
	{ FZ_HOST_USER, true, true },
	{ FZ_VIEW_USER, true, true },
	{ FZ_NONE_USER, false, false },
	{ FZ_ADMIN_USER, false, false },
};

static void fz_store_open(void)
{
	char why[256];

	if (relay_store_sqlite_open(fz_dir, &fz_relay.store, why, sizeof why))
		fz_die(why);
}

static void fz_perms_restore(void)
{
	struct relay_store *st = fz_relay.store;

	for (size_t i = 0; i < sizeof fz_perms / sizeof fz_perms[0]; i++) {
		const struct fz_perm *p = &fz_perms[i];
		bool help, collab;

		if (st->ops->perm_get(st, p->user, &help, &collab) ||
		    help != p->help || collab != p->collab) {
			if (st->ops->perm_set(st, p->user, p->help, p->collab))
				fz_die("cannot set permissions");
		}
	}
}

static int fz_end_assist(const struct relay_store_assist *a, void *arg)
{
	char(*ids)[RELAY_STORE_ID_MAX + 1] = arg;

	for (int i = 0; i < 8; i++) {
		if (!ids[i][0]) {
			snprintf(ids[i], sizeof ids[i], "%s", a->id);
			return 0;
		}
	}
	return 1;
}

/* Each input starts from the same store: the permissions above and no
 * open assistance request (ended ones are never looked at again).  The
 * audit log and the ended requests only grow, so every few thousand
 * inputs the store starts afresh. */
static void fz_store_tidy(void)
{
	static unsigned inputs;
	struct relay_store *st = fz_relay.store;
	char ids[8][RELAY_STORE_ID_MAX + 1];

	if (++inputs % 5000 == 0) {
		st->ops->close(st);
		fz_relay.store = NULL;
		nftw(fz_dir, fz_rm, 8, FTW_DEPTH | FTW_PHYS);
		if (mkdir(fz_dir, 0700))
			fz_die("cannot recreate the data directory");
		if (proto_token_secret_load(fz_dir, true, fz_relay.secret))
			fz_die("cannot make a secret");
		fz_store_open();
		st = fz_relay.store;
	}
	do {
		memset(ids, 0, sizeof ids);
		st->ops->assist_list(st, RELAY_ASSIST_OPEN, NULL, 8,
				     fz_end_assist, ids);
		for (int i = 0; i < 8 && ids[i][0]; i++)
			if (st->ops->assist_set_state(st, ids[i],
						      RELAY_ASSIST_ALL,
						      RELAY_ASSIST_ENDED, NULL))
				fz_die("cannot end an assistance request");
	} while (ids[7][0]);
	fz_perms_restore();
}

static void fz_fini(void)
{
	for (int i = 0; i < 3; i++)
		free(fz_clients[i].rx);
	relay_server_stop(&fz_relay);
	relay_loop_free(fz_relay.loop);
	relay_server_free(&fz_relay);
	nftw(fz_dir, fz_rm, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct relay *r = &fz_relay;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	/* Small bounds, so that inputs of a few kilobytes reach what lies
	 * beyond them (too_large, dropped video, a full keyframe cache).
	 * The configuration borrows argv for good, hence static. */
	static char *args[] = { "fuzz_relay", "--data", fz_dir, "--web", "relay/www",
			 "--max-message", "64K", "--queue-bytes", "16K",
			 "--queue-msgs", "8", "--gop-bytes", "8K",
			 "--keyframe-gap", "1", NULL };
	char why[512];

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fz_trace = getenv("ASP_FUZZ_TRACE") != NULL;
	relay_log_to(fz_trace ? stderr : NULL);
	snprintf(fz_dir, sizeof fz_dir, "%s/asp-fuzz-relay-XXXXXX", base);
	if (!mkdtemp(fz_dir))
		fz_die("cannot make a data directory");
	relay_server_init(r);
	if (relay_config_load(&r->cfg, (int)(sizeof args / sizeof args[0]) - 1,
			      args, why, sizeof why) != RELAY_CONFIG_RUN)
		fz_die(why);
	r->cfg.listen_port = -1; /* no listener: sockets are adopted */
	if (proto_token_secret_load(fz_dir, true, r->secret))
		fz_die("cannot make a secret");
	fz_store_open();
	fz_perms_restore();
	r->loop = relay_loop_new();
	if (!r->loop || relay_server_start(r, r->loop))
		fz_die("cannot start the relay's lws context");
	lws_set_log_level(0, NULL);
	atexit(fz_fini);
	return 0;
}

/* ---- reading what the relay sends ---------------------------------- */

static void fz_check_text(struct fz_client *c, const char *s, size_t n)
{
	enum proto_dir dir = c->host ? PROTO_DIR_RELAY_TO_HOST :
				       PROTO_DIR_RELAY_TO_VIEWER;
	struct proto_ctrl m;
	char why[256];

	if (proto_ctrl_parse(s, n, dir, &m, why, sizeof why)) {
		fprintf(stderr, "fuzz_relay: the relay sent %.*s: %s\n",
			(int)(n > 300 ? 300 : n), s, why);
		abort();
	}
	snprintf(c->last_error, sizeof c->last_error, "%s",
		 m.type == PROTO_MSG_ERROR ? proto_ctrl_str(&m, "code") : "");
	proto_ctrl_release(&m);
}

static bool fz_relay_fd_open(const struct fz_client *c);

/* The relay's state for c's connection, or NULL when it has none. */
static struct relay_conn *fz_conn_of(const struct fz_client *c)
{
	if (!fz_relay_fd_open(c))
		return NULL;
	for (struct relay_conn *rc = fz_relay.conns; rc; rc = rc->next)
		if (lws_get_socket_fd(rc->wsi) == c->relay_fd)
			return rc;
	return NULL;
}

/* The relay closes with 1000 (leave), 1001 (going away) or the close
 * code of the error it sent just before (docs/protocol.md); any other
 * code is lws's answer to a WebSocket protocol error. */
static void fz_on_close(struct fz_client *c, const uint8_t *p, size_t n)
{
	int code = n >= 2 ? p[0] << 8 | p[1] : 0;
	const struct proto_err_info *e;

	if (c->sent_close) {
		c->lws_closed = true;
		return;
	}
	if (code == 1000 || code == 1001) {
		c->closed = true;
		return;
	}
	if (code < 4000 || code > 4999) {
		/* lws 4.1.6 still parses a read that was ready in the same
		 * loop pass as the relay's decision to refuse (another
		 * connection's message), so its close can go first; the relay
		 * stops reading once it refuses, which covers the same read
		 * (tests/e2e/fuzzfound.test.mjs holds it to that). */
		if (fz_trace && fz_conn_of(c) &&
		    fz_conn_of(c)->state == RELAY_ST_CLOSING)
			fprintf(stderr, "fuzz_relay: lws's close went ahead of "
				"the relay's refusal\n");
		c->lws_closed = true;
		return;
	}
	c->closed = true;
	e = proto_err_by_code(c->last_error);
	if (!e || e->close_code != code) {
		fprintf(stderr, "fuzz_relay: close %d after error \"%s\"\n",
			code, c->last_error);
		abort();
	}
}

static void fz_on_frame(struct fz_client *c, int op, bool fin,
			const uint8_t *p, size_t n)
{
	if (fz_trace)
		fprintf(stderr, "fuzz_relay: %s <- op %d%s %zu bytes: %.*s\n",
			c->host ? "host" : "viewer", op, fin ? "" : " (more)",
			n, op == 1 || op == 8 ? (int)n : 0, (const char *)p);
	if (c->closed)
		fz_die("the relay sent a frame after its close frame");
	if (op == 8) {
		fz_on_close(c, p, n);
		return;
	}
	if (c->lws_closed)
		return; /* lws lets writes follow its own close (4.1.6) */
	if (op == 1 || (op == 0 && c->in_text)) {
		c->text = realloc(c->text, c->text_len + n + 1);
		memcpy(c->text + c->text_len, p, n);
		c->text_len += n;
		c->in_text = !fin;
		if (fin) {
			fz_check_text(c, c->text, c->text_len);
			c->text_len = 0;
		}
	}
}

/* Consumes the complete frames at the front of c->rx. */
static void fz_parse(struct fz_client *c)
{
	size_t off = 0;

	if (!c->head_done) {
		uint8_t *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);

		if (!end)
			return;
		off = (size_t)(end - c->rx) + 4;
		c->head_done = true;
	}
	for (;;) {
		const uint8_t *p = c->rx + off;
		size_t avail = c->rx_len - off, hl = 2, n;

		if (avail < 2)
			break;
		n = p[1] & 0x7f;
		if (p[1] & 0x80)
			fz_die("the relay masked a frame");
		if (n == 126) {
			hl = 4;
			if (avail < hl)
				break;
			n = (size_t)p[2] << 8 | p[3];
		} else if (n == 127) {
			hl = 10;
			if (avail < hl)
				break;
			n = 0;
			for (int i = 2; i < 10; i++)
				n = n << 8 | p[i];
		}
		if (avail - hl < n)
			break;
		fz_on_frame(c, p[0] & 0x0f, p[0] & 0x80, p + hl, n);
		off += hl + n;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
}

/* Reads what the relay sent c; returns how many bytes. */
static size_t fz_drain(struct fz_client *c)
{
	size_t got = 0;

	while (c->fd >= 0) {
		ssize_t n;

		if (c->rx_len == c->rx_cap) {
			if (c->rx_cap == FZ_RX_MAX)
				fz_die("a frame larger than the driver keeps");
			c->rx_cap = c->rx_cap ? c->rx_cap * 2 : 64 * 1024;
			c->rx = realloc(c->rx, c->rx_cap);
		}
		n = read(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (c->http)
			continue;
		c->rx_len += (size_t)n;
		fz_parse(c);
	}
	return got;
}

static bool fz_relay_fd_open(const struct fz_client *c)
{
	struct stat st;

	return fstat(c->relay_fd, &st) == 0 && st.st_ino == c->relay_ino;
}

/* Bytes the relay has yet to read from c. */
static int fz_unread(const struct fz_client *c)
{
	int n = 0;

	if (!fz_relay_fd_open(c) || ioctl(c->relay_fd, FIONREAD, &n))
		return 0;
	return n;
}

/* One loop turn; returns whether anything moved. */
static bool fz_turn(void)
{
	bool moved = false;

	relay_loop_run_once(fz_relay.loop, false);
	for (int i = 0; i < fz_nclients; i++) {
		struct fz_client *c = &fz_clients[i];
		int unread = fz_unread(c);

		/* Bytes the relay leaves unread (lws reads no more of an
		 * HTTP/1 connection while its answer is in progress, nor of
		 * a paused WebSocket) are not progress; bytes it takes are. */
		if (fz_drain(c) || unread != c->unread)
			moved = true;
		c->unread = unread;
	}
	return moved;
}

/* Runs the loop until the relay has read everything and written
 * nothing for a few turns. */
static void fz_settle(void)
{
	int quiet = 0;

	for (int n = 0; n < FZ_MAX_TURNS; n++) {
		quiet = fz_turn() ? 0 : quiet + 1;
		if (quiet >= FZ_QUIET_TURNS)
			return;
	}
	fz_die("the relay never went quiet");
}

/* ---- writing as a client ------------------------------------------- */

static void fz_send(struct fz_client *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len && c->fd >= 0) {
		ssize_t n = write(c->fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			fz_turn();
		} else {
			return; /* the relay hung up: the rest is lost */
		}
	}
}

static void fz_token(const char *user, enum proto_role role,
		     const char *desktop, char *out)
{
	struct proto_claims cl;
	uint64_t now = (uint64_t)time(NULL);

	memset(&cl, 0, sizeof cl);
	snprintf(cl.user, sizeof cl.user, "%s", user);
	cl.role = role;
	snprintf(cl.desktop, sizeof cl.desktop, "%s", desktop);
	cl.iat = now - 1;
	cl.exp = now + 3600;
	if (proto_token_mint(fz_relay.secret, sizeof fz_relay.secret, &cl, out,
			     PROTO_TOKEN_BUF))
		fz_die("cannot mint a token");
}

static int fz_find_assist(const struct relay_store_assist *a, void *arg)
{
	if (strcmp(a->desktop, FZ_DESKTOP) != 0)
		return 0;
	snprintf(arg, RELAY_STORE_ID_MAX + 1, "%s", a->id);
	return 1;
}

/* The secret "@X" names, or NULL if X names none. */
static const char *fz_secret(char x, char *buf)
{
	struct relay_session *s = relay_map_get(&fz_relay.by_desktop,
						FZ_DESKTOP);

	switch (x) {
	case 'H':
		fz_token(FZ_HOST_USER, PROTO_ROLE_USER, FZ_DESKTOP, buf);
		return buf;
	case 'V':
		fz_token(FZ_VIEW_USER, PROTO_ROLE_USER, "", buf);
		return buf;
	case 'N':
		fz_token(FZ_NONE_USER, PROTO_ROLE_USER, "", buf);
		return buf;
	case 'A':
		fz_token(FZ_ADMIN_USER, PROTO_ROLE_ADMIN, "", buf);
		return buf;
	case 'K':
		return s ? s->owner_key : "";
	case 'C':
		if (!s || !s->code[0])
			return "";
		proto_code_display(s->code, buf);
		return buf;
	case 'I':
		buf[0] = '\0';
		fz_relay.store->ops->assist_list(fz_relay.store,
			RELAY_ASSIST_OPEN, NULL, 1000, fz_find_assist, buf);
		return buf;
	default:
		return NULL;
	}
}

/* Copies the payload with its "@X" names replaced; malloc'd. */
static uint8_t *fz_expand(const uint8_t *p, size_t n, size_t *out_len)
{
	size_t cap = n + 1, len = 0;
	uint8_t *out = malloc(cap);
	char buf[PROTO_TOKEN_BUF];

	for (size_t i = 0; i < n; i++) {
		const char *sec = p[i] == '@' && i + 1 < n ?
					  fz_secret((char)p[i + 1], buf) :
					  NULL;
		size_t add = sec ? strlen(sec) : 1;

		if (len + add > cap) {
			cap = (len + add) * 2;
			out = realloc(out, cap);
		}
		if (sec) {
			memcpy(out + len, sec, add);
			i++;
		} else {
			out[len] = p[i];
		}
		len += add;
	}
	*out_len = len;
	return out;
}

/* A masked client frame (the mask key is 0, so the payload reads as it
 * is, which keeps the dictionary's words intact). */
static void fz_frame(struct fz_client *c, int op, bool fin, const uint8_t *p,
		     size_t n)
{
	uint8_t hdr[14];
	size_t hl = 2;

	if (op == 8)
		c->sent_close = true;
	hdr[0] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		hdr[1] = (uint8_t)(0x80 | n);
	} else if (n < 65536) {
		hdr[1] = 0x80 | 126;
		hdr[2] = (uint8_t)(n >> 8);
		hdr[3] = (uint8_t)n;
		hl = 4;
	} else {
		hdr[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	memset(hdr + hl, 0, 4);
	hl += 4;
	fz_send(c, hdr, hl);
	fz_send(c, p, n);
}

static void fz_text(struct fz_client *c, const char *fmt_json)
{
	size_t n;
	uint8_t *p = fz_expand((const uint8_t *)fmt_json, strlen(fmt_json), &n);

	fz_frame(c, 1, true, p, n);
	free(p);
	fz_settle();
}

/* ---- one input ----------------------------------------------------- */

static void fz_connect(struct fz_client *c, bool host, int variant)
{
	static const char *const protos[] = { RELAY_PROTO_VIEW,
					      RELAY_PROTO_HOST };
	int sv[2];
	struct stat st;
	char req[512];
	int n;

	uint8_t *rx = c->rx;
	size_t rx_cap = c->rx_cap;

	memset(c, 0, sizeof *c);
	c->rx = rx;
	c->rx_cap = rx_cap;
	c->fd = -1;
	c->host = host;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		fz_die("socketpair");
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	c->fd = sv[0];
	c->relay_fd = sv[1];
	fstat(sv[1], &st);
	c->relay_ino = st.st_ino;
	fz_nclients++;
	if (!lws_adopt_socket_vhost(fz_relay.vhost, sv[1])) {
		close(sv[1]); /* lws closes it on failure in some paths */
		fz_die("lws would not adopt a socket");
	}
	if (variant == 3) {
		c->http = true;
		return;
	}
	n = snprintf(req, sizeof req,
		     "GET %s HTTP/1.1\r\n"
		     "Host: relay.fuzz\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: %s\r\n\r\n",
		     (host == (variant != 1)) ? "/host" : "/view",
		     variant == 2 ? "asp.fuzz.v0" : protos[host]);
	fz_send(c, req, (size_t)n);
	fz_settle();
}

static void fz_prelude(int cast)
{
	struct fz_client *host = &fz_clients[0];
	struct fz_client *view = cast >= 2 ? &fz_clients[1] : &fz_clients[0];

	if (cast != 1)
		fz_text(host, "{\"type\":\"hello\",\"os\":\"windows\","
			"\"image\":\"system\",\"asp_version\":\"1.1.0\","
			"\"desktop\":\"" FZ_DESKTOP "\",\"name\":\"Fuzz\","
			"\"token\":\"@H\"}");
	if (cast == 3)
		fz_text(host, "{\"type\":\"share\"}");
	if (cast == 0)
		return;
	fz_text(view, "{\"type\":\"hello\",\"client\":\"web\","
		"\"client_version\":\"1.0\",\"name\":\"Guest\","
		"\"token\":\"@V\"}");
	if (cast == 2)
		fz_text(view, "{\"type\":\"join\",\"owner_key\":\"@K\"}");
	else if (cast == 3)
		fz_text(view, "{\"type\":\"join\",\"code\":\"@C\"}");
}

static void fz_steps(const uint8_t *p, size_t n)
{
	while (n) {
		uint8_t h = *p++;
		int op = h & 7;
		struct fz_client *c =
			&fz_clients[(h & 0x10) && fz_nclients > 1 ? 1 : 0];
		size_t len, elen;
		uint8_t *e;

		n--;
		if (h & 0x40) {
			if (fz_http < 0) {
				fz_http = fz_nclients;
				fz_connect(&fz_clients[fz_http], false, 3);
			}
			c = &fz_clients[fz_http];
		}
		if (op == 7) {
			fz_settle();
			continue;
		}
		if (!n)
			break;
		len = *p++;
		n--;
		if (h & 0x20 && n) {
			len = len << 8 | *p++;
			n--;
		}
		if (len > n)
			len = n;
		e = fz_expand(p, len, &elen);
		if (op == 6 || c->http)
			fz_send(c, e, elen);
		else
			fz_frame(c, (int[]){ 0, 1, 2, 9, 10, 8 }[op], h & 8,
				 e, elen);
		free(e);
		p += len;
		n -= len;
	}
	fz_settle();
}

/* Both clients hang up; every trace of them must go. */
static void fz_hang_up(void)
{
	for (int i = 0; i < fz_nclients; i++) {
		close(fz_clients[i].fd);
		fz_clients[i].fd = -1;
	}
	/* lws does not read an HTTP/1 connection while its answer is in
	 * progress, so the relay learns that an event-stream subscriber
	 * left only when it next writes to it: an event, or the ping every
	 * 20 seconds.  One event now, instead of waiting for the ping. */
	if (fz_relay.events)
		relay_events_publish(&fz_relay, "fuzz-hang-up", FZ_ADMIN_USER,
				     "", "");
	for (int n = 0;; n++) {
		bool open = false;

		for (int i = 0; i < fz_nclients; i++)
			open |= fz_relay_fd_open(&fz_clients[i]);
		if (!open && !fz_relay.nconns)
			break;
		if (n == FZ_MAX_TURNS) {
			for (int i = 0; i < fz_nclients; i++)
				if (fz_relay_fd_open(&fz_clients[i]))
					fprintf(stderr, "fuzz_relay: client %d "
						"(%s) is still connected\n", i,
						fz_clients[i].http ? "http" :
						fz_clients[i].host ? "host" :
						"viewer");
			fz_die("a connection outlived its client");
		}
		fz_turn();
	}
	for (int i = 0; i < fz_nclients; i++) {
		free(fz_clients[i].text);
		fz_clients[i].text = NULL;
	}
	fz_nclients = 0;
	fz_http = -1;
	if (fz_relay.conns)
		fz_die("a connection is still listed");
	relay_session_free_all(&fz_relay);
	/* Failed joins and the like are counted for a while: forget them,
	 * or one input's guesses would rate-limit the next. */
	relay_guard_free(&fz_relay.guard);
	relay_guard_init(&fz_relay.guard);
	fz_store_tidy();
	/* A control message the relay could not build was never sent: a
	 * defect the checks on what arrives cannot see. */
	if (relay_log_build_failures())
		fz_die("the relay failed to build a control message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int cast, variant;

	if (size < 1)
		return 0;
	cast = data[0] & 3;
	variant = data[0] >> 3 & 3;
	fz_connect(&fz_clients[0], cast != 1, variant);
	if (cast >= 2)
		fz_connect(&fz_clients[1], false, 0);
	if (!(data[0] & 4) && variant == 0)
		fz_prelude(cast);
	fz_steps(data + 1, size - 1);
	fz_hang_up();
	return 0;
}
