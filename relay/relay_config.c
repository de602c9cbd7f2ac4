/*
 * relay_config: flags and the --config file, one table for both.
 *
 * Each row of RELAY_OPTS is a setting: its name (the long flag and the
 * file's key), whether it takes a value, and the setter that checks and
 * stores the value.  getopt_long reads the command line twice: once to
 * find --config (and --help, --version), then, after the file, to apply
 * every other flag over it.  The file goes through libinih with a line
 * reader of our own, so each refusal can name its line.
 *
 * The default web directory is found at run time next to the binary, so
 * no path is compiled in: <bindir>/../share/asp-relay/www when installed
 * (FHS, and still right after the tree moves), or <builddir>/www in the
 * build tree, a symlink the Makefile makes to relay/www.
 */
#include "relay/relay_config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "protocol/proto_media.h"
#include "relay/relay_alloc.h"

#ifndef ASP_VERSION
#define ASP_VERSION "unknown"
#endif
#ifndef ASP_REVISION
#define ASP_REVISION "unknown"
#endif

const char relay_version[] = ASP_VERSION;
const char relay_revision[] = ASP_REVISION;

void relay_config_usage(FILE *to)
{
	fprintf(to,
"usage: asp-relay [--config FILE] [options]\n"
"\n"
"Relays a cloud desktop's media to its owner's viewer and one guest.\n"
"\n"
"  --config FILE        read settings from FILE first (KEY = VALUE, one key\n"
"                       per option below, without the dashes); options given\n"
"                       here override it.  SIGHUP reads it again.\n"
"  --listen HOST:PORT   where to listen (default 127.0.0.1:8080; port 0 picks\n"
"                       a free port, printed in the 'listening on' line)\n"
"  --data DIR           data directory, created if missing (default ./var)\n"
"  --tls-cert FILE      PEM certificate: serve wss:// and https://\n"
"  --tls-key FILE       PEM private key for --tls-cert\n"
"  --web DIR            directory of the web page (default: www next to the\n"
"                       binary in the build tree, else ../share/asp-relay/www\n"
"                       from the binary's directory)\n"
"  --max-message SIZE   largest media message accepted (default 4M)\n"
"  --queue-bytes SIZE   per-viewer send queue bound (default 16M)\n"
"  --queue-msgs N       per-viewer send queue bound in messages (default 1024)\n"
"  --gop-bytes SIZE     keyframe cache bound per session, in real memory\n"
"                       (default 8M)\n"
"  --gop-frames N       keyframe cache bound per session in messages\n"
"                       (default 1024)\n"
"  --stall-timeout S    close a viewer that reads nothing for S seconds while\n"
"                       data waits for it (default 30)\n"
"  --keepalive S        drop a peer that sends nothing (not even a pong) for\n"
"                       S seconds; it is pinged after two thirds of that\n"
"                       (default 30)\n"
"  --keyframe-gap MS    least time between keyframe requests to a host\n"
"                       (default 1000)\n"
"  --hello-timeout S    close a connection that has not said hello within S\n"
"                       seconds (default 5)\n"
"  --max-prehello-per-addr N  connections from one address waiting for\n"
"                       hello (default 512; 0: no limit)\n"
"  --max-user-conns N   connections signed in as one user (default 64;\n"
"                       0: no limit)\n"
"  --max-token-desktops N  sessions one viewer token may be joined to at\n"
"                       once (default 16; 0: no limit)\n"
"  --join-failures N    failed joins per user before a cool-down (default 10;\n"
"                       0: no limit)\n"
"  --join-failures-addr N  failed joins per address before a cool-down\n"
"                       (default 100; 0: no limit)\n"
"  --join-cooldown S    the window failed joins are counted in (default 60)\n"
"  --max-token-life S   longest token lifetime (exp - iat) accepted\n"
"                       (default 2592000, 30 days)\n"
"  --token-skew S       how far a token's iat may be ahead of the relay's\n"
"                       clock (default 300)\n"
"  --metrics-token-file FILE  /metrics needs 'Authorization: Bearer T' with\n"
"                       T the first line of FILE (default: open)\n"
"  --retain-assist DAYS keep finished assistance requests DAYS days (default\n"
"                       30; 0 keeps them forever)\n"
"  --retain-audit DAYS  keep audit events DAYS days (default 0: forever)\n"
"  --log-format FORMAT  text (default): one line per event; json: one JSON\n"
"                       object per line with the same fields\n"
"  --test-clock         let administrators move the relay's clock forward\n"
"                       (PUT /api/clock): for tests of expiry, never in\n"
"                       production (in the file: test-clock = yes|no)\n"
"  --redis URL          join the cluster whose Redis is at redis://HOST:PORT[/DB]\n"
"                       (docs/cluster.md); the store is then Redis, and the\n"
"                       data directory holds only the signing secret\n"
"  --node-url URL       where clients are sent to reach this node, ws[s]://HOST:PORT\n"
"                       (default: from --listen; 127.0.0.1 for 0.0.0.0)\n"
"  --node-id ID         this node's name in the cluster (default: drawn at start)\n"
"  --lease-ms MS        a desktop's lease without renewal (default 3000; the same\n"
"                       on every node)\n"
"  --redis-timeout-ms MS  the longest one Redis call may wait (default 250; at\n"
"                       most a quarter of --lease-ms)\n"
"  --check              load the settings, say whether they are good, exit\n"
"  --version            print the version and exit\n"
"  -h, --help           this text\n"
"\n"
"SIZE takes a K, M or G suffix (powers of 1024).  When ready the relay prints\n"
"'listening on ws://HOST:PORT' (or wss://) on stdout.  Logs go to stderr.\n"
"SIGHUP reloads the file and the TLS certificate and key; listen, data,\n"
"tls-cert and tls-key paths, test-clock and the cluster settings need a\n"
"restart.  SIGINT and SIGTERM close every connection with 1001 and exit.\n"
"Exit status: 0 after a clean shutdown (or --check, --help, --version),\n"
"1 when the relay cannot start, 2 for bad options or settings.\n");
}

