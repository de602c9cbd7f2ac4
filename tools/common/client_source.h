/*
 * client_source: where asp-host's media comes from, behind one interface.
 *
 * Three sources, each handing out batches of complete media messages
 * (codec_msg.h) stamped with when to send them, relative to the first:
 *
 *  - pattern: synthetic messages with a checkable payload
 *    (client_pattern.h), codec 0: video at fps, a keyframe every
 *    keyint_frames frames (KEYFRAME|CONFIG, the others DISCARDABLE), and
 *    optionally a small audio message every 20 ms;
 *  - synthetic: a drawn desktop encoded as real H.264 or HEVC, plus Opus
 *    and cursor messages (codec_synth.h);
 *  - file: an H.264/HEVC (+ Opus) file remuxed at its native rate,
 *    looping (codec_file.h).
 *
 * Messages in a batch live until the next client_source_next() call.
 */
#ifndef ASP_CLIENT_SOURCE_H
#define ASP_CLIENT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec_msg.h"

enum client_source_kind {
	CLIENT_SOURCE_PATTERN,
	CLIENT_SOURCE_SYNTHETIC,
	CLIENT_SOURCE_FILE,
};

struct client_source_config {
	enum client_source_kind kind;
	const char *path;      /* file */
	double fps;            /* pattern, synthetic */
	bool audio;            /* pattern, synthetic */
	bool cursor;           /* synthetic */
	size_t frame_bytes;    /* pattern video payload */
	uint32_t keyint_frames;/* pattern */
	int keyint_s;          /* synthetic */
	int codec;             /* synthetic: PROTO_CODEC_H264 or _HEVC */
	int width, height;     /* synthetic */
	int bitrate_kbps;      /* synthetic, 0 = encoder default */
};

struct client_source;

/* 0 and *out, or a negative error with a sentence in why. */
int client_source_open(struct client_source **out,
		       const struct client_source_config *cfg, char *why,
		       size_t why_len);

/* The next batch.  0, or a negative error with why (the source is then
 * done). */
int client_source_next(struct client_source *s, struct codec_batch *b,
		       char *why, size_t why_len);

/* The next video message will be a keyframe (no-op for a file, which
 * has its own). */
void client_source_force_keyframe(struct client_source *s);

/* A line saying what the source sends, for the host's stdout. */
void client_source_describe(const struct client_source *s, char *buf,
			    size_t len);

void client_source_close(struct client_source *s);

#endif
