/*
 * proto_version: dotted version numbers and the product's version gates.
 *
 * A version is one to four decimal components separated by dots, with an
 * optional leading 'V' or 'v'; missing components are zero, so "6.2"
 * equals "6.2.0".  Components compare numerically (1.10.0 > 1.9.9).
 *
 * Gates (docs/protocol.md, "Version rules"):
 *   host:   os "windows", image "system" or "custom", ASP >= 1.1.0
 *   client: windows, macos >= 6.2; terminal >= 6.3; web any version
 */
#ifndef ASP_PROTO_VERSION_H
#define ASP_PROTO_VERSION_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION_PARTS 4
#define PROTO_VERSION_PART_MAX 99999999u

struct proto_version {
	uint32_t part[PROTO_VERSION_PARTS];
};

/* Parses s; 0 or -PROTO_E_MALFORMED (empty, non-digit, empty component,
 * more than four components, a component over PROTO_VERSION_PART_MAX). */
int proto_version_parse(const char *s, struct proto_version *out);

/* <0, 0, >0 as a is below, equal to, above b. */
int proto_version_cmp(const struct proto_version *a,
		      const struct proto_version *b);

/* Host gate.  0, or -PROTO_E_UNSUPPORTED_OS / -PROTO_E_BAD_VERSION /
 * -PROTO_E_MALFORMED with a sentence in why that quotes what was sent
 * and what is required. */
int proto_gate_host(const char *os, const char *image, const char *asp_version,
		    char *why, size_t why_len);

/* Collaborator client gate.  0, or -PROTO_E_UNSUPPORTED_CLIENT /
 * -PROTO_E_BAD_VERSION / -PROTO_E_MALFORMED with a sentence in why.
 * The web client passes with any version string, even an empty one. */
int proto_gate_client(const char *client, const char *version,
		      char *why, size_t why_len);

#endif
