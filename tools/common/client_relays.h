/*
 * client_relays: which relay a client tool connects to next.
 *
 * asp-host and asp-view take a list of relays (--relay URL[,URL...]) and
 * follow a cluster's redirects (docs/cluster.md, "Clients").  This module
 * holds the list and decides, after each connection, where the next one
 * goes and when:
 *
 *  - The first attempt goes to the first relay of the list.
 *  - A relay that cannot be reached, closes before the session (a host's
 *    welcome, a viewer's joined) or refuses with `unavailable` is a failed
 *    attempt: the next relay of the list (round robin) is tried after the
 *    backoff, 0.25 s doubling up to 5 s, each delay drawn from its upper
 *    half so that clients lost together do not come back in lockstep.
 *  - `redirect` names the node that holds the desktop: the client connects
 *    there at once, at most CLIENT_REDIRECT_HOPS times in a row without
 *    reaching a session; one more is a loop, and a failed attempt.  A
 *    redirect URL that is not ws[s]://HOST[:PORT] is a failed attempt too.
 *  - A lost session starts again from the next relay of the list, not from
 *    the node a redirect led to (that node is likely the one that died).
 *  - Until a session is reached the list is tried once round (then the
 *    client gives up with the last attempt's outcome); once one was
 *    reached, attempts go on until the tool stops them, unless reconnect
 *    is off (--no-reconnect): then a lost session is the end.
 *  - Refusals are final, except `redirect` and `unavailable`, and, for a
 *    client that has reached a session before (it is coming back after a
 *    loss), `offline` (the host has not taken its desktop back yet),
 *    `slow`, `internal` and `hello_timeout`, which say nothing about the
 *    next attempt.
 *
 * The module prints the event lines (redirected: URL, reconnecting in N ms:
 * WHY, next-relay: URL, reconnected) and its own verdicts on stderr; the
 * tool owns the connection and calls in from its error handler, its
 * session event and its on_closed.  Not thread-safe, like client.h.
 */
#ifndef ASP_CLIENT_RELAYS_H
#define ASP_CLIENT_RELAYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_ctrl.h"
#include "tools/common/client.h"
#include "tools/common/client_cli.h"

/* Relays in one --relay list. */
#define CLIENT_RELAYS_MAX 16
/* Bytes in one relay URL, its NUL included: the protocol's bound on a
 * string field (256), so every URL a relay can send fits. */
#define CLIENT_URL_MAX 256
/* Redirects followed in a row without reaching a session. */
#define CLIENT_REDIRECT_HOPS 4
#define CLIENT_RETRY_FIRST_US (250 * 1000)
#define CLIENT_RETRY_CAP_US (5 * 1000 * 1000)

struct client_relays {
	char list[CLIENT_RELAYS_MAX][CLIENT_URL_MAX];
	size_t n;
	size_t at;                     /* the list relay this chain began at */
	char target[CLIENT_URL_MAX];   /* where the current attempt goes */
	char redirect[CLIENT_URL_MAX]; /* to follow on close; "" if none */
	char why[320];    /* our verdict on this attempt (a loop, a bad
			   * redirect); "" if none */
	unsigned hops;    /* redirects followed without a session */
	unsigned failed;  /* list relays failed before the first session */
	unsigned retries; /* failed attempts since the last session */
	bool reconnect;   /* go on after a lost session */
	bool in_session;  /* the current connection reached its session */
	bool had_session; /* one was reached at least once */
	bool lost;        /* a session was lost and is not back yet */
};

/* Splits list ("URL[,URL...]", at most CLIENT_RELAYS_MAX) into r and
 * points the first attempt at its first URL.  0, or -EINVAL with a
 * sentence in why (a URL that client_relays_check_url refuses, too many,
 * an empty entry). */
int client_relays_init(struct client_relays *r, const char *list,
		       bool reconnect, char *why, size_t why_len);

/* Whether url may be connected to: ws:// or wss:// (and, unless redirect,
 * http:// or https:// as --relay always took), a host name or an [IPv6]
 * literal, an optional port 1-65535; a --relay URL may go on with a path
 * of A-Z a-z 0-9 / . _ ~ % -, a redirect's ends there (or with one "/").
 * Shorter than CLIENT_URL_MAX.  0, or -EINVAL with a sentence in why that
 * quotes url with anything unprintable shown as '?'. */
int client_relays_check_url(const char *url, bool redirect, char *why,
			    size_t why_len);

/* An error message m from the relay; before_session: it answers our hello
 * or join.  true if it sends the client elsewhere: a redirect (kept to
 * follow when the connection closes, or judged a loop or a bad URL, said
 * on stderr), `unavailable`, or a refusal worth retrying on a rejoin (see
 * above; its message is printed on stderr).  Its code is then recorded in
 * *ref, not as fatal, and the tool closes the connection.  false: the
 * error is the tool's to handle as any other. */
bool client_relays_on_error(struct client_relays *r,
			    const struct proto_ctrl *m,
			    struct client_refusal *ref, bool before_session);

/* The current connection reached its session (welcome, joined): prints
 * `reconnected` if it comes back after a loss; resets the backoff and the
 * redirect count. */
void client_relays_session(struct client_relays *r);

/* From the tool's on_closed, unless the tool is stopping anyway (asked to
 * leave, a signal): follows a pending redirect at once, or schedules the
 * next relay of the list after the backoff, printing what it does, and
 * clears *ref for the new attempt.  0 if an attempt is scheduled; -1 if
 * the client is done (a final refusal, the first round failed, a lost
 * session without reconnect), *ref then kept for the exit status: a
 * refusal the client meant to try elsewhere is marked fatal, since it is
 * the outcome now. */
int client_relays_on_closed(struct client_relays *r, struct client *c,
			    struct client_refusal *ref);

/* The exit status once client_run has returned: 0 for a client told to
 * leave on its way elsewhere (waiting for its relay to come back, or
 * between a redirect or a refusal worth another attempt and the next
 * attempt); CLIENT_EXIT_CONNECT
 * (with "cannot connect: WHY" on stderr) if our own verdict ended it (a
 * redirect loop, a bad redirect); else client_exit_status(). */
int client_relays_exit_status(const struct client_relays *r,
			      const struct client_close_info *ci,
			      const struct client_refusal *ref, bool left);

#endif
