/*
 * asp-bench: the relay's load generator and benchmark (bench/README.md).
 *
 * One process drives many sessions (a host pushing media, one or two
 * viewers receiving it) against a target: the relay, the Node.js ws relay,
 * the uWebSockets.js relay, a socat pipe or a direct connection
 * (bench/bench_gen.h says what each measures).  A run is one mode:
 *
 *   throughput   1+ sessions, unpaced, `window` messages in flight
 *   latency      S sessions x F fps x size, keyframes, input upstream
 *   scale        steps of sessions (half idle, half active); stops at the
 *                first step that fails
 *   slow-viewer  one guest stops reading; relay memory, others' latency
 *   join         join request to first keyframe, with and without a
 *                keyframe in the relay's cache
 *
 * With --procs N the sessions of a throughput, latency or scale run are
 * split over N forked generator processes (each with its own fd limit and
 * its own core time), started together; the parent samples the target
 * over the window they all record and sums their counts and histograms
 * into one line, so the generator is not what limits a large run.
 *
 * Each measurement prints a line of a human table on stdout and appends
 * one JSON object per line to --out.  Exit status: 0 when every
 * measurement ran (a scale step that fails is a result, not an error),
 * 1 on usage errors, 2 when a measurement could not run (nothing
 * connected, no message arrived).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_gen.h"
#include "bench/bench_hist.h"
#include "bench/bench_sys.h"

#define BENCH_TIMELINE_MAX 256
#define BENCH_PROCS_MAX 16

enum bench_mode {
	BENCH_M_THROUGHPUT,
	BENCH_M_LATENCY,
	BENCH_M_SCALE,
	BENCH_M_SLOW,
	BENCH_M_JOIN,
};

static const char *const bench_mode_names[] = { "throughput", "latency",
						"scale", "slow-viewer",
						"join" };

struct bench_opts {
	enum bench_mode mode;
	struct bench_cfg cfg;
	double seconds, warmup;
	int steps[16], nsteps;
	pid_t pid;          /* process whose CPU and memory are sampled */
	int metrics_port;   /* the relay's plain HTTP port, 0: none */
	const char *out;
	const char *label;
	double fail_p99_ms;
	double fail_loss;
	int procs;          /* generator processes (--procs) */
	FILE *jf;
	int status;
};

/* What is sampled at the start and end of a measurement. */
struct bench_snap {
	int64_t t;
	struct bench_proc peer, self;
	struct bench_metrics m;
	bool have_m;
};

static void bench_snap_take(const struct bench_opts *o, struct bench_snap *s)
{
	s->t = bench_mono_us();
	if (o->pid > 0)
		bench_proc_read(o->pid, &s->peer);
	else
		memset(&s->peer, 0, sizeof(s->peer));
	bench_proc_read(0, &s->self);
	s->have_m = o->metrics_port > 0 &&
		    !bench_metrics_read(o->metrics_port, &s->m);
}

/* ---- what a generator measured ---------------------------------------- */

/* One measured window as one generator saw it; summed over the processes
 * when the generator is split (--procs), so a row is the same whether one
 * process or several drove its sessions. */
struct bench_tally {
	int n, ready, failed;
	uint64_t sent, msgs, bytes, inputs, missing, gaps, stalls;
	double cpu_s; /* the generator's own CPU over the window */
	struct bench_hist lat[BENCH_GROUPS], input;
	char first_error[192];
};

static void bench_tally_take(const struct bench_gen *g, int ready,
			     double cpu_s, struct bench_tally *t)
{
	memset(t, 0, sizeof(*t));
	t->n = g->n;
	t->ready = ready;
	t->failed = g->nfailed;
	t->sent = g->rec_sent;
	t->msgs = g->rec_msgs;
	t->bytes = g->rec_bytes;
	t->inputs = g->input_lat.count;
	t->missing = bench_gen_missing(g);
	for (int i = 0; i < g->n; i++) {
		t->stalls += g->s[i].stalls;
		for (int v = 0; v < g->s[i].nviews; v++)
			t->gaps += g->s[i].view[v].gaps;
	}
	t->cpu_s = cpu_s;
	for (int k = 0; k < BENCH_GROUPS; k++)
		t->lat[k] = g->lat[k];
	t->input = g->input_lat;
	snprintf(t->first_error, sizeof(t->first_error), "%s", g->first_error);
}

static void bench_tally_add(struct bench_tally *t, const struct bench_tally *u)
{
	t->n += u->n;
	t->ready += u->ready;
	t->failed += u->failed;
	t->sent += u->sent;
	t->msgs += u->msgs;
	t->bytes += u->bytes;
	t->inputs += u->inputs;
	t->missing += u->missing;
	t->gaps += u->gaps;
	t->stalls += u->stalls;
	t->cpu_s += u->cpu_s;
	for (int k = 0; k < BENCH_GROUPS; k++)
		bench_hist_merge(&t->lat[k], &u->lat[k]);
	bench_hist_merge(&t->input, &u->input);
	if (!t->first_error[0])
		memcpy(t->first_error, u->first_error, sizeof(t->first_error));
}

/* ---- output ------------------------------------------------------------ */

struct bench_line {
	const char *phase;
	int sessions, active;
	const struct bench_tally *t;
	const struct bench_snap *a, *b;
	/* /metrics from before sending starts to after the drain, so every
	 * byte copied in is also forwarded in the same window (NULL: a, b). */
	const struct bench_metrics *ma, *mb;
	uint64_t idle_rss_kib, base_rss_kib;
	bool ok;
	const char *why;
	const int64_t (*timeline)[2];
	int ntimeline;
};

