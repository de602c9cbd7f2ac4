/*
 * relay_reload: SIGHUP.  See relay_reload.h.
 *
 * The new certificate and key are tried in a scratch SSL_CTX first: lws
 * replaces the vhost's certificate before it loads the key, so a bad pair
 * handed straight to lws_tls_cert_updated() could leave the relay serving
 * a certificate without its key.  lws matches the vhost by the paths it
 * was created with, which is one reason those paths are fixed at start
 * (the files behind them are what certificate renewal rewrites).
 */
#include "relay/relay_reload.h"

#include <string.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "relay/relay.h"

static bool relay_str_differs(const char *a, const char *b)
{
	return (!a != !b) || (a && strcmp(a, b));
}

static void relay_keep_str(char **fresh, char **running, const char *name)
{
	char *t;

	if (!relay_str_differs(*fresh, *running))
		return;
	relay_log("reload-kept", "setting=%s restart=needed", name);
	t = *fresh;
	*fresh = *running;
	*running = t;
}

/* What only a restart changes keeps its running value in fresh. */
static void relay_keep_fixed(struct relay_config *running,
			     struct relay_config *fresh)
{
	if (strcmp(fresh->listen_host, running->listen_host) ||
	    fresh->listen_port != running->listen_port) {
		relay_log("reload-kept", "setting=listen restart=needed");
		memcpy(fresh->listen_host, running->listen_host,
		       sizeof(fresh->listen_host));
		fresh->listen_port = running->listen_port;
	}
	relay_keep_str(&fresh->data_dir, &running->data_dir, "data");
	relay_keep_str(&fresh->tls_cert, &running->tls_cert, "tls-cert");
	relay_keep_str(&fresh->tls_key, &running->tls_key, "tls-key");
	if (fresh->test_clock != running->test_clock) {
		relay_log("reload-kept", "setting=test-clock restart=needed");
		fresh->test_clock = running->test_clock;
	}
	/* A node's place in the cluster is fixed for its life. */
	relay_keep_str(&fresh->redis, &running->redis, "redis");
	relay_keep_str(&fresh->node_url, &running->node_url, "node-url");
	relay_keep_str(&fresh->node_id, &running->node_id, "node-id");
	if (fresh->lease_ms != running->lease_ms ||
	    fresh->redis_timeout_ms != running->redis_timeout_ms) {
		relay_log("reload-kept", "setting=lease-ms,redis-timeout-ms restart=needed");
		fresh->lease_ms = running->lease_ms;
		fresh->redis_timeout_ms = running->redis_timeout_ms;
	}
}

/* 0 if cert and key load and belong together, else -1 with why. */
static int relay_tls_try(const char *cert, const char *key, char *why,
			 size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int rc = -1;

	if (!ctx)
		goto out;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto out;
	rc = 0;
out:
	if (rc)
		ERR_error_string_n(ERR_get_error(), why, len);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

int relay_reload(struct relay *r)
{
	struct relay_config fresh;
	char why[512];

	if (relay_config_load(&fresh, r->cfg.argc, r->cfg.argv, why,
			      sizeof(why)) != RELAY_CONFIG_RUN) {
		relay_log("reload-error", "kept=all why=%s", why);
		return -1;
	}
	relay_keep_fixed(&r->cfg, &fresh);
	if (r->tls) {
		if (relay_tls_try(fresh.tls_cert, fresh.tls_key, why,
				  sizeof(why))) {
			relay_log("reload-error", "kept=all tls-cert=%s why=%s",
				  fresh.tls_cert, why);
			relay_config_free(&fresh);
			return -1;
		}
		lws_tls_cert_updated(r->context, fresh.tls_cert, fresh.tls_key,
				     NULL, 0, NULL, 0);
	}
	relay_config_free(&r->cfg);
	r->cfg = fresh;
	relay_log_set_json(r->cfg.log_json);
	relay_log("reload", "config=%s tls=%s",
		  r->cfg.config_path ? r->cfg.config_path : "-",
		  r->tls ? "reloaded" : "off");
	return 0;
}