static int relay_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end || v == 0 || v > (1ull << 31))
		return -1;
	*out = (size_t)v;
	return 0;
}

static int relay_set_listen(struct relay_config *cfg, const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s ||
	    (size_t)(colon - s) >= sizeof(cfg->listen_host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memcpy(cfg->listen_host, s, (size_t)(colon - s));
	cfg->listen_host[colon - s] = '\0';
	cfg->listen_port = (int)port;
	return 0;
}

static int relay_set_string(char **to, const char *s)
{
	if (!*s)
		return -1;
	free(*to);
	*to = relay_xstrdup(s);
	return 0;
}

static int relay_set_data(struct relay_config *cfg, const char *s)
{
	return relay_set_string(&cfg->data_dir, s);
}

static int relay_set_tls_cert(struct relay_config *cfg, const char *s)
{
	return relay_set_string(&cfg->tls_cert, s);
}

static int relay_set_tls_key(struct relay_config *cfg, const char *s)
{
	return relay_set_string(&cfg->tls_key, s);
}

static int relay_set_web(struct relay_config *cfg, const char *s)
{
	return relay_set_string(&cfg->web_dir, s);
}

static int relay_set_max_message(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_size(s, &v) || v < PROTO_MEDIA_HDR_LEN)
		return -1;
	cfg->max_message = v;
	return 0;
}

static int relay_set_queue_bytes(struct relay_config *cfg, const char *s)
{
	return relay_parse_size(s, &cfg->queue_bytes);
}

static int relay_set_queue_msgs(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_size(s, &v))
		return -1;
	cfg->queue_msgs = (uint32_t)v;
	return 0;
}

static int relay_set_gop_bytes(struct relay_config *cfg, const char *s)
{
	return relay_parse_size(s, &cfg->gop_bytes);
}

static int relay_set_stall(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_size(s, &v) || v > 3600)
		return -1;
	cfg->stall_secs = (int)v;
	return 0;
}

static int relay_set_keepalive(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_size(s, &v) || v < 3 || v > 3600)
		return -1;
	cfg->keepalive_secs = (int)v;
	return 0;
}

static int relay_set_keyframe_gap(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_size(s, &v) || v > 60000)
		return -1;
	cfg->keyframe_gap_ms = (uint32_t)v;
	return 0;
}

