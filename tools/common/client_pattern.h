/*
 * client_pattern: synthetic media payloads a viewer can check byte for byte.
 *
 * asp-host's pattern source fills each payload deterministically from
 * (stream, seq) and ends it with the CRC-32 (IEEE, as zlib's crc32()) of
 * everything before it, so a viewer can tell a corrupted, truncated or
 * misplaced message from a good one without knowing the sender's state:
 *
 *   0 "ASPT"  4 u32 seq  8 u16 stream  10 u32 ref  14 pseudo-random ...
 *   len-4 u32 CRC-32 of bytes [0, len-4), big-endian
 *
 * ref is the seq of the message this one needs to be decodable (for
 * video, the last keyframe; a message that stands alone names itself).
 * It lets a viewer tell a harmless gap (the relay dropped discardable
 * frames nothing refers to) from a broken stream (a reference lost).
 */
#ifndef ASP_CLIENT_PATTERN_H
#define ASP_CLIENT_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* The smallest pattern payload: tag, seq, stream, ref and CRC. */
#define CLIENT_PATTERN_MIN 18

/* CRC-32 (IEEE 802.3, reflected, init and xor 0xFFFFFFFF) of len bytes,
 * continuing from crc (0 to start). */
uint32_t client_crc32(uint32_t crc, const uint8_t *p, size_t len);

/* Fills len (>= CLIENT_PATTERN_MIN) bytes at p. */
void client_pattern_fill(uint8_t *p, size_t len, uint16_t stream,
			 uint32_t seq, uint32_t ref);

/* 0 if p holds the pattern for (stream, seq), with its ref in *ref; -1
 * with a sentence in why (too short, not a pattern, wrong stream or seq,
 * CRC mismatch). */
int client_pattern_check(const uint8_t *p, size_t len, uint16_t stream,
			 uint32_t seq, uint32_t *ref, char *why,
			 size_t why_len);

#endif
