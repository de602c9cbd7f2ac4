/*
 * codec_decode: the viewer side of the media stream.
 *
 * A viewer feeds every media message it receives (header already decoded
 * and validated) to a decoder.  Video (H.264/HEVC) is decoded with
 * libavcodec, Opus with libopus, and the outcome is counted: frames,
 * audio packets, errors, and whether the very first video message
 * received decoded cleanly into a picture, which is what "a viewer that
 * joins mid-stream starts at a decodable point" means to a user.  The
 * decoder can also append the received video elementary stream to a file
 * (Annex-B, playable with ffplay) and save the latest picture as a PNG.
 *
 * Decoding runs with low delay and one thread, so each access unit of a
 * zerolatency stream yields its picture at once.
 */
#ifndef ASP_CODEC_DECODE_H
#define ASP_CODEC_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_media.h"

struct codec_decode_stats {
	uint64_t video_msgs;     /* video messages fed */
	uint64_t video_frames;   /* clean pictures decoded */
	uint64_t audio_packets;  /* Opus packets decoded */
	uint64_t audio_samples;  /* per channel, 48 kHz */
	uint64_t errors;         /* messages or pictures that failed */
	bool first_video_seen;   /* a video message was fed */
	bool first_video_ok;     /* ... and the first one decoded, without
				  * error, into a picture */
	int64_t first_frame_pts_us; /* pts of the first clean picture */
	uint64_t first_frame_wall_us; /* when it was decoded (epoch us) */
	int width, height;       /* of the latest picture, 0 before one */
	char last_error[160];    /* sentence for the latest error, or "" */
};

struct codec_decoder;

/* 0 and *out, or -PROTO_E_INTERNAL (out of memory) with why. */
int codec_decoder_create(struct codec_decoder **out, char *why,
			 size_t why_len);

void codec_decoder_destroy(struct codec_decoder *d);

/* Appends every video payload fed from now on to the file at path
 * (truncated first).  0, or -PROTO_E_INTERNAL with why. */
int codec_decoder_record(struct codec_decoder *d, const char *path,
			 char *why, size_t why_len);

/* Feeds one message: h describes it, payload/len is what follows the
 * header.  Video and audio are decoded; other kinds are ignored.  0, or
 * -PROTO_E_MALFORMED when this message failed to decode (counted in
 * errors, sentence in why and last_error); the decoder stays usable. */
int codec_decoder_feed(struct codec_decoder *d,
		       const struct proto_media_hdr *h, const uint8_t *payload,
		       size_t len, char *why, size_t why_len);

void codec_decoder_stats(const struct codec_decoder *d,
			 struct codec_decode_stats *out);

/* Writes the latest clean picture as an RGB PNG at path.  0, or
 * -PROTO_E_STATE when no picture was decoded yet, -PROTO_E_INTERNAL when
 * conversion, encoding or writing fails; why says which. */
int codec_decoder_snapshot_png(struct codec_decoder *d, const char *path,
			       char *why, size_t why_len);

#endif