/* A limit: a count, where 0 means none. */
static int relay_parse_count(const char *s, size_t *out)
{
	if (!strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	return relay_parse_size(s, out) || *out > 10000000 ? -1 : 0;
}

/* A number of seconds from lo to hi. */
static int relay_parse_secs(const char *s, size_t lo, size_t hi, int *out)
{
	size_t v;

	if (relay_parse_count(s, &v) || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int relay_set_gop_frames(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_size(s, &v) || v > 1000000)
		return -1;
	cfg->gop_frames = (uint32_t)v;
	return 0;
}

static int relay_set_hello_timeout(struct relay_config *cfg, const char *s)
{
	return relay_parse_secs(s, 1, 3600, &cfg->hello_timeout_s);
}

static int relay_set_max_prehello(struct relay_config *cfg, const char *s)
{
	return relay_parse_count(s, &cfg->max_prehello_per_addr);
}

static int relay_set_max_user_conns(struct relay_config *cfg, const char *s)
{
	return relay_parse_count(s, &cfg->max_user_conns);
}

static int relay_set_max_token_desktops(struct relay_config *cfg,
					const char *s)
{
	return relay_parse_count(s, &cfg->max_token_desktops);
}

static int relay_set_join_failures(struct relay_config *cfg, const char *s)
{
	size_t v;

	if (relay_parse_count(s, &v))
		return -1;
	cfg->join_fail_user = (uint32_t)v;
	return 0;
}

static int relay_set_join_failures_addr(struct relay_config *cfg,
					const char *s)
{
	size_t v;

	if (relay_parse_count(s, &v))
		return -1;
	cfg->join_fail_addr = (uint32_t)v;
	return 0;
}

static int relay_set_join_cooldown(struct relay_config *cfg, const char *s)
{
	return relay_parse_secs(s, 1, 86400, &cfg->join_cooldown_s);
}

static int relay_set_max_token_life(struct relay_config *cfg, const char *s)
{
	return relay_parse_secs(s, 1, 1u << 30, &cfg->max_token_life_s);
}

static int relay_set_token_skew(struct relay_config *cfg, const char *s)
{
	return relay_parse_secs(s, 0, 86400, &cfg->token_skew_s);
}

/* The token is the file's first line, at least 16 characters. */
static int relay_set_metrics_token(struct relay_config *cfg, const char *s)
{
	char token[1024];
	FILE *f = fopen(s, "r");
	size_t n;

	if (!f)
		return -1;
	n = fgets(token, sizeof(token), f) ? strcspn(token, "\r\n") : 0;
	fclose(f);
	token[n] = '\0';
	if (n < 16)
		return -1;
	return relay_set_string(&cfg->metrics_token, token);
}

/* Days to keep rows: 0 (forever) to 100 years. */
static int relay_set_retain_assist(struct relay_config *cfg, const char *s)
{
	return relay_parse_secs(s, 0, 36500, &cfg->retain_assist_days);
}

static int relay_set_retain_audit(struct relay_config *cfg, const char *s)
{
	return relay_parse_secs(s, 0, 36500, &cfg->retain_audit_days);
}

/* The cluster's strings are checked where they are used (relay_cluster
 * parses the URLs); here only their length and the id's characters. */
static int relay_set_redis(struct relay_config *cfg, const char *s)
{
	if (strncmp(s, "redis://", 8) != 0 || strlen(s) > 255)
		return -1;
	return relay_set_string(&cfg->redis, s);
}

static int relay_set_node_url(struct relay_config *cfg, const char *s)
{
	if ((strncmp(s, "ws://", 5) != 0 && strncmp(s, "wss://", 6) != 0) ||
	    strlen(s) > 255 || strchr(s + 6, '/') || strpbrk(s, " \"\\<>"))
		return -1;
	return relay_set_string(&cfg->node_url, s);
}

static int relay_set_node_id(struct relay_config *cfg, const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz"
				       "0123456789._-") != n)
		return -1;
	return relay_set_string(&cfg->node_id, s);
}

static int relay_set_lease(struct relay_config *cfg, const char *s)
{
	int v;

	if (relay_parse_secs(s, 1000, 60000, &v))
		return -1;
	cfg->lease_ms = (uint32_t)v;
	return 0;
}

static int relay_set_redis_timeout(struct relay_config *cfg, const char *s)
{
	int v;

	if (relay_parse_secs(s, 10, 5000, &v))
		return -1;
	cfg->redis_timeout_ms = (uint32_t)v;
	return 0;
}

static int relay_set_log_format(struct relay_config *cfg, const char *s)
{
	if (!strcmp(s, "text"))
		cfg->log_json = false;
	else if (!strcmp(s, "json"))
		cfg->log_json = true;
	else
		return -1;
	return 0;
}

