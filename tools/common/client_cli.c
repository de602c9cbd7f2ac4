/*
 * client_cli: exit statuses, flushed output, signals and stdin commands
 * for the client tools (see client_cli.h).
 */
#include "tools/common/client_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "protocol/proto_error.h"

static volatile sig_atomic_t client_signal_seen;

void client_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static int64_t client_clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t client_wall_us(void)
{
	return client_clock_us(CLOCK_REALTIME);
}

int64_t client_mono_us(void)
{
	return client_clock_us(CLOCK_MONOTONIC);
}

static void client_on_signal(int sig)
{
	client_signal_seen = sig;
}

void client_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = client_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int client_signalled(void)
{
	return client_signal_seen;
}

void client_stdin_init(struct client_stdin *in)
{
	memset(in, 0, sizeof(*in));
	/* With fd 0 closed, the next socket lws opens would become "stdin"
	 * and we would read the relay's bytes as commands. */
	if (fcntl(0, F_GETFD) < 0 && errno == EBADF) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd > 0) {
			dup2(fd, 0);
			close(fd);
		}
		in->done = true;
	}
}

static void client_stdin_lines(struct client_stdin *in,
			       void (*line)(const char *text, void *arg),
			       void *arg)
{
	char *nl;

	while ((nl = memchr(in->buf, '\n', in->len))) {
		size_t n = (size_t)(nl - in->buf), rest;
		char *end = nl;

		while (end > in->buf && (end[-1] == ' ' || end[-1] == '\r' ||
					 end[-1] == '\t'))
			end--;
		*end = '\0';
		line(in->buf, arg);
		rest = in->len - n - 1;
		memmove(in->buf, nl + 1, rest);
		in->len = rest;
	}
}

void client_stdin_poll(struct client_stdin *in,
		       void (*line)(const char *text, void *arg), void *arg)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	ssize_t n;

	/* poll() first so the read never blocks without touching the
	 * O_NONBLOCK flag the terminal shares with the shell. */
	while (!in->done && poll(&p, 1, 0) == 1) {
		if (p.revents & POLLNVAL) {
			in->done = true;
			break;
		}
		n = read(0, in->buf + in->len, sizeof(in->buf) - 1 - in->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			break;
		if (n <= 0) {
			in->done = true;
			/* A last line without its newline still counts. */
			if (in->len) {
				in->buf[in->len++] = '\n';
				client_stdin_lines(in, line, arg);
			}
			break;
		}
		in->len += (size_t)n;
		client_stdin_lines(in, line, arg);
		/* A line longer than the buffer is not a command. */
		if (in->len == sizeof(in->buf) - 1)
			in->len = 0;
	}
}

void client_print_error(const struct proto_ctrl *m, struct client_refusal *r,
			bool fatal)
{
	const char *code = proto_ctrl_str(m, "code");
	const char *msg = proto_ctrl_str(m, "message");

	fprintf(stderr, "%s\n", msg ? msg : "(the relay sent no message)");
	fflush(stderr);
	snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
	r->fatal = r->fatal || fatal;
}

void client_print_notify(const struct proto_ctrl *m)
{
	const char *event = proto_ctrl_str(m, "event");
	const char *msg = proto_ctrl_str(m, "message");
	const char *name = proto_ctrl_str(m, "name");

	if (name && *name)
		client_say("notify: %s %s (%s)", event ? event : "?",
			   msg ? msg : "", name);
	else
		client_say("notify: %s %s", event ? event : "?",
			   msg ? msg : "");
}

/* Only a version below the gate exits 4: an unsupported OS or client is
 * a refusal like any other (tests/e2e/gates.test.mjs pins both). */
static int client_exit_refused(const char *code)
{
	return !strcmp(code, "bad_version") ? CLIENT_EXIT_VERSION
					    : CLIENT_EXIT_REFUSED;
}

int client_exit_status(const struct client_close_info *ci,
		       const struct client_refusal *r, bool left)
{
	const struct proto_err_info *e;

	if (!ci->established && (ci->we_closed || left)) {
		fprintf(stderr, "interrupted before the connection opened\n");
		return CLIENT_EXIT_FAIL;
	}
	if (!ci->established) {
		fprintf(stderr, "cannot connect: %s\n", ci->connect_error);
		return CLIENT_EXIT_CONNECT;
	}
	if (r->fatal)
		return client_exit_refused(r->code);
	if (ci->peer_code >= 4000 && ci->peer_code <= 4999) {
		/* The close reason is the machine code; the error message
		 * before it says the same and has been printed already. */
		if (*r->code)
			return client_exit_refused(r->code);
		e = proto_err_by_code(ci->peer_reason);
		fprintf(stderr, "closed by the relay: %d %s\n", ci->peer_code,
			e ? e->message : ci->peer_reason);
		return client_exit_refused(ci->peer_reason);
	}
	if (ci->we_closed || left)
		return CLIENT_EXIT_OK;
	fprintf(stderr, "connection closed by the relay (%d%s%s)\n",
		ci->peer_code, *ci->peer_reason ? " " : "", ci->peer_reason);
	return CLIENT_EXIT_FAIL;
}

void client_send_json(struct client *c, char *json, int flags)
{
	if (!json) {
		fprintf(stderr, "%s: out of memory\n",
			program_invocation_short_name);
		return;
	}
	if (client_send_text(c, json, flags))
		fprintf(stderr, "%s: not connected: %s not sent\n",
			program_invocation_short_name, json);
	free(json);
}

int client_parse_relay(const char *text, size_t len, enum proto_dir dir,
		       struct proto_ctrl *m)
{
	char why[256];

	if (!proto_ctrl_parse(text, len, dir, m, why, sizeof(why)))
		return 0;
	fprintf(stderr, "%s: cannot parse %.*s: %s\n",
		program_invocation_short_name, (int)(len > 200 ? 200 : len),
		text, why);
	return -1;
}

int client_open(struct client **c, const struct client_config *cfg)
{
	char why[300];

	if (!client_create(c, cfg, why, sizeof(why)))
		return 0;
	fprintf(stderr, "%s: %s\n", program_invocation_short_name, why);
	return -1;
}

bool client_parse_num(const char *opt, const char *s, double min, double max,
		      double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s: '%s' is not a number from %g to %g\n",
			opt, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

bool client_num_opt_parse(const struct client_num_opt *table, size_t rows,
			  int opt, const char *arg, void *opts)
{
	const struct client_num_opt *row;
	char name[64];

	if (opt < CLIENT_NUM_OPT || (size_t)(opt - CLIENT_NUM_OPT) >= rows)
		return false;
	row = &table[opt - CLIENT_NUM_OPT];
	snprintf(name, sizeof(name), "--%s", row->name);
	return client_parse_num(name, arg, row->min, row->max,
				(double *)((char *)opts + row->offset));
}
