/*
 * proto_version: parses the dotted versions hosts and clients announce,
 * and applies the product's version gates (docs/protocol.md, "Version
 * rules").
 *
 * Every refusal sentence quotes what the peer sent and what is required,
 * because the person reading it has to know what to upgrade to.
 */
#include "protocol/proto_version.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "protocol/proto_error.h"

#define VERSION_SYNTAX "up to four dot-separated numbers, like 1.1.0"

/* Reads one component at *s, leaving *s on the character after it. */
static int parse_part(const char **s, uint32_t *out)
{
	const char *p = *s;
	uint32_t v = 0;

	if (*p < '0' || *p > '9')
		return -PROTO_E_MALFORMED;
	for (; *p >= '0' && *p <= '9'; p++) {
		/* v <= PART_MAX before the step, so this cannot wrap. */
		v = v * 10 + (uint32_t)(*p - '0');
		if (v > PROTO_VERSION_PART_MAX)
			return -PROTO_E_MALFORMED;
	}
	*s = p;
	*out = v;
	return 0;
}

int proto_version_parse(const char *s, struct proto_version *out)
{
	struct proto_version v = {{0}};
	int n = 0;

	if (!s)
		return -PROTO_E_MALFORMED;
	if (*s == 'V' || *s == 'v')
		s++;
	for (;;) {
		if (n == PROTO_VERSION_PARTS || parse_part(&s, &v.part[n]) < 0)
			return -PROTO_E_MALFORMED;
		n++;
		if (*s == '\0')
			break;
		if (*s++ != '.')
			return -PROTO_E_MALFORMED;
	}
	if (out)
		*out = v;
	return 0;
}

int proto_version_cmp(const struct proto_version *a,
		      const struct proto_version *b)
{
	for (int i = 0; i < PROTO_VERSION_PARTS; i++)
		if (a->part[i] != b->part[i])
			return a->part[i] < b->part[i] ? -1 : 1;
	return 0;
}

/* One minimum-version rule.  who names the software in the refusal
 * ("ASP version", "Windows client"), what names its version string when
 * that is not a version at all, need completes the sentence. */
struct gate {
	const char *who;
	const char *what;
	const char *min;
	const char *need;
};

static const struct gate gate_asp = {
	"ASP version", "ASP version", "1.1.0",
	"the host needs ASP 1.1.0 or later."};
static const struct gate gate_windows = {
	"Windows client", "Windows client version", "6.2",
	"Windows and macOS clients need V6.2 or later."};
static const struct gate gate_macos = {
	"macOS client", "macOS client version", "6.2",
	"Windows and macOS clients need V6.2 or later."};
static const struct gate gate_terminal = {
	"Hardware terminal client", "Hardware terminal client version", "6.3",
	"hardware terminals need V6.3 or later."};

static int gate_min(const struct gate *g, const char *sent, char *why,
		    size_t why_len)
{
	struct proto_version have, want;

	if (proto_version_parse(sent, &have) < 0) {
		proto_err_set(why, why_len,
			      "%s \"%s\" is not a version number "
			      "(expected " VERSION_SYNTAX ").",
			      g->what,
			      sent ? sent : "");
		return -PROTO_E_MALFORMED;
	}
	if (proto_version_parse(g->min, &want) < 0 ||
	    proto_version_cmp(&have, &want) < 0) {
		proto_err_set(why, why_len, "%s %s is not supported: %s",
			      g->who, sent, g->need);
		return -PROTO_E_BAD_VERSION;
	}
	return 0;
}

int proto_gate_host(const char *os, const char *image, const char *asp_version,
		    char *why, size_t why_len)
{
	if (!os || strcasecmp(os, "windows") != 0) {
		proto_err_set(why, why_len,
			      "Operating system \"%s\" is not supported: only "
			      "Windows images (system images, or custom images "
			      "made from them) can share their desktop.",
			      os ? os : "");
		return -PROTO_E_UNSUPPORTED_OS;
	}
	if (!image || (strcasecmp(image, "system") != 0 &&
		       strcasecmp(image, "custom") != 0)) {
		proto_err_set(why, why_len,
			      "Image type \"%s\" is not supported: the image "
			      "must be \"system\" or \"custom\" (made from a "
			      "Windows system image).",
			      image ? image : "");
		return -PROTO_E_UNSUPPORTED_OS;
	}
	return gate_min(&gate_asp, asp_version, why, why_len);
}

int proto_gate_client(const char *client, const char *version,
		      char *why, size_t why_len)
{
	if (client && strcmp(client, "web") == 0)
		return 0;
	if (client && strcmp(client, "windows") == 0)
		return gate_min(&gate_windows, version, why, why_len);
	if (client && strcmp(client, "macos") == 0)
		return gate_min(&gate_macos, version, why, why_len);
	if (client && strcmp(client, "terminal") == 0)
		return gate_min(&gate_terminal, version, why, why_len);
	proto_err_set(why, why_len,
		      "Client \"%s\" is not supported: use the Windows, macOS, "
		      "hardware terminal or web client.",
		      client ? client : "");
	return -PROTO_E_UNSUPPORTED_CLIENT;
}