/* A switch: given as a flag it is "yes"; in the file, yes|no. */
static int relay_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = true, 0;
		if (!strcasecmp(s, no[i]))
			return *out = false, 0;
	}
	return -1;
}

static int relay_set_test_clock(struct relay_config *cfg, const char *s)
{
	return relay_parse_bool(s, &cfg->test_clock);
}

static int relay_set_check(struct relay_config *cfg, const char *s)
{
	return relay_parse_bool(s, &cfg->check_only);
}

enum relay_opt_where {
	RELAY_OPT_BOTH,      /* a flag and a key */
	RELAY_OPT_FLAG_ONLY, /* --config, --check, --help, --version */
};

struct relay_opt {
	const char *name;
	bool has_arg;
	enum relay_opt_where where;
	int (*set)(struct relay_config *cfg, const char *v);
};

static const struct relay_opt RELAY_OPTS[] = {
	{ "listen", true, RELAY_OPT_BOTH, relay_set_listen },
	{ "data", true, RELAY_OPT_BOTH, relay_set_data },
	{ "tls-cert", true, RELAY_OPT_BOTH, relay_set_tls_cert },
	{ "tls-key", true, RELAY_OPT_BOTH, relay_set_tls_key },
	{ "web", true, RELAY_OPT_BOTH, relay_set_web },
	{ "max-message", true, RELAY_OPT_BOTH, relay_set_max_message },
	{ "queue-bytes", true, RELAY_OPT_BOTH, relay_set_queue_bytes },
	{ "queue-msgs", true, RELAY_OPT_BOTH, relay_set_queue_msgs },
	{ "gop-bytes", true, RELAY_OPT_BOTH, relay_set_gop_bytes },
	{ "stall-timeout", true, RELAY_OPT_BOTH, relay_set_stall },
	{ "keepalive", true, RELAY_OPT_BOTH, relay_set_keepalive },
	{ "keyframe-gap", true, RELAY_OPT_BOTH, relay_set_keyframe_gap },
	{ "retain-assist", true, RELAY_OPT_BOTH, relay_set_retain_assist },
	{ "retain-audit", true, RELAY_OPT_BOTH, relay_set_retain_audit },
	{ "log-format", true, RELAY_OPT_BOTH, relay_set_log_format },
	{ "gop-frames", true, RELAY_OPT_BOTH, relay_set_gop_frames },
	{ "hello-timeout", true, RELAY_OPT_BOTH, relay_set_hello_timeout },
	{ "max-prehello-per-addr", true, RELAY_OPT_BOTH, relay_set_max_prehello },
	{ "max-user-conns", true, RELAY_OPT_BOTH, relay_set_max_user_conns },
	{ "max-token-desktops", true, RELAY_OPT_BOTH,
	  relay_set_max_token_desktops },
	{ "join-failures", true, RELAY_OPT_BOTH, relay_set_join_failures },
	{ "join-failures-addr", true, RELAY_OPT_BOTH,
	  relay_set_join_failures_addr },
	{ "join-cooldown", true, RELAY_OPT_BOTH, relay_set_join_cooldown },
	{ "max-token-life", true, RELAY_OPT_BOTH, relay_set_max_token_life },
	{ "token-skew", true, RELAY_OPT_BOTH, relay_set_token_skew },
	{ "metrics-token-file", true, RELAY_OPT_BOTH, relay_set_metrics_token },
	{ "test-clock", false, RELAY_OPT_BOTH, relay_set_test_clock },
	{ "redis", true, RELAY_OPT_BOTH, relay_set_redis },
	{ "node-url", true, RELAY_OPT_BOTH, relay_set_node_url },
	{ "node-id", true, RELAY_OPT_BOTH, relay_set_node_id },
	{ "lease-ms", true, RELAY_OPT_BOTH, relay_set_lease },
	{ "redis-timeout-ms", true, RELAY_OPT_BOTH, relay_set_redis_timeout },
	{ "check", false, RELAY_OPT_FLAG_ONLY, relay_set_check },
	{ "config", true, RELAY_OPT_FLAG_ONLY, NULL },
	{ "version", false, RELAY_OPT_FLAG_ONLY, NULL },
	{ "help", false, RELAY_OPT_FLAG_ONLY, NULL },
};