static void bench_json_hist(FILE *f, const char *key,
			    const struct bench_hist *h)
{
	fprintf(f, ",\"%s\":", key);
	bench_hist_json(h, f);
}

static void bench_json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static void bench_json_peer(FILE *f, const struct bench_line *ln, double secs)
{
	const struct bench_snap *a = ln->a, *b = ln->b;
	double cpu = b->peer.cpu_s - a->peer.cpu_s;
	uint64_t delivered = ln->t->msgs + ln->t->inputs;

	fprintf(f,
		",\"peer_cpu_pct\":%.1f,\"peer_rss_kib\":%llu,"
		"\"peer_hwm_kib\":%llu,\"gen_cpu_pct\":%.1f",
		secs > 0 ? 100 * cpu / secs : 0,
		(unsigned long long)b->peer.rss_kib,
		(unsigned long long)b->peer.hwm_kib,
		secs > 0 ? 100 * ln->t->cpu_s / secs : 0);
	/* The peer's CPU per message it delivered (media to viewers, input
	 * to hosts): what a message costs the relay, whatever the load. */
	if (b->peer.cpu_s > 0 && delivered)
		fprintf(f, ",\"peer_cpu_us_per_msg\":%.2f",
			1e6 * cpu / (double)delivered);
	if (ln->idle_rss_kib)
		fprintf(f, ",\"idle_rss_kib\":%llu,\"base_rss_kib\":%llu",
			(unsigned long long)ln->idle_rss_kib,
			(unsigned long long)ln->base_rss_kib);
	if (a->have_m && b->have_m) {
		const struct bench_metrics *ma = ln->ma ? ln->ma : &a->m;
		const struct bench_metrics *mb = ln->mb ? ln->mb : &b->m;
		double fw = mb->forwarded - ma->forwarded;

		fprintf(f,
			",\"copied_bytes\":%.0f,\"forwarded_bytes\":%.0f,"
			"\"copies_per_byte\":%.4f,\"dropped\":%.0f",
			mb->copied - ma->copied, fw,
			fw > 0 ? (mb->copied - ma->copied) / fw : 0,
			b->m.dropped - a->m.dropped);
	}
}

static void bench_json_counts(FILE *f, const struct bench_tally *t,
			      double secs)
{
	fprintf(f,
		",\"sent\":%llu,\"received\":%llu,\"missing\":%llu,"
		"\"gaps\":%llu,\"stalls\":%llu,\"failed\":%d,"
		"\"msgs_per_s\":%.1f,\"bytes_per_s\":%.0f",
		(unsigned long long)t->sent, (unsigned long long)t->msgs,
		(unsigned long long)t->missing, (unsigned long long)t->gaps,
		(unsigned long long)t->stalls, t->failed,
		secs > 0 ? (double)t->msgs / secs : 0,
		secs > 0 ? (double)t->bytes / secs : 0);
}

static void bench_json_timeline(FILE *f, const struct bench_line *ln)
{
	if (!ln->ntimeline)
		return;
	fputs(",\"rss_timeline\":[", f);
	for (int i = 0; i < ln->ntimeline; i++)
		fprintf(f, "%s[%lld,%lld]", i ? "," : "",
			(long long)ln->timeline[i][0],
			(long long)ln->timeline[i][1]);
	fputc(']', f);
}

static void bench_emit_json(const struct bench_opts *o,
			    const struct bench_gen *g,
			    const struct bench_line *ln, double secs)
{
	const struct bench_cfg *c = &o->cfg;
	const struct bench_tally *t = ln->t;
	FILE *f = o->jf;

	fprintf(f, "{\"mode\":\"%s\",\"phase\":\"%s\",\"target\":\"%s\","
		   "\"tls\":%s,\"label\":",
		bench_mode_names[o->mode], ln->phase,
		bench_target_name(c->target), c->tls ? "true" : "false");
	bench_json_escape(f, o->label);
	fprintf(f,
		",\"time\":%lld,\"sessions\":%d,\"active\":%d,\"viewers\":%d,"
		"\"fps\":%g,\"size\":%zu,\"window\":%d,\"procs\":%d,"
		"\"seconds\":%.3f,\"ok\":%s,\"why\":",
		(long long)time(NULL), ln->sessions, ln->active, c->viewers,
		c->fps, c->size, c->window, o->procs, secs,
		ln->ok ? "true" : "false");
	bench_json_escape(f, ln->why ? ln->why : t->first_error);
	bench_json_counts(f, t, secs);
	bench_json_hist(f, "lat_us", &t->lat[0]);
	if (t->lat[1].count)
		bench_json_hist(f, "lat_special_us", &t->lat[1]);
	if (t->input.count)
		bench_json_hist(f, "input_lat_us", &t->input);
	if (o->mode == BENCH_M_JOIN) {
		bench_json_hist(f, "join_cached_us", &g->join_warm);
		bench_json_hist(f, "join_uncached_us", &g->join_cold);
	}
	bench_json_peer(f, ln, secs);
	bench_json_timeline(f, ln);
	fputs("}\n", f);
	fflush(f);
}

