/*
 * relay_guard: the relay's defences against hostile and careless peers.
 *
 * Everything here bounds what a peer can cost or try before the session
 * rules see it: display names made safe to show and to put in JSON,
 * sign-in tokens held to a maximum lifetime and a clock-skew allowance,
 * failed joins limited per user and per address (a burst, then a
 * cool-down), and the operator's connection limits (connections per
 * address before hello, connections per user, desktops per token).  It
 * also counts control messages the relay failed to build, so that such
 * a failure is logged and counted instead of vanishing.
 *
 * The counts live in string-keyed maps (relay_map) whose values are
 * small heap entries; an entry exists only while it counts something,
 * and rate-limit entries are pruned once their window is over.  All of
 * it runs on the relay's one thread.
 */
#ifndef ASP_RELAY_GUARD_H
#define ASP_RELAY_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/relay_map.h"

struct relay;
struct relay_conn;
struct proto_claims;

/* Longest peer address kept (an IPv6 address in text). */
#define RELAY_GUARD_ADDR_MAX 64
/* Longest token key kept (the signature part of a token). */
#define RELAY_GUARD_TOKEN_KEY_MAX 48

struct relay_guard {
	struct relay_map prehello;   /* address -> connections before hello */
	struct relay_map user_conns; /* user -> signed-in connections */
	struct relay_map token_desktops; /* token key -> joined sessions */
	struct relay_map fail_user; /* user -> failed joins in the window */
	struct relay_map fail_addr; /* address -> failed joins */
};

/* What a connection holds in the guard's counts, so that it gives back
 * exactly what it took. */
struct relay_guard_hold {
	char addr[RELAY_GUARD_ADDR_MAX];
	char token_key[RELAY_GUARD_TOKEN_KEY_MAX];
	bool prehello; /* counted in prehello under addr */
	bool user;     /* counted in user_conns under who.user */
	bool token;    /* counted in token_desktops under token_key */
};

void relay_guard_init(struct relay_guard *g);
void relay_guard_free(struct relay_guard *g);

/* Copies a peer-chosen display name into dst (cap bytes with the NUL):
 * invalid UTF-8 becomes U+FFFD, C0 and C1 controls, DEL and the bidi
 * overrides and isolates are dropped, and the result is cut at a
 * character boundary so it stays valid UTF-8.  Returns the length. */
size_t relay_guard_name(char *dst, size_t cap, const char *src);

/* Checks a verified token's times against the relay's clock: iat no
 * later than now + --token-skew, exp - iat at most --max-token-life.
 * 0, or -PROTO_E_UNAUTHORIZED with a sentence in why. */
int relay_guard_token_times(const struct relay *r,
			    const struct proto_claims *who, char *why,
			    size_t why_len);

/* A new connection from addr: counted before hello; -PROTO_E_TOO_MANY
 * when addr already has --max-prehello-per-addr connections waiting. */
int relay_guard_open(struct relay *r, struct relay_conn *c);

/* Before a hello takes effect: -PROTO_E_TOO_MANY when the token's user
 * already has --max-user-conns connections. */
int relay_guard_user_check(struct relay *r, const struct relay_conn *c);

/* The hello was accepted: c stops counting as waiting and starts
 * counting for its user; token is the hello's token. */
void relay_guard_hello_done(struct relay *r, struct relay_conn *c,
			    const char *token);

/* Before a viewer joins a session: -PROTO_E_TOO_MANY when its token is
 * already joined to --max-token-desktops sessions; -PROTO_E_RATE_LIMITED
 * with *retry_after_s when its user or address failed too often. */
int relay_guard_join_check(struct relay *r, const struct relay_conn *c,
			   int64_t *retry_after_s);

/* The viewer joined: counted for its token. */
void relay_guard_joined(struct relay *r, struct relay_conn *c);

/* A join failed (a wrong code, owner key or assistance id): counted
 * for the user and the address; audited when a limit trips. */
void relay_guard_join_failed(struct relay *r, const struct relay_conn *c);

/* The connection is gone: gives back everything it held. */
void relay_guard_close(struct relay *r, struct relay_conn *c);

/* Once a second: drops rate-limit windows that are over. */
void relay_guard_tick(struct relay *r);

#endif
