/*
 * relay_server: the relay's lws context on its event loop.
 *
 * One context with one vhost serves HTTP (the page, /healthz, /metrics,
 * the admin API), the host protocol and the viewer protocol on one port,
 * with TLS when the configuration names a certificate.  The context joins
 * the relay's libev loop (relay_loop) as a foreign loop, so lws installs
 * no signal handlers of its own.
 */
#ifndef ASP_RELAY_SERVER_H
#define ASP_RELAY_SERVER_H

#include "relay/relay.h"
#include "relay/relay_loop.h"

/* Creates r->context and r->vhost on loop l, listening where r->cfg says
 * (cfg.listen_port < 0: no listening socket, connections are adopted).
 * Returns 0 or -1 (lws logged why). */
int relay_server_start(struct relay *r, struct relay_loop *l);

/* The port the vhost listens on (the real one when cfg asked for 0). */
int relay_server_port(const struct relay *r);

/* Closes every connection with 1001 (going away) after what is queued
 * for it; new connections are refused the same way from now on. */
void relay_server_begin_shutdown(struct relay *r);

/* Destroys the context: connections still open are dropped without a
 * close frame.  Safe when start failed. */
void relay_server_stop(struct relay *r);

#endif