static void bench_emit_table(const struct bench_opts *o,
			     const struct bench_line *ln, double secs)
{
	static bool header;
	const struct bench_tally *t = ln->t;
	const struct bench_hist *h = &t->lat[0];
	double cpu = ln->b->peer.cpu_s - ln->a->peer.cpu_s;

	if (!header) {
		printf("%-11s %-8s %-6s %3s %6s %7s %9s %9s %8s %8s %8s %8s "
		       "%6s %8s %s\n",
		       "mode", "phase", "target", "tls", "sess", "size",
		       "msg/s", "MB/s", "p50us", "p99us", "p999us", "maxus",
		       "cpu%", "rssKiB", "ok");
		header = true;
	}
	printf("%-11s %-8s %-6s %3s %6d %7zu %9.0f %9.1f %8lld %8lld %8lld "
	       "%8lld %6.1f %8llu %s\n",
	       bench_mode_names[o->mode], ln->phase,
	       bench_target_name(o->cfg.target), o->cfg.tls ? "yes" : "no",
	       ln->sessions, o->cfg.size,
	       secs > 0 ? (double)t->msgs / secs : 0,
	       secs > 0 ? (double)t->bytes / secs / 1e6 : 0,
	       (long long)bench_hist_quantile(h, 0.5),
	       (long long)bench_hist_quantile(h, 0.99),
	       (long long)bench_hist_quantile(h, 0.999), (long long)h->max,
	       secs > 0 ? 100 * cpu / secs : 0,
	       (unsigned long long)ln->b->peer.rss_kib,
	       ln->ok ? "ok" : (ln->why ? ln->why : "FAIL"));
	fflush(stdout);
}

static void bench_emit(struct bench_opts *o, const struct bench_gen *g,
		       const struct bench_line *ln)
{
	double secs = (double)(ln->b->t - ln->a->t) / 1e6;

	bench_emit_json(o, g, ln, secs);
	bench_emit_table(o, ln, secs);
}

/* Emits a line of a mode that runs one generator in this process. */
static void bench_emit_gen(struct bench_opts *o, const struct bench_gen *g,
			   struct bench_line *ln)
{
	struct bench_tally t;

	bench_tally_take(g, g->nready, ln->b->self.cpu_s - ln->a->self.cpu_s,
			 &t);
	ln->t = &t;
	bench_emit(o, g, ln);
	ln->t = NULL;
}

/* ---- the measurement every mode shares -------------------------------- */

static void bench_reset_stats(struct bench_gen *g)
{
	for (int k = 0; k < BENCH_GROUPS; k++)
		bench_hist_reset(&g->lat[k]);
	bench_hist_reset(&g->input_lat);
	g->rec_msgs = g->rec_bytes = g->rec_sent = 0;
}

/* Records for o->seconds; a and b are the snapshots around it. */
static void bench_record(struct bench_opts *o, struct bench_gen *g,
			 struct bench_snap *a, struct bench_snap *b,
			 void (*tick)(struct bench_gen *g, void *arg),
			 void *arg)
{
	bench_reset_stats(g);
	bench_snap_take(o, a);
	g->recording = true;
	bench_gen_run(g, (int64_t)(o->seconds * 1e6), tick, arg, 500000);
	g->recording = false;
	bench_snap_take(o, b);
}

static int bench_setup(struct bench_opts *o, struct bench_gen *g,
		       int64_t timeout_us)
{
	int ready = bench_gen_setup(g, timeout_us);

	if (ready < g->n)
		fprintf(stderr, "asp-bench: %d of %d sessions ready (%s)\n",
			ready, g->n,
			g->first_error[0] ? g->first_error : "timed out");
	if (!ready)
		o->status = 2;
	return ready;
}

/* One measured window: connect, (idle), send, warm up, record, drain. */
struct bench_window {
	int64_t setup_us;   /* bound on connecting every session */
	bool idle;          /* read the peer's RSS with all connected, idle */
	/* results */
	struct bench_tally t;
	struct bench_snap a, b;
	struct bench_metrics ma, mb;
	bool have_m;
	struct bench_proc idle_proc;
};

/* What the parent of a split generator and its children say to each
 * other: each child writes how many sessions it has ready, waits for one
 * byte (go), measures and writes its tally. */
struct bench_sync {
	int up, down;
};

static int bench_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads len bytes from fd before the monotonic deadline.  0 or -1. */
static int bench_read_all(int fd, void *buf, size_t len, int64_t until)
{
	char *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int64_t left = until - bench_mono_us();
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)(left / 1000) + 1) < 0)
			return -1;
		if (!pf.revents)
			continue;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A child keeps its connections served until the parent says go.  False
 * when the parent went away. */
static bool bench_wait_go(struct bench_gen *g, const struct bench_sync *sy)
{
	for (;;) {
		struct pollfd pf = { .fd = sy->down, .events = POLLIN };
		char go;

		if (poll(&pf, 1, 0) > 0)
			return read(sy->down, &go, 1) == 1;
		bench_gen_run(g, 10000, NULL, NULL, 0);
	}
}

/* The window on this process's own generator.  With sy (a child of a
 * split generator) the parent samples the peer; here only the
 * generator's own CPU is. */
