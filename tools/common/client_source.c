/*
 * client_source: the pattern generator, and the codec sources (synthetic
 * desktop, file) behind the same batch interface (see client_source.h).
 */
#include "tools/common/client_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_file.h"
#include "codec/codec_synth.h"
#include "protocol/proto_error.h"
#include "tools/common/client_pattern.h"

#define CLIENT_AUDIO_US 20000
#define CLIENT_AUDIO_BYTES 160
#define CLIENT_PATTERN_VIDEO_STREAM 0
#define CLIENT_PATTERN_AUDIO_STREAM 1

struct client_pattern_gen {
	uint64_t video_n, audio_n;  /* messages made so far */
	uint32_t since_key;         /* frames since the last keyframe */
	uint32_t key_seq;           /* seq of the last keyframe */
	bool force_key;
	uint8_t *buf;               /* the current message */
	size_t cap;
};

struct client_source {
	struct client_source_config cfg;
	struct codec_synth *synth;
	struct codec_file *file;
	struct client_pattern_gen pat;
};

/* ---- pattern ---- */

static int client_pattern_room(struct client_pattern_gen *g, size_t len)
{
	uint8_t *p;

	if (len <= g->cap)
		return 0;
	p = realloc(g->buf, len);
	if (!p)
		return -1;
	g->buf = p;
	g->cap = len;
	return 0;
}

/* Builds one pattern message; ref is the seq it needs to be decodable. */
static int client_pattern_msg(struct client_pattern_gen *g,
			      struct proto_media_hdr *h, uint32_t ref,
			      struct codec_msg *out)
{
	size_t len = PROTO_MEDIA_HDR_LEN + h->length;

	if (client_pattern_room(g, len))
		return -PROTO_E_INTERNAL;
	h->capture_us = codec_now_us();
	proto_media_encode(h, g->buf);
	client_pattern_fill(g->buf + PROTO_MEDIA_HDR_LEN, h->length,
			    h->stream, h->seq, ref);
	out->hdr = *h;
	out->data = g->buf;
	out->len = len;
	return 0;
}

static int client_pattern_video(struct client_source *s, int64_t pts,
				struct codec_msg *out)
{
	struct client_pattern_gen *g = &s->pat;
	uint32_t seq = (uint32_t)g->video_n;
	bool key = g->force_key || g->video_n == 0 ||
		   g->since_key + 1 >= s->cfg.keyint_frames;
	/* Only keyframes are references, so every other frame can be
	 * dropped without harming the ones after it. */
	struct proto_media_hdr h = {
		.kind = PROTO_KIND_VIDEO,
		.flags = key ? PROTO_F_KEYFRAME | PROTO_F_CONFIG
			     : PROTO_F_DISCARDABLE,
		.stream = CLIENT_PATTERN_VIDEO_STREAM, .seq = seq,
		.length = (uint32_t)s->cfg.frame_bytes, .pts_us = (uint64_t)pts,
	};

	if (key)
		g->key_seq = seq;
	g->since_key = key ? 0 : g->since_key + 1;
	g->force_key = false;
	g->video_n++;
	return client_pattern_msg(g, &h, g->key_seq, out);
}

static int client_pattern_audio(struct client_source *s, int64_t pts,
				struct codec_msg *out)
{
	struct client_pattern_gen *g = &s->pat;
	uint32_t seq = (uint32_t)g->audio_n++;
	struct proto_media_hdr h = {
		.kind = PROTO_KIND_AUDIO, .stream = CLIENT_PATTERN_AUDIO_STREAM,
		.seq = seq, .length = CLIENT_AUDIO_BYTES,
		.pts_us = (uint64_t)pts,
	};

	return client_pattern_msg(g, &h, seq, out);
}

/* One message per batch: whichever of video and audio is due first. */
static int client_pattern_next(struct client_source *s, struct codec_batch *b,
			       char *why, size_t why_len)
{
	struct client_pattern_gen *g = &s->pat;
	int64_t tv = (int64_t)((double)g->video_n * 1e6 / s->cfg.fps);
	int64_t ta = (int64_t)g->audio_n * CLIENT_AUDIO_US;
	bool audio = s->cfg.audio && ta < tv;
	int err;

	b->pts_us = audio ? ta : tv;
	b->count = 1;
	err = audio ? client_pattern_audio(s, ta, &b->msg[0])
		    : client_pattern_video(s, tv, &b->msg[0]);
	if (err) {
		b->count = 0;
		snprintf(why, why_len, "out of memory for a %zu-byte frame",
			 s->cfg.frame_bytes);
	}
	return err;
}

/* ---- codec sources ---- */

static int client_open_synth(struct client_source *s, char *why,
			     size_t why_len)
{
	struct codec_synth_config sc = {
		.width = s->cfg.width, .height = s->cfg.height,
		.fps = (int)(s->cfg.fps + 0.5), .keyint_s = s->cfg.keyint_s,
		.codec = s->cfg.codec, .with_audio = s->cfg.audio,
		.with_cursor = s->cfg.cursor,
		.bitrate_kbps = s->cfg.bitrate_kbps,
	};

	return codec_synth_create(&s->synth, &sc, why, why_len);
}

int client_source_open(struct client_source **out,
		       const struct client_source_config *cfg, char *why,
		       size_t why_len)
{
	struct client_source *s = calloc(1, sizeof(*s));
	int err = 0;

	*out = NULL;
	if (!s) {
		snprintf(why, why_len, "out of memory");
		return -PROTO_E_INTERNAL;
	}
	s->cfg = *cfg;
	if (cfg->kind == CLIENT_SOURCE_SYNTHETIC)
		err = client_open_synth(s, why, why_len);
	else if (cfg->kind == CLIENT_SOURCE_FILE)
		err = codec_file_open(&s->file, cfg->path, true, 0, why,
				      why_len);
	if (err) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

int client_source_next(struct client_source *s, struct codec_batch *b,
		       char *why, size_t why_len)
{
	int err;

	if (s->synth)
		return codec_synth_next(s->synth, b, why, why_len);
	if (s->file) {
		err = codec_file_next(s->file, b, why, why_len);
		if (err == CODEC_FILE_EOF) {
			snprintf(why, why_len, "end of %s", s->cfg.path);
			return -PROTO_E_NOT_FOUND;
		}
		return err;
	}
	return client_pattern_next(s, b, why, why_len);
}

void client_source_force_keyframe(struct client_source *s)
{
	if (s->synth)
		codec_synth_force_keyframe(s->synth);
	else if (!s->file)
		s->pat.force_key = true;
}

void client_source_describe(const struct client_source *s, char *buf,
			    size_t len)
{
	struct codec_file_info fi;

	if (s->synth) {
		snprintf(buf, len, "synthetic %s %dx%d %g fps%s",
			 proto_codec_name(s->cfg.codec), s->cfg.width,
			 s->cfg.height, s->cfg.fps,
			 s->cfg.audio ? " + opus" : "");
	} else if (s->file) {
		codec_file_get_info(s->file, &fi);
		snprintf(buf, len, "file %s %s %dx%d%s", s->cfg.path,
			 proto_codec_name(fi.video_codec), fi.width, fi.height,
			 fi.has_audio ? " + opus" : "");
	} else {
		snprintf(buf, len, "pattern %zu bytes %g fps%s",
			 s->cfg.frame_bytes, s->cfg.fps,
			 s->cfg.audio ? " + audio" : "");
	}
}

void client_source_close(struct client_source *s)
{
	if (!s)
		return;
	codec_synth_destroy(s->synth);
	if (s->file)
		codec_file_close(s->file);
	free(s->pat.buf);
	free(s);
}