#define RELAY_NOPTS (sizeof(RELAY_OPTS) / sizeof(*RELAY_OPTS))
#define RELAY_OPT_BASE 256 /* getopt values: RELAY_OPT_BASE + row */

static const struct relay_opt *relay_opt_find(const char *name)
{
	for (size_t i = 0; i < RELAY_NOPTS; i++)
		if (!strcmp(RELAY_OPTS[i].name, name))
			return &RELAY_OPTS[i];
	return NULL;
}

static void relay_why(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void relay_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* The file, read through inih: the first refusal, with its line. */
struct relay_ini {
	struct relay_config *cfg;
	FILE *f;
	int line;      /* lines read so far */
	int err_line;  /* the first line a key or value was refused on */
	char err[256];
};

static char *relay_ini_reader(char *str, int num, void *stream)
{
	struct relay_ini *ini = stream;
	char *s = fgets(str, num, ini->f);

	if (s)
		ini->line++;
	return s;
}

static int relay_ini_refuse(struct relay_ini *ini, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int relay_ini_refuse(struct relay_ini *ini, const char *fmt, ...)
{
	va_list ap;

	if (!ini->err_line) {
		ini->err_line = ini->line;
		va_start(ap, fmt);
		vsnprintf(ini->err, sizeof(ini->err), fmt, ap);
		va_end(ap);
	}
	return 0;
}

static int relay_ini_handler(void *user, const char *section,
			     const char *name, const char *value)
{
	struct relay_ini *ini = user;
	const struct relay_opt *o = relay_opt_find(name);

	if (*section)
		return relay_ini_refuse(ini, "key '%s' in section [%s]: keys "
					     "go before any section",
					name, section);
	if (!o || o->where != RELAY_OPT_BOTH)
		return relay_ini_refuse(ini, "unknown key '%s'", name);
	if (o->set(ini->cfg, value))
		return relay_ini_refuse(ini, "bad value for %s: '%s'", name,
					value);
	return 1;
}

static int relay_config_file(struct relay_config *cfg, const char *path,
			     char *why, size_t whylen)
{
	struct relay_ini ini = { .cfg = cfg };
	int rc;

	ini.f = fopen(path, "r");
	if (!ini.f) {
		relay_why(why, whylen, "cannot read %s: %s", path,
			  strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(relay_ini_reader, &ini, relay_ini_handler,
			      &ini);
	fclose(ini.f);
	if (rc == 0)
		return 0;
	if (rc < 0)
		relay_why(why, whylen, "cannot parse %s: out of memory", path);
	else if (ini.err_line && ini.err_line <= rc)
		relay_why(why, whylen, "%s:%d: %s", path, ini.err_line,
			  ini.err);
	else
		relay_why(why, whylen, "%s:%d: want KEY = VALUE", path, rc);
	return -1;
}

/* <dir of the binary>/www, else <dir>/../share/asp-relay/www. */
static char *relay_default_web(void)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *dir;

	if (n <= 0)
		return relay_xstrdup("www");
	exe[n] = '\0';
	dir = dirname(exe);
	snprintf(path, sizeof(path), "%s/www", dir);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return relay_xstrdup(path);
	snprintf(path, sizeof(path), "%s/../share/asp-relay/www", dir);
	return relay_xstrdup(path);
}

static void relay_config_defaults(struct relay_config *cfg, int argc,
				  char **argv)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
	cfg->listen_port = 8080;
	cfg->data_dir = relay_xstrdup("var");
	cfg->web_dir = relay_default_web();
	cfg->max_message = 4u << 20;
	cfg->queue_bytes = 16u << 20;
	cfg->queue_msgs = 1024;
	cfg->gop_bytes = 8u << 20;
	cfg->stall_secs = 30;
	cfg->keepalive_secs = 30;
	cfg->keyframe_gap_ms = 1000;
	cfg->gop_frames = 1024;
	cfg->hello_timeout_s = 5;
	cfg->max_prehello_per_addr = 512;
	cfg->max_user_conns = 64;
	cfg->max_token_desktops = 16;
	cfg->join_fail_user = 10;
	cfg->join_fail_addr = 100;
	cfg->join_cooldown_s = 60;
	cfg->max_token_life_s = 30 * 86400;
	cfg->token_skew_s = 300;
	cfg->retain_assist_days = 30; /* relay_retain.h says why */
	cfg->retain_audit_days = 0;
	cfg->lease_ms = 3000;
	cfg->redis_timeout_ms = 250;
	cfg->argc = argc;
	cfg->argv = argv;
}

void relay_config_free(struct relay_config *cfg)
{
	free(cfg->data_dir);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->web_dir);
	free(cfg->config_path);
	free(cfg->metrics_token);
	free(cfg->redis);
	free(cfg->node_url);
	free(cfg->node_id);
	memset(cfg, 0, sizeof(*cfg));
}

/* One getopt_long pass over argv: with apply false it only takes
 * --config, --help and --version; with apply true every other flag. */
static int relay_config_flags(struct relay_config *cfg, bool apply,
			      char *why, size_t whylen)
{
	struct option opts[RELAY_NOPTS + 1];
	int o;

	memset(opts, 0, sizeof(opts));
	for (size_t i = 0; i < RELAY_NOPTS; i++) {
		opts[i].name = RELAY_OPTS[i].name;
		opts[i].has_arg = RELAY_OPTS[i].has_arg ? required_argument
							: no_argument;
		opts[i].val = RELAY_OPT_BASE + (int)i;
	}
	optind = 0; /* glibc: start afresh (reloads parse argv again) */
	opterr = 0;
	while ((o = getopt_long(cfg->argc, cfg->argv, ":h", opts, NULL)) !=
	       -1) {
		const struct relay_opt *opt;

		if (o == 'h')
			o = RELAY_OPT_BASE + (int)RELAY_NOPTS - 1;
		if (o == '?' || o == ':') {
			char shortopt[3] = { '-', (char)optopt, '\0' };

			relay_why(why, whylen, "%s option %s",
				  o == ':' ? "a value is missing for"
					   : "unknown",
				  optopt > 0 && optopt < RELAY_OPT_BASE
					  ? shortopt
					  : cfg->argv[optind - 1]);
			return RELAY_CONFIG_ERROR;
		}
		opt = &RELAY_OPTS[o - RELAY_OPT_BASE];
		if (!apply && !strcmp(opt->name, "help")) {
			relay_config_usage(stdout);
			return RELAY_CONFIG_EXIT;
		}
		if (!apply && !strcmp(opt->name, "version")) {
			printf("asp-relay %s (%s)\n", relay_version,
			       relay_revision);
			return RELAY_CONFIG_EXIT;
		}
		if (!apply && !strcmp(opt->name, "config"))
			relay_set_string(&cfg->config_path, optarg);
		if (!apply || !opt->set)
			continue;
		if (opt->set(cfg, opt->has_arg ? optarg : "yes")) {
			relay_why(why, whylen, "bad value for --%s: '%s'",
				  opt->name, optarg);
			return RELAY_CONFIG_ERROR;
		}
	}
	if (optind != cfg->argc) {
		relay_why(why, whylen, "unexpected argument '%s'",
			  cfg->argv[optind]);
		return RELAY_CONFIG_ERROR;
	}
	return RELAY_CONFIG_RUN;
}

int relay_config_load(struct relay_config *cfg, int argc, char **argv,
		      char *why, size_t whylen)
{
	int rc;

	relay_config_defaults(cfg, argc, argv);
	rc = relay_config_flags(cfg, false, why, whylen);
	if (rc == RELAY_CONFIG_RUN && cfg->config_path &&
	    relay_config_file(cfg, cfg->config_path, why, whylen))
		rc = RELAY_CONFIG_ERROR;
	if (rc == RELAY_CONFIG_RUN)
		rc = relay_config_flags(cfg, true, why, whylen);
	if (rc == RELAY_CONFIG_RUN && !cfg->tls_cert != !cfg->tls_key) {
		relay_why(why, whylen, "tls-cert and tls-key go together");
		rc = RELAY_CONFIG_ERROR;
	}
	/* A call that waits its whole timeout must not outlast the margin
	 * a lease keeps (docs/cluster.md, fencing). */
	if (rc == RELAY_CONFIG_RUN && cfg->redis &&
	    4ull * cfg->redis_timeout_ms > cfg->lease_ms) {
		relay_why(why, whylen,
			  "redis-timeout-ms %u must be at most a quarter of lease-ms %u",
			  cfg->redis_timeout_ms, cfg->lease_ms);
		rc = RELAY_CONFIG_ERROR;
	}
	if (rc != RELAY_CONFIG_RUN)
		relay_config_free(cfg);
	return rc;
}
