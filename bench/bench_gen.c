/*
 * bench_gen: hosts and viewers of the load generator (see bench_gen.h).
 *
 * Paced sending uses one binary min-heap of timers (a media timer and an
 * input timer per active session) on the monotonic clock; the loop sleeps
 * in epoll until the earliest is due.  Each session starts at a random
 * phase within its frame period, as unrelated desktops would.
 */
#include "bench/bench_gen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench_sys.h"
#include "protocol/proto_media.h"
#include "protocol/proto_token.h"

/* Throughput mode: no progress for this long while messages are in
 * flight means the relay dropped them; write them off and send a
 * keyframe so the viewer can resume. */
#define BENCH_STALL_US (300 * 1000)
/* A paced sender this far behind its schedule skips ahead instead of
 * bursting to catch up. */
#define BENCH_BEHIND_US (1000 * 1000)
#define BENCH_SOCAT_WAIT_US (5 * 1000 * 1000)
#define BENCH_SOCAT_TRIES 5
/* Descriptors kept free for /proc, /metrics and the output file, so a
 * run at the fd limit still measures and reports. */
#define BENCH_FD_SPARE 32
/* The one user every benchmark connection signs in as. */
#define BENCH_USER "bench"
#define BENCH_TOKEN_SECS (24 * 3600)

static const struct bench_ws_ops bench_host_ops, bench_view_ops;

const char *bench_target_name(enum bench_target t)
{
	static const char *const names[] = { "relay", "node", "uws", "pipe",
					     "direct" };

	return t >= 0 && t < BENCH_T_COUNT ? names[t] : NULL;
}

/* The peers that pair a host and its viewers by name, with no protocol. */
static bool bench_paired(enum bench_target t)
{
	return t == BENCH_T_NODE || t == BENCH_T_UWS;
}

static void bench_error(struct bench_gen *g, const char *who,
			const struct bench_session *s, const char *why)
{
	if (!g->first_error[0])
		snprintf(g->first_error, sizeof(g->first_error),
			 "session %d %s: %s", s->id, who, why);
}

static void bench_session_fail(struct bench_session *s, const char *who,
			       const char *why)
{
	struct bench_gen *g = s->g;

	bench_error(g, who, s, why);
	if (s->failed)
		return;
	s->failed = true;
	g->nfailed++;
	if (s->started && !s->ready)
		g->connecting--;
}

/* ---- timer heap ------------------------------------------------------ */

static void bench_heap_swap(struct bench_gen *g, int a, int b)
{
	struct bench_timer *t = g->heap[a];

	g->heap[a] = g->heap[b];
	g->heap[b] = t;
	g->heap[a]->idx = a;
	g->heap[b]->idx = b;
}

