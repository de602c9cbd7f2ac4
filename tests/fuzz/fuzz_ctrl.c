/*
 * libFuzzer driver for the JSON control parser: every input is parsed in
 * all four directions; what parses is read through the accessors and
 * released, and every refusal is turned into the error message the relay
 * would send, so "why" sentences are exercised too.  LSan is on, so a
 * leak on any path is a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "protocol/proto_ctrl.h"
#include "protocol/proto_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum proto_dir dirs[] = {
	PROTO_DIR_HOST_TO_RELAY, PROTO_DIR_VIEWER_TO_RELAY,
	PROTO_DIR_RELAY_TO_HOST, PROTO_DIR_RELAY_TO_VIEWER,
};

/* Fields the relay and tools read; the accessors must be safe whatever
 * the message held. */
static const char *const fields[] = {
	"os", "image", "asp_version", "desktop", "client", "client_version",
	"code", "owner_key", "assist", "guest", "interval_ms", "t", "id",
	"session", "message", "event", "name", "token", "max_message",
};

static void read_fields(const struct proto_ctrl *m)
{
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		(void)proto_ctrl_str(m, fields[i]);
		(void)proto_ctrl_int(m, fields[i], 0);
		(void)proto_ctrl_bool(m, fields[i], false);
		(void)proto_ctrl_has(m, fields[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
		struct proto_ctrl m;
		char why[128];
		char *err;
		int rc = proto_ctrl_parse((const char *)data, size, dirs[d],
					  &m, why, sizeof why);

		if (rc == 0) {
			if (!proto_msg_name(m.type))
				abort();
			read_fields(&m);
			proto_ctrl_release(&m);
			continue;
		}
		if (rc != -PROTO_E_MALFORMED && rc != -PROTO_E_TOO_LARGE)
			abort();
		err = proto_ctrl_error(rc, why);
		if (!err)
			abort();
		free(err);
	}
	return 0;
}