static void bench_window_here(struct bench_opts *o,
			      const struct bench_cfg *cfg,
			      struct bench_window *w,
			      const struct bench_sync *sy)
{
	struct bench_gen g;
	int ready = 0;
	bool go = true;

	if (bench_gen_create(&g, cfg)) {
		memset(&w->t, 0, sizeof(w->t));
		w->t.n = w->t.failed = cfg->sessions;
		snprintf(w->t.first_error, sizeof(w->t.first_error),
			 "the generator could not start");
		if (sy)
			bench_write_all(sy->up, &ready, sizeof(ready));
		bench_gen_destroy(&g);
		return;
	}
	ready = bench_setup(o, &g, w->setup_us);
	if (sy) {
		go = !bench_write_all(sy->up, &ready, sizeof(ready)) &&
		     bench_wait_go(&g, sy);
	} else {
		if (w->idle) {
			bench_gen_run(&g, 500000, NULL, NULL, 0);
			if (o->pid > 0)
				bench_proc_read(o->pid, &w->idle_proc);
		}
		w->have_m = o->metrics_port > 0 &&
			    !bench_metrics_read(o->metrics_port, &w->ma);
	}
	if (go && ready) {
		bench_gen_start(&g);
		bench_gen_run(&g, (int64_t)(o->warmup * 1e6), NULL, NULL, 0);
	}
	if (go)
		bench_record(o, &g, &w->a, &w->b, NULL, NULL);
	bench_gen_stop(&g);
	bench_gen_drain(&g, 1000000);
	if (!sy && w->have_m)
		w->have_m = !bench_metrics_read(o->metrics_port, &w->mb);
	bench_tally_take(&g, ready, w->b.self.cpu_s - w->a.self.cpu_s, &w->t);
	bench_gen_destroy(&g);
}

/* Child k of n: its share of the sessions, active ones included. */
static void bench_share(struct bench_cfg *c, int k, int n)
{
	c->sessions = c->sessions / n + (k < c->sessions % n);
	c->active = c->active / n + (k < c->active % n);
	/* As many handshakes in flight in all as one process would have:
	 * more only makes the target time some of them out. */
	c->max_connecting = c->max_connecting / n > 16
				    ? c->max_connecting / n
				    : 16;
}

static void bench_split_child(struct bench_opts *o, struct bench_cfg cfg,
			      struct bench_window *w, int k,
			      const struct bench_sync *sy)
{
	bench_share(&cfg, k, o->procs);
	/* The parent samples the peer and /metrics. */
	o->pid = 0;
	o->metrics_port = 0;
	srand48((long)getpid() ^ (long)bench_wall_us());
	bench_window_here(o, &cfg, w, sy);
	_exit(bench_write_all(sy->up, &w->t, sizeof(w->t)) ? 2 : 0);
}

/* The parent's ends of its children's pipes (-1: that child is missing). */
struct bench_split {
	int up[BENCH_PROCS_MAX], down[BENCH_PROCS_MAX];
	pid_t pid[BENCH_PROCS_MAX];
};

/* Forks child k with its pipes; a child that cannot be had stays -1. */
static void bench_split_spawn(struct bench_opts *o, const struct bench_cfg *cfg,
			      struct bench_window *w, struct bench_split *sp,
			      int k)
{
	int pu[2] = { -1, -1 }, pd[2] = { -1, -1 };

	sp->pid[k] = -1;
	sp->up[k] = sp->down[k] = -1;
	if (pipe2(pu, O_CLOEXEC) || pipe2(pd, O_CLOEXEC)) {
		fprintf(stderr, "asp-bench: pipe: %s\n", strerror(errno));
		close(pu[0]), close(pu[1]);
		return;
	}
	fflush(NULL);
	sp->pid[k] = fork();
	if (sp->pid[k] == 0) {
		struct bench_sync sy = { .up = pu[1], .down = pd[0] };

		close(pu[0]);
		close(pd[1]);
		for (int j = 0; j < k; j++)
			close(sp->up[j]), close(sp->down[j]);
		bench_split_child(o, *cfg, w, k, &sy);
	}
	close(pu[1]);
	close(pd[0]);
	if (sp->pid[k] < 0) {
		fprintf(stderr, "asp-bench: fork: %s\n", strerror(errno));
		close(pu[0]), close(pd[1]);
		return;
	}
	sp->up[k] = pu[0];
	sp->down[k] = pd[1];
}

/* Child k's tally into w; a child that did not report counts its
 * sessions as failed.  Reaps the child. */
static void bench_split_gather(const struct bench_opts *o,
			       const struct bench_cfg *cfg,
			       struct bench_window *w, struct bench_split *sp,
			       int k, int64_t until)
{
	static struct bench_tally t;

	if (sp->up[k] >= 0 &&
	    !bench_read_all(sp->up[k], &t, sizeof(t), until)) {
		t.ready = 0; /* counted when the child said so */
		bench_tally_add(&w->t, &t);
	} else {
		struct bench_cfg c = *cfg;

		bench_share(&c, k, o->procs);
		w->t.n += c.sessions;
		w->t.failed += c.sessions;
		if (!w->t.first_error[0])
			snprintf(w->t.first_error, sizeof(w->t.first_error),
				 "generator process %d did not report", k);
	}
	close(sp->up[k]);
	close(sp->down[k]);
	if (sp->pid[k] > 0)
		waitpid(sp->pid[k], NULL, 0);
}

/* The window over o->procs generator processes, each with its share of
 * the sessions (and its own fd limit): they connect, the parent waits
 * for all of them, then starts them at once and samples the peer over
 * the same window their recordings cover. */