static void bench_heap_up(struct bench_gen *g, int i)
{
	while (i > 0 && g->heap[(i - 1) / 2]->at > g->heap[i]->at) {
		bench_heap_swap(g, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void bench_heap_down(struct bench_gen *g, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;

		if (l < g->nheap && g->heap[l]->at < g->heap[m]->at)
			m = l;
		if (r < g->nheap && g->heap[r]->at < g->heap[m]->at)
			m = r;
		if (m == i)
			return;
		bench_heap_swap(g, i, m);
		i = m;
	}
}

static void bench_heap_push(struct bench_gen *g, struct bench_timer *t)
{
	t->idx = g->nheap;
	g->heap[g->nheap++] = t;
	bench_heap_up(g, t->idx);
}

static void bench_heap_pop(struct bench_gen *g)
{
	struct bench_timer *t = g->heap[0];

	g->nheap--;
	if (g->nheap) {
		g->heap[0] = g->heap[g->nheap];
		g->heap[0]->idx = 0;
		bench_heap_down(g, 0);
	}
	t->idx = -1;
}

/* ---- sending --------------------------------------------------------- */

static size_t bench_frame_size(const struct bench_gen *g, bool key)
{
	size_t size = g->cfg.size;

	if (key)
		return (size_t)((double)size * g->cfg.key_mult);
	if (g->cfg.jitter)
		size = size / 2 + (size_t)((double)size * drand48());
	return size;
}

static void bench_send_frame(struct bench_session *s, bool key)
{
	struct bench_gen *g = s->g;
	struct proto_media_hdr h = { 0 };
	uint8_t hdr[PROTO_MEDIA_HDR_LEN];
	size_t len;

	if (!s->host.ws || s->failed)
		return;
	len = bench_frame_size(g, key);
	if (len > BENCH_WS_BODY_MAX)
		len = BENCH_WS_BODY_MAX;
	h.kind = PROTO_KIND_VIDEO;
	h.flags = key ? PROTO_F_KEYFRAME | PROTO_F_CONFIG : 0;
	h.codec = PROTO_CODEC_NONE;
	h.seq = s->seq++;
	h.length = (uint32_t)len;
	h.pts_us = (uint64_t)h.seq * 33333u;
	h.capture_us = (uint64_t)bench_wall_us();
	proto_media_encode(&h, hdr);
	if (bench_ws_send_media(s->host.ws, hdr, len))
		return;
	s->sent_msgs++;
	s->sent_bytes += len + PROTO_MEDIA_HDR_LEN;
	if (g->recording)
		g->rec_sent++;
}

static bool bench_key_due(struct bench_session *s, int64_t now)
{
	const struct bench_cfg *c = &s->g->cfg;

	if (s->key_now || (s->seq == 0 && s->first_key)) {
		s->key_now = false;
		return true;
	}
	if (c->key_interval > 0 && now >= s->next_key_us) {
		s->next_key_us = now + (int64_t)(c->key_interval * 1e6);
		return true;
	}
	return false;
}

static void bench_send_input(struct bench_session *s)
{
	struct proto_input in = { .type = PROTO_IN_POINTER_MOVE,
				  .x = (int32_t)(s->in_seq % 1920),
				  .y = (int32_t)(s->in_seq % 1080) };
	struct proto_media_hdr h = { 0 };
	uint8_t msg[PROTO_MEDIA_HDR_LEN + PROTO_INPUT_LEN];

	if (!s->view[0].ws || !s->view[0].ready)
		return;
	h.kind = PROTO_KIND_INPUT;
	h.seq = s->in_seq++;
	h.length = PROTO_INPUT_LEN;
	h.capture_us = (uint64_t)bench_wall_us();
	proto_media_encode(&h, msg);
	proto_input_encode(&in, msg + PROTO_MEDIA_HDR_LEN);
	bench_ws_send_binary(s->view[0].ws, msg, sizeof(msg));
}

/* Throughput mode: what the slowest viewer still lacks. */
static uint64_t bench_inflight(const struct bench_session *s)
{
	uint64_t got = UINT64_MAX;

	for (int v = 0; v < s->nviews; v++)
		if (s->view[v].rx_msgs < got)
			got = s->view[v].rx_msgs;
	if (got == UINT64_MAX)
		got = 0;
	got += s->written_off;
	return s->sent_msgs > got ? s->sent_msgs - got : 0;
}

static void bench_window_fill(struct bench_session *s, int64_t now)
{
	struct bench_gen *g = s->g;

	while (g->sending && s->active && s->ready && !s->failed &&
	       bench_inflight(s) < (uint64_t)g->cfg.window)
		bench_send_frame(s, bench_key_due(s, now));
}

/* ---- received media headers ------------------------------------------ */

static uint64_t bench_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* The capture time of a media header of the given kind, or -1: only the
 * header is kept of a received message, so proto_media_decode() (which
 * wants the whole message) cannot be used. */
static int64_t bench_head_capture(const uint8_t *head, size_t head_len,
				  int kind)
{
	if (head_len < PROTO_MEDIA_HDR_LEN || head[0] != PROTO_MEDIA_MAGIC ||
	    head[2] != kind)
		return -1;
	return (int64_t)bench_be(head + 24, 8);
}

/* ---- host callbacks -------------------------------------------------- */

static void bench_check_ready(struct bench_session *s)
{
	struct bench_gen *g = s->g;

	if (s->ready || s->failed || !s->host.ready)
		return;
	for (int v = 0; v < s->nviews; v++)
		if (!s->view[v].ready &&
		    !(s->view[v].join_deferred && s->view[v].welcomed))
			return;
	s->ready = true;
	g->nready++;
	g->connecting--;
	s->last_progress_us = bench_mono_us();
}

/* True (and the session failed, saying why) when one more socket would
 * eat into the descriptors kept for measuring. */
static bool bench_fd_full(struct bench_session *s, const char *who)
{
	struct bench_gen *g = s->g;
	char why[64];

	if (bench_loop_count(g->loop) + 1 + BENCH_FD_SPARE <= g->fd_limit)
		return false;
	snprintf(why, sizeof(why), "generator fd limit %llu reached",
		 (unsigned long long)g->fd_limit);
	bench_session_fail(s, who, why);
	return true;
}

static void bench_connect_viewer(struct bench_session *s, int v)
{
	struct bench_gen *g = s->g;
	struct bench_peer *p = &s->view[v];
	char path[96];
	int rc;

	if (g->cfg.target == BENCH_T_RELAY)
		snprintf(path, sizeof(path), "/view");
	else
		snprintf(path, sizeof(path), "/pair/%s/view", s->name);
	if (bench_fd_full(s, "viewer"))
		return;
	rc = bench_ws_connect(g->loop, &p->ws, "127.0.0.1", g->connect_port,
			      path, "asp.view.v1", g->cfg.tls, &bench_view_ops,
			      p);
	if (rc)
		bench_session_fail(s, "viewer", strerror(-rc));
}

int bench_gen_token(const struct bench_gen *g, const char *user, bool admin,
		    const char *desktop, char *out, size_t out_len)
{
	struct proto_claims c = { .role = admin ? PROTO_ROLE_ADMIN
						: PROTO_ROLE_USER };
	uint64_t now = (uint64_t)(bench_wall_us() / 1000000);

	out[0] = '\0';
	if (!g->have_secret)
		return -EINVAL;
	snprintf(c.user, sizeof(c.user), "%s", user);
	snprintf(c.desktop, sizeof(c.desktop), "%s", desktop ? desktop : "");
	c.iat = now;
	c.exp = now + BENCH_TOKEN_SECS;
	return proto_token_mint(g->secret, sizeof(g->secret), &c, out,
				out_len) ? -EINVAL : 0;
}

/* A hello: fields is the JSON members before the token (no braces). */
static void bench_send_hello(struct bench_ws *w, const char *fields,
			     const char *desktop)
{
	struct bench_peer *p = w->user;
	char token[PROTO_TOKEN_BUF], hello[PROTO_TOKEN_BUF + 256];

	if (bench_gen_token(p->s->g, BENCH_USER, false, desktop, token,
			    sizeof(token)))
		snprintf(hello, sizeof(hello), "{%s}", fields);
	else
		snprintf(hello, sizeof(hello), "{%s,\"token\":\"%s\"}", fields,
			 token);
	bench_ws_send_text(w, hello);
}

static void bench_host_open(struct bench_ws *w)
{
	struct bench_peer *p = w->user;
	struct bench_session *s = p->s;
	char fields[192];

	if (s->g->cfg.target != BENCH_T_RELAY) {
		p->ready = true;
		bench_check_ready(s);
		return;
	}
	snprintf(fields, sizeof(fields),
		 "\"type\":\"hello\",\"os\":\"windows\",\"image\":\"system\","
		 "\"asp_version\":\"1.1.0\",\"desktop\":\"%s\"",
		 s->name);
	bench_send_hello(w, fields, s->name);
}

static void bench_copy_field(json_t *m, const char *key, char *out,
			     size_t len)
{
	const char *v = json_string_value(json_object_get(m, key));

	snprintf(out, len, "%s", v ? v : "");
}

static void bench_host_welcome(struct bench_session *s, json_t *m)
{
	bench_copy_field(m, "owner_key", s->owner_key, sizeof(s->owner_key));
	s->host.ready = true;
	if (s->nviews == 2) {
		bench_ws_send_text(s->host.ws, "{\"type\":\"share\"}");
		return;
	}
	bench_connect_viewer(s, 0);
}

/* Parses a control message; *type is its type, "" when there is none.
 * The caller json_decref()s the result (NULL is fine). */
static json_t *bench_parse_ctrl(const char *text, size_t len,
				const char **type)
{
	json_t *m = json_loadb(text, len, 0, NULL);

	*type = json_string_value(json_object_get(m, "type"));
	if (!*type)
		*type = "";
	return m;
}

static void bench_host_text(struct bench_ws *w, const char *text, size_t len)
{
	struct bench_peer *p = w->user;
	struct bench_session *s = p->s;
	const char *type;
	json_t *m = bench_parse_ctrl(text, len, &type);

	if (!strcmp(type, "welcome")) {
		bench_host_welcome(s, m);
	} else if (!strcmp(type, "code")) {
		bench_copy_field(m, "code", s->code, sizeof(s->code));
		bench_connect_viewer(s, 0);
		bench_connect_viewer(s, 1);
	} else if (!strcmp(type, "keyframe")) {
		s->key_now = true;
		if (s->g->key_on_request_now && s->g->sending && s->active)
			bench_send_frame(s, bench_key_due(s, bench_mono_us()));
	} else if (!strcmp(type, "error")) {
		char why[128];

		bench_copy_field(m, "code", why, sizeof(why));
		bench_session_fail(s, "host refused", why);
	}
	json_decref(m);
}

static void bench_host_binary(struct bench_ws *w, const uint8_t *head,
			      size_t head_len, uint64_t len, int64_t now)
{
	struct bench_peer *p = w->user;
	struct bench_gen *g = p->s->g;
	int64_t capture = bench_head_capture(head, head_len, PROTO_KIND_INPUT);

	(void)len;
	if (capture >= 0 && g->recording)
		bench_hist_add(&g->input_lat, now - capture);
}

static void bench_peer_closed(struct bench_ws *w)
{
	struct bench_peer *p = w->user;

	p->ws = NULL;
	bench_session_fail(p->s, p->role ? "viewer" : "host", w->why);
}

static const struct bench_ws_ops bench_host_ops = {
	.on_open = bench_host_open,
	.on_text = bench_host_text,
	.on_binary = bench_host_binary,
	.on_closed = bench_peer_closed,
};

/* ---- viewer callbacks ------------------------------------------------ */

static void bench_view_open(struct bench_ws *w)
{
	struct bench_peer *p = w->user;

	if (p->s->g->cfg.target != BENCH_T_RELAY) { /* peers: no protocol */
		p->ready = true;
		bench_check_ready(p->s);
		return;
	}
	bench_send_hello(w, "\"type\":\"hello\",\"client\":\"web\","
			    "\"client_version\":\"1\"", NULL);
}

static void bench_view_send_join(struct bench_peer *p)
{
	struct bench_session *s = p->s;
	char join[128];

	if (p->role == 1)
		snprintf(join, sizeof(join),
			 "{\"type\":\"join\",\"owner_key\":\"%s\"}",
			 s->owner_key);
	else
		snprintf(join, sizeof(join), "{\"type\":\"join\",\"code\":\"%s\"}",
			 s->code);
	p->join_deferred = false;
	p->join_sent_us = bench_wall_us();
	bench_ws_send_text(p->ws, join);
}

static void bench_view_text(struct bench_ws *w, const char *text, size_t len)
{
	struct bench_peer *p = w->user;
	const char *type;
	json_t *m = bench_parse_ctrl(text, len, &type);

	if (!strcmp(type, "welcome")) {
		p->welcomed = true;
		if (!p->join_deferred)
			bench_view_send_join(p);
		bench_check_ready(p->s);
	} else if (!strcmp(type, "joined")) {
		p->ready = true;
		bench_check_ready(p->s);
	} else if (!strcmp(type, "error")) {
		char why[128];

		bench_copy_field(m, "code", why, sizeof(why));
		bench_session_fail(p->s, "viewer refused", why);
	}
	json_decref(m);
}

static void bench_view_seq(struct bench_peer *p, uint32_t seq)
{
	if (p->seen && seq != p->next_seq) {
		uint32_t gap = seq - p->next_seq;

		if (gap < 0x80000000u)
			p->gaps += gap;
	}
	p->seen = true;
	p->next_seq = seq + 1;
}

static void bench_view_binary(struct bench_ws *w, const uint8_t *head,
			      size_t head_len, uint64_t len, int64_t now)
{
	struct bench_peer *p = w->user;
	struct bench_session *s = p->s;
	struct bench_gen *g = s->g;
	int64_t capture = bench_head_capture(head, head_len, PROTO_KIND_VIDEO);

	if (capture < 0)
		return;
	bench_view_seq(p, (uint32_t)bench_be(head + 8, 4));
	p->rx_msgs++;
	p->rx_bytes += len;
	if (!p->got_key && (head[3] & PROTO_F_KEYFRAME) && p->join_sent_us) {
		p->got_key = true;
		bench_hist_add(s->first_key ? &g->join_warm : &g->join_cold,
			       now - p->join_sent_us);
	}
	if (g->recording) {
		bench_hist_add(&g->lat[s->group], now - capture);
		g->rec_msgs++;
		g->rec_bytes += len;
	}
	s->last_progress_us = 0; /* progress: bench_check_stalls restarts */
	if (g->cfg.window > 0)
		bench_window_fill(s, bench_mono_us());
}

static const struct bench_ws_ops bench_view_ops = {
	.on_open = bench_view_open,
	.on_text = bench_view_text,
	.on_binary = bench_view_binary,
	.on_closed = bench_peer_closed,
};

/* ---- direct and pipe: the generator is the viewer's end --------------- */

static const struct bench_ws_ops *bench_accept(struct bench_ws *w,
					       const char *path, void *arg)
{
	struct bench_gen *g = arg;
	const char *dash = strrchr(path, '-');
	int id;

	if (strncmp(path, "/pair/", 6) || !dash || sscanf(dash + 1, "%d", &id) != 1 ||
	    id < 0 || id >= g->n || g->s[id].view[0].ws)
		return NULL;
	g->s[id].view[0].ws = w;
	g->s[id].view[0].ready = true;
	w->user = &g->s[id].view[0];
	bench_check_ready(&g->s[id]);
	return &bench_view_ops;
}

/* A free loopback port for socat: bind port 0, read it back, let go. */
static int bench_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* True once something accepts TCP connections on the port. */
static bool bench_port_open(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return ok;
}

/* Starts socat on port and waits until it listens.  0, -EADDRINUSE when
 * it exited at once (the port was taken meanwhile: it came from the
 * ephemeral range), or -ETIMEDOUT. */
static int bench_spawn_socat_on(struct bench_gen *g, int port)
{
	char listen[96], to[64];
	int64_t until = bench_mono_us() + BENCH_SOCAT_WAIT_US;

	snprintf(listen, sizeof(listen),
		 "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay,"
		 "backlog=4096", port);
	snprintf(to, sizeof(to), "TCP:127.0.0.1:%d,nodelay", g->listen_port);
	g->socat_pid = fork();
	if (g->socat_pid < 0)
		return -errno;
	if (g->socat_pid == 0) {
		/* -b: socat's copy buffer; 256 KiB so it moves large
		 * messages in as few syscalls as the kernel allows. */
		execlp("socat", "socat", "-b", "262144", listen, to,
		       (char *)NULL);
		_exit(127);
	}
	/* The probe that finds socat listening is forwarded to our server,
	 * which drops it when it closes without a handshake. */
	while (bench_mono_us() < until) {
		if (bench_port_open(port))
			return 0;
		if (waitpid(g->socat_pid, NULL, WNOHANG) == g->socat_pid) {
			g->socat_pid = 0;
			return -EADDRINUSE;
		}
		bench_loop_poll(g->loop, 20000);
	}
	return -ETIMEDOUT;
}

static int bench_spawn_socat(struct bench_gen *g)
{
	int rc = -EIO;

	for (int attempt = 0; attempt < BENCH_SOCAT_TRIES; attempt++) {
		int port = bench_free_port();

		if (port <= 0)
			return -EIO;
		rc = bench_spawn_socat_on(g, port);
		if (!rc) {
			g->connect_port = port;
			return 0;
		}
		if (rc != -EADDRINUSE)
			return rc;
	}
	return rc;
}

/* ---- lifecycle ------------------------------------------------------- */

/* A guest needs "User Stream Collaboration" (docs/admin-api.md): grant
 * it to the bench user through the admin API, as an administrator would.
 * Plain HTTP only; a refusal shows later as the guest's no_permission. */
static void bench_gen_allow_collab(struct bench_gen *g)
{
	char token[PROTO_TOKEN_BUF], path[64];
	int status;

	if (g->cfg.target != BENCH_T_RELAY || g->cfg.tls ||
	    bench_gen_token(g, "bench-admin", true, NULL, token, sizeof(token)))
		return;
	snprintf(path, sizeof(path), "/api/policy/%s", BENCH_USER);
	status = bench_http_status(g->cfg.port, "PUT", path, token,
				   "{\"collab\":true}");
	if (status != 200)
		fprintf(stderr, "asp-bench: PUT %s: %d\n", path, status);
}

static void bench_session_init(struct bench_gen *g, int i)
{
	struct bench_session *s = &g->s[i];

	s->g = g;
	s->id = i;
	s->nviews = g->cfg.viewers;
	s->active = i < g->cfg.active;
	s->first_key = true;
	snprintf(s->name, sizeof(s->name), "b%d-%d", (int)getpid(), i);
	s->host = (struct bench_peer){ .s = s, .role = 0 };
	for (int v = 0; v < 2; v++)
		s->view[v] = (struct bench_peer){ .s = s, .role = v + 1 };
	s->t_media = (struct bench_timer){ .idx = -1, .what = 0, .s = s };
	s->t_input = (struct bench_timer){ .idx = -1, .what = 1, .s = s };
}

int bench_gen_create(struct bench_gen *g, const struct bench_cfg *cfg)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->cfg = *cfg;
	g->s = calloc((size_t)cfg->sessions, sizeof(*g->s));
	g->heap = calloc(2 * (size_t)cfg->sessions + 1, sizeof(*g->heap));
	if (!g->s || !g->heap)
		return -ENOMEM;
	g->n = cfg->sessions;
	for (int i = 0; i < g->n; i++)
		bench_session_init(g, i);
	for (int k = 0; k < BENCH_GROUPS; k++)
		bench_hist_reset(&g->lat[k]);
	rc = bench_loop_create(&g->loop, cfg->tls);
	if (rc)
		return rc;
	g->connect_port = cfg->port;
	if (cfg->data_dir) {
		rc = proto_token_secret_load(cfg->data_dir, false, g->secret);
		if (rc) {
			fprintf(stderr, "asp-bench: no token secret in %s\n",
				cfg->data_dir);
			return -EINVAL;
		}
		g->have_secret = true;
		bench_gen_allow_collab(g);
	}
	if (cfg->target == BENCH_T_DIRECT || cfg->target == BENCH_T_PIPE) {
		rc = bench_loop_listen(g->loop, &g->listen_port, bench_accept,
				       g);
		if (rc)
			return rc;
		g->connect_port = g->listen_port;
	}
	if (cfg->target == BENCH_T_PIPE && (rc = bench_spawn_socat(g))) {
		fprintf(stderr, "asp-bench: socat did not start: %s\n",
			strerror(-rc));
		return rc;
	}
	return 0;
}

void bench_gen_destroy(struct bench_gen *g)
{
	bench_loop_destroy(g->loop);
	g->loop = NULL;
	if (g->socat_pid > 0) {
		kill(g->socat_pid, SIGTERM);
		waitpid(g->socat_pid, NULL, 0);
		g->socat_pid = 0;
	}
	free(g->s);
	free(g->heap);
	g->s = NULL;
	g->heap = NULL;
}

static void bench_session_start(struct bench_session *s)
{
	struct bench_gen *g = s->g;
	const struct bench_cfg *c = &g->cfg;
	char path[96];
	int rc;

	s->started = true;
	g->connecting++;
	if (bench_fd_full(s, "host"))
		return;
	if (c->target == BENCH_T_RELAY)
		snprintf(path, sizeof(path), "/host");
	else
		snprintf(path, sizeof(path), "/pair/%s/host", s->name);
	rc = bench_ws_connect(g->loop, &s->host.ws, "127.0.0.1",
			      g->connect_port, path, "asp.host.v1", c->tls,
			      &bench_host_ops, &s->host);
	if (rc) {
		bench_session_fail(s, "host", strerror(-rc));
		return;
	}
	/* The peers pair by name in any order: connect at once. */
	for (int v = 0; bench_paired(c->target) && v < s->nviews; v++)
		bench_connect_viewer(s, v);
}

int bench_gen_setup(struct bench_gen *g, int64_t timeout_us)
{
	int64_t until = bench_mono_us() + timeout_us;
	int maxc = g->cfg.max_connecting > 0 ? g->cfg.max_connecting : 256;
	struct rlimit rl;

	g->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) ? 1024 : rl.rlim_cur;

	while (g->nready + g->nfailed < g->n && bench_mono_us() < until) {
		while (g->next_start < g->n && g->connecting < maxc)
			bench_session_start(&g->s[g->next_start++]);
		bench_loop_poll(g->loop, 10000);
	}
	return g->nready;
}

