/*
 * codec_file: an existing media file as a live media source.
 *
 * For a host that streams a recording instead of the synthetic desktop:
 * the file's video (H.264 or HEVC) and audio (Opus only; other audio is
 * skipped, since the protocol carries only Opus) are read with
 * libavformat and remuxed without re-encoding.  Video leaves in Annex-B,
 * through the h264_mp4toannexb / hevc_mp4toannexb bitstream filters,
 * which also put the parameter sets in front of every keyframe.  Flags
 * come from codec_inspect, so they say what the bytes really are.
 *
 * Each codec_file_next() returns one message; the caller sends it at
 * start + batch.pts_us, which is the file's own timing (native rate).
 */
#ifndef ASP_CODEC_FILE_H
#define ASP_CODEC_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/codec_msg.h"

#define CODEC_FILE_EOF 1

struct codec_file_info {
	int video_codec;   /* PROTO_CODEC_H264 or PROTO_CODEC_HEVC */
	int width, height; /* as the container says */
	bool has_audio;    /* an Opus track is streamed */
};

struct codec_file;

/* Opens path.  With loop, the file restarts at its end with timestamps
 * continuing, for a source that never ends.  0 and *out, or
 * -PROTO_E_NOT_FOUND (cannot open/parse), -PROTO_E_MALFORMED (no H.264 or
 * HEVC video), -PROTO_E_INTERNAL (filter or memory), with why. */
int codec_file_open(struct codec_file **out, const char *path, bool loop,
		    size_t headroom, char *why, size_t why_len);

void codec_file_get_info(const struct codec_file *f,
			 struct codec_file_info *out);

/* The next message, as a batch of one (valid until the next call).  0,
 * CODEC_FILE_EOF at the end (without loop), or a negative error with
 * why. */
int codec_file_next(struct codec_file *f, struct codec_batch *batch,
		    char *why, size_t why_len);

void codec_file_close(struct codec_file *f);

#endif
