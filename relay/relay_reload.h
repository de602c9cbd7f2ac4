/*
 * relay_reload: SIGHUP, applied to a running relay.
 *
 * Reloading loads the settings again from the same command line and
 * --config file (relay_config_load), re-reads the TLS certificate and key
 * into the listening vhost (lws_tls_cert_updated), and swaps the new
 * settings in.  No connection is touched: limits apply from the next
 * message on, a new certificate to the next TLS handshake.
 */
#ifndef ASP_RELAY_RELOAD_H
#define ASP_RELAY_RELOAD_H

struct relay;

/*
 * Reloads r's settings and certificate.  What cannot change while the
 * relay runs (listen, data, the tls-cert and tls-key paths, whether TLS is
 * on, test-clock) keeps its running value, and each such change is logged
 * as "reload-kept".  Returns 0, or -1 when the new settings or the new
 * certificate are refused: that is logged ("reload-error", with the file
 * and line) and r keeps every old setting and its old certificate.
 */
int relay_reload(struct relay *r);

#endif