static void bench_timer_arm(struct bench_gen *g, struct bench_timer *t,
			    int64_t at)
{
	t->at = at;
	if (t->idx < 0)
		bench_heap_push(g, t);
}

void bench_gen_start(struct bench_gen *g)
{
	int64_t now = bench_mono_us();

	g->sending = true;
	g->period_us = g->cfg.fps > 0 ? (int64_t)(1e6 / g->cfg.fps) : 0;
	for (int i = 0; i < g->n; i++) {
		struct bench_session *s = &g->s[i];
		int64_t phase = (int64_t)(drand48() * (double)g->period_us);

		if (!s->active || !s->ready || s->failed)
			continue;
		s->next_key_us = now + phase +
				 (int64_t)(g->cfg.key_interval * 1e6);
		if (g->cfg.window > 0) {
			bench_window_fill(s, now);
			continue;
		}
		if (g->period_us)
			bench_timer_arm(g, &s->t_media, now + phase);
		if (g->cfg.input_hz > 0)
			bench_timer_arm(g, &s->t_input,
					now + (int64_t)(drand48() * 1e6 /
							g->cfg.input_hz));
	}
}

void bench_gen_stop(struct bench_gen *g)
{
	g->sending = false;
	while (g->nheap)
		bench_heap_pop(g);
}