static void bench_window_split(struct bench_opts *o,
			       const struct bench_cfg *cfg,
			       struct bench_window *w)
{
	static struct bench_split sp;
	int64_t until;
	char go = 'g';

	memset(&w->t, 0, sizeof(w->t));
	for (int k = 0; k < o->procs; k++)
		bench_split_spawn(o, cfg, w, &sp, k);
	until = bench_mono_us() + w->setup_us + 5000000;
	for (int k = 0; k < o->procs; k++) {
		int ready = 0;

		if (sp.up[k] >= 0 &&
		    bench_read_all(sp.up[k], &ready, sizeof(ready), until))
			ready = 0;
		w->t.ready += ready;
	}
	if (w->idle) {
		usleep(500000);
		if (o->pid > 0)
			bench_proc_read(o->pid, &w->idle_proc);
	}
	w->have_m = o->metrics_port > 0 &&
		    !bench_metrics_read(o->metrics_port, &w->ma);
	for (int k = 0; k < o->procs; k++)
		if (sp.down[k] >= 0 && bench_write_all(sp.down[k], &go, 1))
			fprintf(stderr, "asp-bench: generator %d is gone\n", k);
	usleep((useconds_t)(o->warmup * 1e6));
	bench_snap_take(o, &w->a);
	usleep((useconds_t)(o->seconds * 1e6));
	bench_snap_take(o, &w->b);
	until = bench_mono_us() + 60 * 1000000;
	for (int k = 0; k < o->procs; k++)
		bench_split_gather(o, cfg, w, &sp, k, until);
	if (w->have_m)
		w->have_m = !bench_metrics_read(o->metrics_port, &w->mb);
}

static void bench_window(struct bench_opts *o, const struct bench_cfg *cfg,
			 struct bench_window *w)
{
	if (o->procs > 1)
		bench_window_split(o, cfg, w);
	else
		bench_window_here(o, cfg, w, NULL);
}

/* throughput, latency: one measurement. */
static int bench_steady(struct bench_opts *o)
{
	static struct bench_window w;
	struct bench_line ln = { .phase = "steady" };

	w.setup_us = 30 * 1000000;
	bench_window(o, &o->cfg, &w);
	/* Each generator said which of its sessions did not connect. */
	if (w.t.ready < w.t.n)
		return 2;
	if (w.have_m) {
		ln.ma = &w.ma;
		ln.mb = &w.mb;
	}
	ln.sessions = w.t.n;
	ln.active = o->cfg.active;
	ln.t = &w.t;
	ln.a = &w.a;
	ln.b = &w.b;
	ln.ok = w.t.msgs > 0 && !w.t.failed;
	if (!w.t.msgs)
		o->status = 2;
	bench_emit(o, NULL, &ln);
	return o->status;
}

/* ---- scale ------------------------------------------------------------- */

static const char *bench_step_verdict(const struct bench_opts *o,
				      const struct bench_tally *t,
				      bool active, char *why, size_t len)
{
	double lost = t->sent ? (double)t->missing / (double)t->sent : 0;
	int64_t p99 = bench_hist_quantile(&t->lat[0], 0.99);

	if (t->ready < t->n)
		snprintf(why, len, "only %d of %d sessions connected (%s)",
			 t->ready, t->n,
			 t->first_error[0] ? t->first_error : "timed out");
	else if (t->failed)
		snprintf(why, len, "%d sessions failed: %s", t->failed,
			 t->first_error);
	else if (active && !t->msgs)
		snprintf(why, len, "no media arrived");
	else if (lost > o->fail_loss)
		snprintf(why, len, "%.2f%% of messages lost", 100 * lost);
	else if (p99 > (int64_t)(o->fail_p99_ms * 1000))
		snprintf(why, len, "p99 latency %.1f ms over %.0f ms",
			 (double)p99 / 1000, o->fail_p99_ms);
	else
		return NULL;
	return why;
}

/* One step: connect n sessions, measure idle memory, then activate half.
 * Returns true when the step passed. */
static bool bench_scale_step(struct bench_opts *o, int n, uint64_t base_rss)
{
	struct bench_cfg cfg = o->cfg;
	static struct bench_window w;
	struct bench_line ln = { .phase = "step", .sessions = n };
	char why[256];

	cfg.sessions = n;
	cfg.active = n / 2;
	memset(&w, 0, sizeof(w));
	w.setup_us = 20 * 1000000 + (int64_t)n * 8000;
	w.idle = true;
	bench_window(o, &cfg, &w);
	ln.active = cfg.active;
	ln.t = &w.t;
	ln.a = &w.a;
	ln.b = &w.b;
	ln.idle_rss_kib = w.idle_proc.rss_kib;
	ln.base_rss_kib = base_rss;
	ln.why = bench_step_verdict(o, &w.t, cfg.active > 0, why, sizeof(why));
	ln.ok = !ln.why;
	bench_emit(o, NULL, &ln);
	return ln.ok;
}

static int bench_scale(struct bench_opts *o)
{
	struct bench_proc base;

	memset(&base, 0, sizeof(base));
	if (o->pid > 0)
		bench_proc_read(o->pid, &base);
	for (int i = 0; i < o->nsteps; i++) {
		if (!bench_scale_step(o, o->steps[i], base.rss_kib))
			break;
		/* Let the relay reap the step's connections before the next
		 * one is measured. */
		sleep(1);
	}
	return o->status;
}

/* ---- slow viewer ------------------------------------------------------- */

