/*
 * relay_config: the relay's settings, from the command line and a file.
 *
 * Every setting is one long flag (--queue-bytes 16M) and the same name as
 * a key in the file --config names (queue-bytes = 16M), parsed by Debian's
 * libinih.  The file is read first and flags override it, so a service
 * keeps its settings in /etc/asp-relay/asp-relay.conf and a person can
 * still try one change on the command line.  Loading is a pure function
 * of (argv, the file): the relay calls it again on SIGHUP to reload, with
 * the same argv, and keeps its old settings if the new ones are bad.
 */
#ifndef ASP_RELAY_CONFIG_H
#define ASP_RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The version /metrics and --version report (the Makefile sets it). */
extern const char relay_version[];
extern const char relay_revision[];

struct relay_config {
	char listen_host[64];
	int listen_port;
	char *data_dir;           /* owned, as are the strings below */
	char *tls_cert;           /* NULL: plain ws:// and http:// */
	char *tls_key;
	char *web_dir;
	char *config_path;        /* NULL: no --config */
	size_t max_message;       /* largest media message accepted */
	size_t queue_bytes;       /* per-viewer queue bound */
	uint32_t queue_msgs;      /* per-viewer queue bound */
	size_t gop_bytes;         /* keyframe cache bound per session */
	int stall_secs;           /* close a viewer making no progress */
	int keepalive_secs;       /* drop a peer silent this long */
	uint32_t keyframe_gap_ms; /* least time between keyframe requests */
	bool test_clock;          /* allow PUT /api/clock (tests only) */
	int retain_assist_days;   /* keep finished requests; 0: forever */
	int retain_audit_days;    /* keep audit events; 0: forever */
	bool log_json;            /* --log-format json */
	uint32_t gop_frames;      /* keyframe cache bound in messages */
	int hello_timeout_s;      /* close a connection silent before hello */
	size_t max_prehello_per_addr; /* connections waiting for hello */
	size_t max_user_conns;    /* signed-in connections per user */
	size_t max_token_desktops; /* sessions one viewer token joins */
	uint32_t join_fail_user;  /* failed joins per user per window */
	uint32_t join_fail_addr;  /* failed joins per address per window */
	int join_cooldown_s;      /* the failed-join window */
	int max_token_life_s;     /* longest exp - iat accepted */
	int token_skew_s;         /* how far iat may be ahead of the clock */
	char *metrics_token;      /* Bearer token /metrics needs, or NULL */
	bool check_only;          /* --check: load, report, exit */
	/* The cluster (docs/cluster.md); redis NULL: one relay alone. */
	char *redis;              /* redis://HOST:PORT[/DB] */
	char *node_url;           /* NULL: derived from --listen */
	char *node_id;            /* NULL: drawn at start */
	uint32_t lease_ms;
	uint32_t redis_timeout_ms;

	/* The command line, borrowed from main() for reloads. */
	int argc;
	char **argv;
};

enum {
	RELAY_CONFIG_RUN = 0,    /* loaded: run the relay */
	RELAY_CONFIG_EXIT = 1,   /* --help or --version printed: exit 0 */
	RELAY_CONFIG_ERROR = -1, /* refused: why says what and where */
};

/*
 * Loads the settings: the defaults, then the --config file if argv names
 * one, then every other flag in argv.  argv must outlive cfg (reloads use
 * it again).  Returns RELAY_CONFIG_RUN, RELAY_CONFIG_EXIT after printing
 * --help or --version on stdout, or RELAY_CONFIG_ERROR with one line in
 * why naming the flag, or the file and line, and the value refused; cfg
 * then holds nothing to free.  On success free cfg with
 * relay_config_free().
 */
int relay_config_load(struct relay_config *cfg, int argc, char **argv,
		      char *why, size_t whylen);

/* Frees the strings cfg owns; cfg is then empty. */
void relay_config_free(struct relay_config *cfg);

/* The --help text. */
void relay_config_usage(FILE *to);

#endif