static void bench_timer_fire(struct bench_gen *g, struct bench_timer *t,
			     int64_t now)
{
	struct bench_session *s = t->s;
	int64_t step = t->what ? (int64_t)(1e6 / g->cfg.input_hz)
			       : g->period_us;

	bench_heap_pop(g);
	if (s->failed)
		return;
	if (t->what)
		bench_send_input(s);
	else
		bench_send_frame(s, bench_key_due(s, now));
	t->at += step;
	if (t->at < now - BENCH_BEHIND_US)
		t->at = now + step;
	bench_heap_push(g, t);
}

/* Throughput mode: a session whose viewers made no progress for a while
 * lost what was in flight (dropped by the relay). */
static void bench_check_stalls(struct bench_gen *g, int64_t now)
{
	for (int i = 0; i < g->n; i++) {
		struct bench_session *s = &g->s[i];
		uint64_t f;

		if (!s->active || !s->ready || s->failed)
			continue;
		if (!s->last_progress_us) {
			s->last_progress_us = now;
			continue;
		}
		f = bench_inflight(s);
		if (f && now - s->last_progress_us > BENCH_STALL_US) {
			s->written_off += f;
			s->stalls++;
			s->key_now = true;
			s->last_progress_us = now;
			bench_window_fill(s, now);
		}
	}
}