struct bench_timeline {
	const struct bench_opts *o;
	int64_t t0;
	int64_t at[BENCH_TIMELINE_MAX][2]; /* ms since stall, RSS KiB */
	int n;
};

static void bench_timeline_tick(struct bench_gen *g, void *arg)
{
	struct bench_timeline *tl = arg;
	struct bench_proc p;

	(void)g;
	if (tl->n == BENCH_TIMELINE_MAX || tl->o->pid <= 0 ||
	    bench_proc_read(tl->o->pid, &p))
		return;
	tl->at[tl->n][0] = (bench_mono_us() - tl->t0) / 1000;
	tl->at[tl->n][1] = (int64_t)p.rss_kib;
	tl->n++;
}

/* Session 0 gets a guest, the viewer that will stop reading; its owner's
 * latency is kept apart from the other sessions'. */
static int bench_slow(struct bench_opts *o, struct bench_gen *g)
{
	struct bench_snap a, b;
	struct bench_line ln = { .sessions = g->n, .active = g->n };
	static struct bench_timeline tl;
	double seconds = o->seconds;

	g->s[0].nviews = 2;
	g->s[0].group = 1;
	if (bench_setup(o, g, 30 * 1000000) < g->n)
		return -1;
	bench_gen_start(g);
	bench_gen_run(g, (int64_t)(o->warmup * 1e6), NULL, NULL, 0);
	o->seconds = seconds / 3 < 3 ? seconds / 3 : 3;
	bench_record(o, g, &a, &b, NULL, NULL);
	ln.phase = "baseline";
	ln.a = &a;
	ln.b = &b;
	ln.ok = !g->nfailed;
	bench_emit_gen(o, g, &ln);
	bench_ws_pause(g->s[0].view[1].ws);
	tl.o = o;
	tl.t0 = bench_mono_us();
	o->seconds = seconds;
	bench_record(o, g, &a, &b, bench_timeline_tick, &tl);
	ln.phase = "stalled";
	ln.timeline = (const int64_t(*)[2])tl.at;
	ln.ntimeline = tl.n;
	/* The paused guest may be closed by the relay: that is the relay
	 * doing its job, not a failure of the run. */
	ln.ok = g->nfailed <= 1 && g->rec_msgs > 0;
	bench_emit_gen(o, g, &ln);
	return 0;
}

/* ---- join -------------------------------------------------------------- */

/* Odd sessions never send a keyframe unasked: the relay has none cached
 * when their viewer joins. */
static int bench_join(struct bench_opts *o, struct bench_gen *g)
{
	struct bench_snap a, b;
	struct bench_line ln = { .phase = "join", .sessions = g->n,
				 .active = g->n };
	int64_t until;

	g->key_on_request_now = true;
	for (int i = 0; i < g->n; i++) {
		g->s[i].first_key = i % 2 == 0;
		g->s[i].view[0].join_deferred = true;
	}
	if (bench_setup(o, g, 30 * 1000000) < g->n)
		return -1;
	bench_gen_start(g);
	bench_snap_take(o, &a);
	/* No latency recording: a join replays the cached run since the
	 * keyframe, whose capture times are old by design. */
	bench_gen_run(g, (int64_t)(o->warmup * 1e6), NULL, NULL, 0);
	for (int i = 0; i < g->n; i++) {
		bench_gen_join(g, i);
		bench_gen_run(g, 50000, NULL, NULL, 0);
	}
	until = bench_mono_us() + 5000000;
	while (g->join_warm.count + g->join_cold.count < (uint64_t)g->n &&
	       bench_mono_us() < until)
		bench_gen_run(g, 10000, NULL, NULL, 0);
	bench_snap_take(o, &b);
	ln.a = &a;
	ln.b = &b;
	ln.ok = g->join_warm.count + g->join_cold.count == (uint64_t)g->n;
	ln.why = ln.ok ? NULL : "not every viewer got a keyframe";
	bench_emit_gen(o, g, &ln);
	return 0;
}

/* Runs a mode that uses one generator for the whole run. */
static int bench_with_gen(struct bench_opts *o,
			  int (*body)(struct bench_opts *o, struct bench_gen *g))
{
	struct bench_gen g;

	o->cfg.active = o->cfg.sessions;
	if (bench_gen_create(&g, &o->cfg) || body(o, &g))
		o->status = 2;
	bench_gen_destroy(&g);
	return o->status;
}

/* ---- command line ------------------------------------------------------ */

