/*
 * client_pattern: deterministic payloads with a trailing CRC-32 (see
 * client_pattern.h).  The CRC is ours rather than zlib's so the tools
 * need no extra library; it is the same polynomial and result.
 */
#include "tools/common/client_pattern.h"

#include <stdio.h>
#include <string.h>

static const uint8_t client_pattern_tag[4] = { 'A', 'S', 'P', 'T' };

static uint32_t client_crc_table[256];

static void client_crc_init(void)
{
	uint32_t i, k, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		client_crc_table[i] = c;
	}
}

uint32_t client_crc32(uint32_t crc, const uint8_t *p, size_t len)
{
	if (!client_crc_table[1])
		client_crc_init();
	crc = ~crc;
	while (len--)
		crc = client_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void client_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t client_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void client_pattern_fill(uint8_t *p, size_t len, uint16_t stream,
			 uint32_t seq, uint32_t ref)
{
	/* xorshift32 seeded from (stream, seq): cheap and never zero. */
	uint32_t x = (seq * 2654435761u) ^ ((uint32_t)stream << 16) ^
		     0x9E3779B9u;
	size_t i;

	memcpy(p, client_pattern_tag, 4);
	client_put32(p + 4, seq);
	p[8] = (uint8_t)(stream >> 8);
	p[9] = (uint8_t)stream;
	client_put32(p + 10, ref);
	for (i = 14; i < len - 4; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	client_put32(p + len - 4, client_crc32(0, p, len - 4));
}

int client_pattern_check(const uint8_t *p, size_t len, uint16_t stream,
			 uint32_t seq, uint32_t *ref, char *why,
			 size_t why_len)
{
	uint32_t want, got;

	if (len < CLIENT_PATTERN_MIN || memcmp(p, client_pattern_tag, 4)) {
		snprintf(why, why_len, "payload of %zu bytes is not a pattern",
			 len);
		return -1;
	}
	if (client_get32(p + 4) != seq ||
	    (uint16_t)(p[8] << 8 | p[9]) != stream) {
		snprintf(why, why_len,
			 "payload is for stream %u seq %u, header says "
			 "stream %u seq %u", (unsigned)(p[8] << 8 | p[9]),
			 client_get32(p + 4), stream, seq);
		return -1;
	}
	want = client_get32(p + len - 4);
	got = client_crc32(0, p, len - 4);
	if (want != got) {
		snprintf(why, why_len,
			 "stream %u seq %u: CRC 0x%08x, payload says 0x%08x",
			 stream, seq, got, want);
		return -1;
	}
	*ref = client_get32(p + 10);
	return 0;
}