static void bench_turn(struct bench_gen *g, int64_t until)
{
	int64_t now = bench_mono_us(), wait = until - now;

	while (g->nheap && g->heap[0]->at <= now)
		bench_timer_fire(g, g->heap[0], now);
	if (g->nheap && g->heap[0]->at - now < wait)
		wait = g->heap[0]->at - now;
	if (wait > 10000)
		wait = 10000;
	bench_loop_poll(g->loop, wait < 0 ? 0 : wait);
}

void bench_gen_run(struct bench_gen *g, int64_t duration_us,
		   void (*tick)(struct bench_gen *g, void *arg), void *arg,
		   int64_t tick_us)
{
	int64_t now = bench_mono_us(), end = now + duration_us;
	int64_t next_tick = now + tick_us, next_stall = now + BENCH_STALL_US;

	while ((now = bench_mono_us()) < end) {
		if (tick && now >= next_tick) {
			tick(g, arg);
			next_tick += tick_us;
		}
		if (g->cfg.window > 0 && g->sending && now >= next_stall) {
			bench_check_stalls(g, now);
			next_stall = now + BENCH_STALL_US / 3;
		}
		bench_turn(g, tick && next_tick < end ? next_tick : end);
	}
}

uint64_t bench_gen_missing(const struct bench_gen *g)
{
	uint64_t sum = 0;

	for (int i = 0; i < g->n; i++) {
		const struct bench_session *s = &g->s[i];

		for (int v = 0; v < s->nviews; v++) {
			const struct bench_peer *p = &s->view[v];
			uint64_t got = p->rx_msgs + p->gaps;

			if (s->failed || !p->ws || p->ws->paused)
				continue;
			if (s->sent_msgs > got)
				sum += s->sent_msgs - got;
		}
	}
	return sum;
}

void bench_gen_drain(struct bench_gen *g, int64_t max_us)
{
	int64_t until = bench_mono_us() + max_us;

	while (bench_gen_missing(g) && bench_mono_us() < until)
		bench_loop_poll(g->loop, 5000);
}

void bench_gen_join(struct bench_gen *g, int i)
{
	struct bench_peer *p = &g->s[i].view[0];

	if (p->ws && p->join_deferred && p->ws->state == BENCH_WS_OPEN)
		bench_view_send_join(p);
}