static void bench_usage(FILE *to)
{
	fprintf(to,
"usage: asp-bench --mode MODE --target TARGET [options]\n"
"\n"
"  --mode M           throughput | latency | scale | slow-viewer | join\n"
"  --target T         relay | node | uws | pipe | direct\n"
"  --port N           port of the relay or of the node or uws peer\n"
"  --tls              wss:// (relay, node, uws)\n"
"  --sessions N       sessions (default: 1 throughput, 100 latency, 10\n"
"                     slow-viewer, 20 join)\n"
"  --viewers N        viewers per session, 1 or 2 (relay, node, uws)\n"
"  --fps F            frames per second per active session (default 30)\n"
"  --size SIZE        payload bytes of a delta frame (K/M suffix; default\n"
"                     16K throughput, 40K latency, 4K scale and join)\n"
"  --window N         throughput: messages in flight per session\n"
"                     (default: 4 MiB worth, 2..256)\n"
"  --key-interval S   seconds between keyframes (default 2)\n"
"  --key-mult M       keyframe size / delta size (default 4)\n"
"  --input-hz H       input events per second per session (default 20)\n"
"  --seconds S        measured time (default 3)\n"
"  --warmup S         unmeasured time first (default 1)\n"
"  --steps LIST       scale: session counts (default 10,100,1000,10000)\n"
"  --fail-p99-ms MS   scale: a step fails above this p99 (default 100)\n"
"  --procs N          throughput, latency, scale: split the sessions over\n"
"                     N generator processes (1..16, default 1), measured\n"
"                     over one window and reported as one line\n"
"  --pid PID          process to sample (the relay or the peer)\n"
"  --metrics-port N   relay's plain HTTP port for /metrics (default:\n"
"                     --port for a plain relay target)\n"
"  --out FILE         JSON lines appended here (default\n"
"                     build/bench/results.jsonl)\n"
"  --label TEXT       copied into each JSON line\n"
"  --data DIR         the relay's data directory: sign-in tokens are minted\n"
"                     from its secret, and (plain relay) user \"bench\" is\n"
"                     given the collaboration permission\n");
}

