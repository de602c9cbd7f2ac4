/*
 * relay_server: the lws context, its protocols and its vhost
 * (relay_server.h).
 */
#include "relay/relay_server.h"

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <string.h>

#include "relay/relay_assist.h"
#include "relay/relay_cluster.h"
#include "relay/relay_conn.h"
#include "relay/relay_http.h"
#include "relay/relay_session.h"

void relay_server_init(struct relay *r)
{
	memset(r, 0, sizeof(*r));
	relay_hist_init(&r->stats.forward_us, 4, 20, 1e-6);
	relay_hist_init(&r->stats.queue_depth, 0, 12, 1);
	relay_hist_init(&r->stats.join_us, 10, 14, 1e-6);
	relay_guard_init(&r->guard);
	relay_map_init(&r->by_desktop);
	relay_map_init(&r->by_code);
	relay_map_init(&r->by_owner);
	relay_session_init(r);
	relay_assist_init(r);
}

void relay_server_free(struct relay *r)
{
	relay_session_free_all(r);
	relay_map_free(&r->by_desktop);
	relay_map_free(&r->by_code);
	relay_map_free(&r->by_owner);
	relay_guard_free(&r->guard);
	if (r->store)
		r->store->ops->close(r->store);
	OPENSSL_cleanse(r->secret, sizeof(r->secret));
	relay_config_free(&r->cfg);
}

static const struct lws_protocols relay_protocols[] = {
	{ "http", relay_http_cb, sizeof(struct relay_http), 0, 0, NULL, 0 },
	/* lws allocates rx_buffer_size per connection, so it is a trade
	 * between reads per message and memory per session.  A host reads
	 * min(rx_buffer_size, pt_serv_buf_size) per recv: 64 KiB halved the
	 * recvfrom calls per 40 KiB message (1.3 to 0.66, strace -c) and left
	 * RSS per idle session as it was (13.8 KiB; the buffer is touched
	 * only once a host streams).  Viewers send small input messages but
	 * receive big ones, written in RELAY_CHUNK pieces. */
	{ RELAY_PROTO_HOST, relay_conn_host_cb, sizeof(struct relay_conn),
	  64 * 1024, 1, NULL, 64 * 1024 },
	{ RELAY_PROTO_VIEW, relay_conn_view_cb, sizeof(struct relay_conn),
	  4096, 2, NULL, 256 * 1024 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* TLS 1.2 suites: ECDHE (forward secrecy) with AEAD only; TLS 1.3's
 * suites are all both. */
#define RELAY_TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define RELAY_TLS13_CIPHERS \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
	"TLS_CHACHA20_POLY1305_SHA256"

/* lws's own keepalive is off (a hangup of 0 disables it): lws keeps every
 * connection's validity timer in one sorted list, and each ping and pong
 * re-inserts it with a walk of the whole list, 12 % of the relay's CPU
 * with a few thousand connections.  relay_conn pings idle peers from its
 * own timers instead (RELAY_KEEPALIVE_*), which sit in libev's heap. */
static const lws_retry_bo_t relay_retry = {
	.secs_since_valid_ping = 0,
	.secs_since_valid_hangup = 0,
};

/* lws's error lines join the relay's log, so --log-format json stays one
 * JSON object per line. */
static void relay_server_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	(void)level;
	while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	relay_log("lws-error", "why=%.*s", (int)n, line);
}

int relay_server_start(struct relay *r, struct relay_loop *l)
{
	struct lws_context_creation_info info;
	void *loops[1] = { relay_loop_native(l) };

	memset(&info, 0, sizeof(info));
	info.port = r->cfg.listen_port < 0 ? CONTEXT_PORT_NO_LISTEN_SERVER :
					     r->cfg.listen_port;
	info.iface = r->cfg.listen_host;
	info.protocols = relay_protocols;
	info.user = r;
	info.pt_serv_buf_size = 64 * 1024;
	info.alpn = "http/1.1";
	info.retry_and_idle_policy = &relay_retry;
	info.timeout_secs = 10;
	info.vhost_name = "default";
	info.options = LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = loops;
	if (r->cfg.tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		/* TLS 1.2 or later, forward-secret AEAD suites only. */
		info.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
				       SSL_OP_NO_TLSv1_1;
		info.ssl_cipher_list = RELAY_TLS12_CIPHERS;
		info.tls1_3_plus_cipher_list = RELAY_TLS13_CIPHERS;
		info.ssl_cert_filepath = r->cfg.tls_cert;
		info.ssl_private_key_filepath = r->cfg.tls_key;
		r->tls = true;
	}
	r->loop = l;
	lws_set_log_level(LLL_ERR, relay_server_lws_log);
	r->context = lws_create_context(&info);
	if (!r->context)
		return -1;
	r->vhost = lws_get_vhost_by_name(r->context, "default");
	if (!r->vhost)
		return -1;
	return 0;
}

int relay_server_port(const struct relay *r)
{
	return lws_get_vhost_listen_port(r->vhost);
}

void relay_server_begin_shutdown(struct relay *r)
{
	r->stopping = true;
	relay_log("shutdown", "connections=%zu", r->nconns);
	/* Give the desktops up first, so the hosts told to go away find
	 * them free on the node they reconnect to. */
	if (relay_cluster_on(r))
		relay_cluster_leave(r);
	for (struct relay_conn *c = r->conns; c; c = c->next)
		relay_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
}

void relay_server_stop(struct relay *r)
{
	if (r->context)
		lws_context_destroy(r->context);
	r->context = NULL;
	r->vhost = NULL;
}
