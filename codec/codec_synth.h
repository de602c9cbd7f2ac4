/*
 * codec_synth: a synthetic desktop as a live media source.
 *
 * The host tool uses it where a real host would capture the screen: it
 * draws a desktop (codec_draw), converts it to YUV420P with swscale and
 * encodes it with libx264 (H.264) or libx265 (HEVC) through libavcodec,
 * tuned for latency: no B-frames, no lookahead, zerolatency, parameter
 * sets repeated in band in every keyframe, a keyframe every keyint
 * seconds and on demand.  Optionally an Opus track (a speech-like voice,
 * 20 ms stereo frames at 48 kHz) and cursor messages.
 *
 * Each codec_synth_next() produces the messages of the next frame time:
 * the video access unit, the audio packets due by then and the cursor
 * position, as complete media messages (see codec_msg.h).  The source
 * does not sleep; the caller sends each batch at start + batch.pts_us.
 */
#ifndef ASP_CODEC_SYNTH_H
#define ASP_CODEC_SYNTH_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/codec_msg.h"

struct codec_synth_config {
	int width, height;   /* even, 16-8192 */
	int fps;             /* 1-240; at least 10 with audio */
	int keyint_s;        /* seconds between keyframes, 1-3600 */
	int codec;           /* PROTO_CODEC_H264 or PROTO_CODEC_HEVC */
	bool with_audio;     /* Opus messages on CODEC_STREAM_AUDIO */
	bool with_cursor;    /* cursor messages on CODEC_STREAM_CURSOR */
	int bitrate_kbps;    /* 0: the encoder's constant-quality default */
	size_t headroom;     /* writable bytes before each message */
};

struct codec_synth;

/* Opens the encoders.  0 and *out (destroy with codec_synth_destroy), or
 * -PROTO_E_MALFORMED for a bad config / -PROTO_E_INTERNAL when an encoder
 * is missing or fails to open, with a sentence in why. */
int codec_synth_create(struct codec_synth **out,
		       const struct codec_synth_config *cfg, char *why,
		       size_t why_len);

/* Renders and encodes the next frame; fills *batch (its messages live
 * until the next call).  Video first, then audio, then cursor.  0, or a
 * negative error with why (the source is then unusable). */
int codec_synth_next(struct codec_synth *s, struct codec_batch *batch,
		     char *why, size_t why_len);

/* Makes the next frame an IDR keyframe (with parameter sets). */
void codec_synth_force_keyframe(struct codec_synth *s);

/* The PROTO_CODEC_* the video is encoded with. */
int codec_synth_codec(const struct codec_synth *s);

void codec_synth_destroy(struct codec_synth *s);

#endif