static int bench_parse_size(const char *s, size_t *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -1;
	if (*end == 'K' || *end == 'k')
		v *= 1024, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1024 * 1024, end++;
	if (*end || v > BENCH_WS_BODY_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int bench_parse_steps(const char *s, struct bench_opts *o)
{
	o->nsteps = 0;
	for (const char *p = s; *p;) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || v < 1 || v > 50000 || o->nsteps == 16)
			return -1;
		o->steps[o->nsteps++] = (int)v;
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return o->nsteps ? 0 : -1;
}

static int bench_lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

/* Mode-dependent defaults for what the command line left at -1. */
static void bench_defaults(struct bench_opts *o)
{
	struct bench_cfg *c = &o->cfg;
	static const int sessions[] = { 1, 100, 10, 10, 20 };
	static const size_t sizes[] = { 16384, 40960, 4096, 40960, 4096 };

	if (c->sessions < 0)
		c->sessions = sessions[o->mode];
	if (c->size == (size_t)-1)
		c->size = sizes[o->mode];
	if (c->active < 0)
		c->active = c->sessions;
	if (o->mode == BENCH_M_THROUGHPUT && c->window <= 0) {
		size_t w = (4u << 20) / (c->size + 32);

		c->window = w < 2 ? 2 : w > 256 ? 256 : (int)w;
	}
	if (o->mode != BENCH_M_THROUGHPUT)
		c->window = 0;
	if (o->mode == BENCH_M_THROUGHPUT) {
		/* Every message the same size: the sizes are the variable. */
		c->input_hz = 0;
		c->key_mult = 1;
	}
	c->jitter = o->mode == BENCH_M_LATENCY || o->mode == BENCH_M_SCALE ||
		    o->mode == BENCH_M_SLOW;
	if (o->mode == BENCH_M_JOIN) {
		c->key_interval = 0;
		c->key_mult = 16;
		c->input_hz = 0;
	}
	if (o->metrics_port < 0)
		o->metrics_port = c->target == BENCH_T_RELAY && !c->tls ? c->port
									  : 0;
}

static const struct option bench_long_opts[] = {
	{ "mode", required_argument, NULL, 'M' },
	{ "target", required_argument, NULL, 'T' },
	{ "port", required_argument, NULL, 'p' },
	{ "tls", no_argument, NULL, 't' },
	{ "sessions", required_argument, NULL, 'n' },
	{ "viewers", required_argument, NULL, 'v' },
	{ "fps", required_argument, NULL, 'f' },
	{ "size", required_argument, NULL, 's' },
	{ "window", required_argument, NULL, 'w' },
	{ "key-interval", required_argument, NULL, 'k' },
	{ "key-mult", required_argument, NULL, 'K' },
	{ "input-hz", required_argument, NULL, 'i' },
	{ "seconds", required_argument, NULL, 'S' },
	{ "warmup", required_argument, NULL, 'W' },
	{ "steps", required_argument, NULL, 'x' },
	{ "fail-p99-ms", required_argument, NULL, 'F' },
	{ "procs", required_argument, NULL, 'j' },
	{ "pid", required_argument, NULL, 'P' },
	{ "metrics-port", required_argument, NULL, 'm' },
	{ "out", required_argument, NULL, 'o' },
	{ "label", required_argument, NULL, 'l' },
	{ "data", required_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};


static int bench_parse_opt(struct bench_opts *o, int c, const char *arg)
{
	struct bench_cfg *cfg = &o->cfg;
	int v;

	switch (c) {
	case 'M':
		v = bench_lookup(arg, bench_mode_names, 5);
		o->mode = (enum bench_mode)v;
		return v < 0 ? -1 : 0;
	case 'T':
		for (v = 0; v < BENCH_T_COUNT; v++)
			if (!strcmp(arg, bench_target_name(v)))
				break;
		cfg->target = (enum bench_target)v;
		return v < BENCH_T_COUNT ? 0 : -1;
	case 'p': cfg->port = atoi(arg); return cfg->port > 0 ? 0 : -1;
	case 't': cfg->tls = true; return 0;
	case 'n': cfg->sessions = atoi(arg); return cfg->sessions > 0 ? 0 : -1;
	case 'v':
		cfg->viewers = atoi(arg);
		return cfg->viewers == 1 || cfg->viewers == 2 ? 0 : -1;
	case 'f': cfg->fps = atof(arg); return cfg->fps > 0 ? 0 : -1;
	case 's': return bench_parse_size(arg, &cfg->size);
	case 'w': cfg->window = atoi(arg); return cfg->window > 0 ? 0 : -1;
	case 'k': cfg->key_interval = atof(arg); return 0;
	case 'K': cfg->key_mult = atof(arg); return cfg->key_mult > 0 ? 0 : -1;
	case 'i': cfg->input_hz = atof(arg); return cfg->input_hz >= 0 ? 0 : -1;
	case 'S': o->seconds = atof(arg); return o->seconds > 0 ? 0 : -1;
	case 'W': o->warmup = atof(arg); return o->warmup >= 0 ? 0 : -1;
	case 'x': return bench_parse_steps(arg, o);
	case 'F': o->fail_p99_ms = atof(arg); return o->fail_p99_ms > 0 ? 0 : -1;
	case 'j':
		o->procs = atoi(arg);
		return o->procs >= 1 && o->procs <= BENCH_PROCS_MAX ? 0 : -1;
	case 'P': o->pid = (pid_t)atoi(arg); return 0;
	case 'm': o->metrics_port = atoi(arg); return 0;
	case 'o': o->out = arg; return 0;
	case 'l': o->label = arg; return 0;
	case 'd': cfg->data_dir = arg; return 0;
	case 'h': bench_usage(stdout); exit(0);
	default: return -1;
	}
}

static int bench_parse_args(int argc, char **argv, struct bench_opts *o)
{
	bool have_mode = false, have_target = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", bench_long_opts, NULL)) != -1) {
		have_mode |= c == 'M';
		have_target |= c == 'T';
		if (bench_parse_opt(o, c, optarg)) {
			if (optarg)
				fprintf(stderr, "asp-bench: bad value '%s'\n",
					optarg);
			bench_usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !have_mode || !have_target) {
		bench_usage(stderr);
		return -1;
	}
	if (o->cfg.target < BENCH_T_PIPE && !o->cfg.port) {
		fprintf(stderr, "asp-bench: --port is needed for %s\n",
			bench_target_name(o->cfg.target));
		return -1;
	}
	if (o->procs > 1 && o->mode != BENCH_M_THROUGHPUT &&
	    o->mode != BENCH_M_LATENCY && o->mode != BENCH_M_SCALE) {
		fprintf(stderr, "asp-bench: --procs splits throughput, latency "
				"and scale runs only\n");
		return -1;
	}
	if (o->cfg.target >= BENCH_T_PIPE &&
	    (o->cfg.viewers != 1 || o->cfg.tls || o->mode == BENCH_M_SLOW ||
	     o->mode == BENCH_M_JOIN)) {
		fprintf(stderr, "asp-bench: pipe and direct have one plain "
				"viewer and no relay logic (no slow-viewer, no "
				"join)\n");
		return -1;
	}
	bench_defaults(o);
	return 0;
}

static void bench_opts_init(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cfg.sessions = -1;
	o->cfg.active = -1;
	o->cfg.viewers = 1;
	o->cfg.fps = 30;
	o->cfg.size = (size_t)-1;
	o->cfg.key_interval = 2;
	o->cfg.key_mult = 4;
	o->cfg.input_hz = 20;
	o->cfg.max_connecting = 256;
	o->seconds = 3;
	o->warmup = 1;
	o->steps[0] = 10;
	o->steps[1] = 100;
	o->steps[2] = 1000;
	o->steps[3] = 10000;
	o->nsteps = 4;
	o->fail_p99_ms = 100;
	o->fail_loss = 0.01;
	o->procs = 1;
	o->metrics_port = -1;
	o->label = "";
	o->out = "build/bench/results.jsonl";
}

static int bench_open_out(struct bench_opts *o)
{
	if (!strcmp(o->out, "build/bench/results.jsonl")) {
		mkdir("build", 0755);
		mkdir("build/bench", 0755);
	}
	o->jf = fopen(o->out, "a");
	if (!o->jf) {
		fprintf(stderr, "asp-bench: %s: %s\n", o->out, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench_opts o;
	int most = 0, rc;

	bench_opts_init(&o);
	if (bench_parse_args(argc, argv, &o) || bench_open_out(&o))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	srand48((long)getpid() ^ (long)bench_wall_us());
	for (int i = 0; o.mode == BENCH_M_SCALE && i < o.nsteps; i++)
		most = o.steps[i] > most ? o.steps[i] : most;
	if (o.cfg.sessions > most)
		most = o.cfg.sessions;
	most = (most + o.procs - 1) / o.procs;
	/* Each session holds up to three sockets here (and the direct
	 * server side one more); each generator process holds its share. */
	if ((rc = bench_raise_nofile((uint64_t)most * 4 + 1024)))
		fprintf(stderr, "asp-bench: fd limit below %d: %s\n",
			most * 4 + 1024, strerror(-rc));
	switch (o.mode) {
	case BENCH_M_SCALE: rc = bench_scale(&o); break;
	case BENCH_M_SLOW: rc = bench_with_gen(&o, bench_slow); break;
	case BENCH_M_JOIN: rc = bench_with_gen(&o, bench_join); break;
	default: rc = bench_steady(&o); break;
	}
	fclose(o.jf);
	return rc;
}
