/*
 * client_cli: what asp-host and asp-view share as command-line programs.
 *
 * Exit statuses (the tests rely on them), one-line output that is flushed
 * at once (tests read stdout through a pipe), SIGINT/SIGTERM turned into a
 * flag the event loop polls, stdin commands read without blocking the
 * loop, and the printing of relay notifications and errors.
 */
#ifndef ASP_CLIENT_CLI_H
#define ASP_CLIENT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_ctrl.h"
#include "tools/common/client.h"

enum client_exit {
	CLIENT_EXIT_OK = 0,
	CLIENT_EXIT_FAIL = 1,      /* usage, local failure, unexpected close */
	CLIENT_EXIT_VERIFY = 2,    /* received media failed verification */
	CLIENT_EXIT_REFUSED = 3,   /* the relay refused us */
	CLIENT_EXIT_VERSION = 4,   /* refused: bad_version */
	CLIENT_EXIT_CONNECT = 5,   /* cannot connect */
	CLIENT_EXIT_TIMEOUT = 6,   /* --seconds ran out before the goal */
};

/* Prints one line to stdout and flushes it. */
void client_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock (CLOCK_REALTIME, what capture times use) and monotonic
 * clock, in microseconds. */
int64_t client_wall_us(void);
int64_t client_mono_us(void);

/* Installs SIGINT/SIGTERM handlers that only record the signal, and
 * ignores SIGPIPE.  client_signalled() is the signal number or 0. */
void client_signals_install(void);
int client_signalled(void);

/* Commands on stdin, one per line, read without blocking: poll it from a
 * timer.  Stdin may be a terminal, a pipe, /dev/null or closed. */
struct client_stdin {
	char buf[1024];
	size_t len;
	bool done; /* EOF or error: stop polling */
};
void client_stdin_init(struct client_stdin *in);
/* Reads what is available and calls line() for each complete line
 * (without its newline, trailing spaces trimmed). */
void client_stdin_poll(struct client_stdin *in,
		       void (*line)(const char *text, void *arg), void *arg);

/* Tracks the relay's refusals to compute the exit status. */
struct client_refusal {
	char code[64];       /* machine code of the last error, "" if none */
	bool fatal;          /* it refused what we came for (hello, join) */
};

/* Prints a relay `error` message's text verbatim on stderr and records its
 * code; fatal says it refused what we came for (an error before welcome
 * or joined), so the caller gives up even if the relay keeps the
 * connection open. */
void client_print_error(const struct proto_ctrl *m, struct client_refusal *r,
			bool fatal);
/* Prints `notify: EVENT MESSAGE (NAME)` on stdout. */
void client_print_notify(const struct proto_ctrl *m);

/* The exit status for how the connection ended: CLIENT_EXIT_CONNECT if
 * it never opened, REFUSED/VERSION if the relay refused us (by its error
 * message or its close code), OK if we closed it or asked to leave (left:
 * the relay then closes), FAIL otherwise.  Prints a line on stderr saying
 * why when it is not OK. */
int client_exit_status(const struct client_close_info *ci,
		       const struct client_refusal *r, bool left);

/* Queues a control message built by proto_ctrl_build (json may be NULL:
 * out of memory) and frees it.  A failure is said on stderr. */
void client_send_json(struct client *c, char *json, int flags);

/* proto_ctrl_parse of a message from the relay; on failure says so on
 * stderr (the message is then ignored) and returns -1. */
int client_parse_relay(const char *text, size_t len, enum proto_dir dir,
		       struct proto_ctrl *m);

/* client_create, saying why on stderr when it fails. */
int client_open(struct client **c, const struct client_config *cfg);

/* Parses a number option; false (and a message) if bad. */
bool client_parse_num(const char *opt, const char *s, double min, double max,
		      double *out);

/* The numeric options of a tool, as a table: getopt_long returns
 * CLIENT_NUM_OPT + the row's index for them. */
#define CLIENT_NUM_OPT 1024
struct client_num_opt {
	const char *name;   /* without the dashes */
	double min, max;
	size_t offset;      /* of the double in the tool's options struct */
};

/* Parses arg for option opt (CLIENT_NUM_OPT + row) into opts.  false
 * (and a message) if opt is not in the table or arg is out of range. */
bool client_num_opt_parse(const struct client_num_opt *table, size_t rows,
			  int opt, const char *arg, void *opts);

#endif
