/*
 * libFuzzer driver for the binary media parsers: proto_media_decode on
 * the whole input, and the cursor and input payload decoders on its
 * tail.  Whatever decodes must encode back to the same bytes, so the
 * fuzzer also checks that the two directions agree.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *data, size_t size)
{
	struct proto_media_hdr h;
	uint8_t again[PROTO_MEDIA_HDR_LEN];
	char why[24]; /* short on purpose: truncation must be safe */

	if (proto_media_decode(data, size, &h, why, sizeof why) < 0)
		return;
	proto_media_encode(&h, again);
	if (memcmp(again, data, sizeof again) != 0)
		abort();
}

static void check_payloads(const uint8_t *data, size_t size)
{
	struct proto_cursor c;
	struct proto_input in;
	uint8_t again[PROTO_INPUT_LEN];
	char why[64];

	if (proto_cursor_decode(data, size, &c, why, sizeof why) == 0) {
		proto_cursor_encode(&c, again);
		if (memcmp(again, data, PROTO_CURSOR_LEN) != 0)
			abort();
	}
	if (proto_input_decode(data, size, &in, why, sizeof why) == 0) {
		proto_input_encode(&in, again);
		if (memcmp(again, data, PROTO_INPUT_LEN) != 0)
			abort();
		(void)proto_input_name(in.type);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_header(data, size);
	if (size > PROTO_MEDIA_HDR_LEN)
		check_payloads(data + PROTO_MEDIA_HDR_LEN,
			       size - PROTO_MEDIA_HDR_LEN);
	else
		check_payloads(data, size);
	return 0;
}
