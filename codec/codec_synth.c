/*
 * codec_synth: draw, convert, encode, wrap.
 *
 * One frame time is: draw the desktop in RGB24, swscale it into the
 * encoder's YUV420P frame, send it to libx264/libx265 and take back the
 * packet (zerolatency means exactly one packet per frame, at once), then
 * encode the 20 ms Opus frames whose time has come, then the cursor.
 */
#include "codec/codec_synth.h"

#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <opus/opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_draw.h"
#include "protocol/proto_error.h"

#define AUDIO_RATE 48000
#define AUDIO_CHANNELS 2
#define AUDIO_FRAME 960 /* 20 ms at 48 kHz */
#define AUDIO_FRAME_US 20000
#define OPUS_MAX_PACKET 1500

/* libx265 3.5 (Debian 12) leaks one x265_param per encoder open
 * (x265_encoder_open's zoneParam, x265 issue #656, fixed after 3.5).
 * Sanitizer builds tell LeakSanitizer so, here where x265 is used, so
 * that every program linking codec_synth runs leak-clean; our own
 * allocations through libavcodec are still checked.  The SAO leak of the
 * same release (issue #641) is avoided instead, by keeping SAO on. */
#if defined(__SANITIZE_ADDRESS__)
#define CODEC_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CODEC_LSAN 1
#endif
#endif
#ifdef CODEC_LSAN
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libx265.so\n";
}
#endif

struct codec_synth {
	struct codec_synth_config cfg;
	AVCodecContext *enc;
	AVFrame *yuv;
	AVPacket *pkt;
	struct SwsContext *sws;
	uint8_t *rgb;
	OpusEncoder *opus;
	int64_t frame_no, audio_no;
	uint32_t seq[3];
	bool force_key;
	double voice_phase;
	struct codec_msgbuf buf[CODEC_BATCH_MAX];
};

static int check_config(const struct codec_synth_config *c, char *why,
			size_t why_len)
{
	if (c->width < 16 || c->width > 8192 || c->height < 16 ||
	    c->height > 8192 || (c->width | c->height) & 1) {
		proto_err_set(why, why_len, "picture size %dx%d is not even "
			      "and within 16-8192", c->width, c->height);
		return -PROTO_E_MALFORMED;
	}
	if (c->fps < 1 || c->fps > 240 || c->keyint_s < 1 ||
	    c->keyint_s > 3600 || c->bitrate_kbps < 0 ||
	    c->bitrate_kbps > 1000000) {
		proto_err_set(why, why_len, "fps %d, keyint %d s or bitrate "
			      "%d kb/s out of range", c->fps, c->keyint_s,
			      c->bitrate_kbps);
		return -PROTO_E_MALFORMED;
	}
	/* Up to 50 / fps + 1 audio messages share a batch with the video. */
	if (c->with_audio && c->fps < 10) {
		proto_err_set(why, why_len, "with audio, fps must be at least "
			      "10, not %d", c->fps);
		return -PROTO_E_MALFORMED;
	}
	if (c->codec != PROTO_CODEC_H264 && c->codec != PROTO_CODEC_HEVC) {
		proto_err_set(why, why_len, "synthetic video is H.264 or HEVC, "
			      "not codec %d", c->codec);
		return -PROTO_E_MALFORMED;
	}
	return 0;
}

/* Low-latency options.  forced-idr makes codec_synth_force_keyframe give
 * an IDR rather than a mere I frame; repeat-headers keeps SPS/PPS (and
 * VPS) in every keyframe access unit, since we never set
 * AV_CODEC_FLAG_GLOBAL_HEADER. */
static int set_encoder_options(AVCodecContext *enc, int codec)
{
	void *priv = enc->priv_data;
	int err = av_opt_set(priv, "preset", "ultrafast", 0);

	if (!err)
		err = av_opt_set(priv, "tune", "zerolatency", 0);
	if (!err)
		err = av_opt_set_int(priv, "forced-idr", 1, 0);
	if (!err && codec == PROTO_CODEC_H264)
		err = av_opt_set(priv, "x264-params",
				 "repeat-headers=1:scenecut=0", 0);
	if (!err && codec == PROTO_CODEC_HEVC)
		err = av_opt_set(priv, "x265-params",
				 "repeat-headers=1:log-level=error:"
				 "scenecut=0:open-gop=0:sao=1", 0);
	return err;
}

static int open_video(struct codec_synth *s, char *why, size_t why_len)
{
	const struct codec_synth_config *c = &s->cfg;
	const char *name = c->codec == PROTO_CODEC_HEVC ? "libx265" : "libx264";
	const AVCodec *codec = avcodec_find_encoder_by_name(name);
	int err;

	if (codec == NULL) {
		proto_err_set(why, why_len, "libavcodec has no %s encoder",
			      name);
		return -PROTO_E_INTERNAL;
	}
	s->enc = avcodec_alloc_context3(codec);
	if (s->enc == NULL)
		goto nomem;
	s->enc->width = c->width;
	s->enc->height = c->height;
	s->enc->pix_fmt = AV_PIX_FMT_YUV420P;
	s->enc->time_base = (AVRational){ 1, c->fps };
	s->enc->framerate = (AVRational){ c->fps, 1 };
	s->enc->gop_size = c->fps * c->keyint_s;
	s->enc->max_b_frames = 0;
	/* One thread: x264's sliced threads would split every picture into
	 * slices, and frame threads would add a frame of latency. */
	s->enc->thread_count = 1;
	if (c->bitrate_kbps > 0)
		s->enc->bit_rate = (int64_t)c->bitrate_kbps * 1000;
	if (set_encoder_options(s->enc, c->codec) < 0) {
		proto_err_set(why, why_len, "%s refused the low-latency "
			      "options", name);
		return -PROTO_E_INTERNAL;
	}
	err = avcodec_open2(s->enc, codec, NULL);
	if (err < 0) {
		proto_err_set(why, why_len, "cannot open %s: %s", name,
			      av_err2str(err));
		return -PROTO_E_INTERNAL;
	}
	return 0;
nomem:
	proto_err_set(why, why_len, "out of memory opening %s", name);
	return -PROTO_E_INTERNAL;
}

static int open_picture(struct codec_synth *s, char *why, size_t why_len)
{
	int w = s->cfg.width, h = s->cfg.height;

	s->yuv = av_frame_alloc();
	s->pkt = av_packet_alloc();
	s->rgb = malloc((size_t)w * (size_t)h * 3);
	if (s->yuv == NULL || s->pkt == NULL || s->rgb == NULL)
		goto nomem;
	s->yuv->format = AV_PIX_FMT_YUV420P;
	s->yuv->width = w;
	s->yuv->height = h;
	if (av_frame_get_buffer(s->yuv, 0) < 0)
		goto nomem;
	s->sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h,
				AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL,
				NULL);
	if (s->sws == NULL) {
		proto_err_set(why, why_len, "swscale cannot convert RGB24 to "
			      "YUV420P at %dx%d", w, h);
		return -PROTO_E_INTERNAL;
	}
	return 0;
nomem:
	proto_err_set(why, why_len, "out of memory for a %dx%d picture", w, h);
	return -PROTO_E_INTERNAL;
}

static int open_audio(struct codec_synth *s, char *why, size_t why_len)
{
	int err;

	s->opus = opus_encoder_create(AUDIO_RATE, AUDIO_CHANNELS,
				      OPUS_APPLICATION_AUDIO, &err);
	if (s->opus == NULL) {
		proto_err_set(why, why_len, "cannot create the Opus encoder: "
			      "%s", opus_strerror(err));
		return -PROTO_E_INTERNAL;
	}
	opus_encoder_ctl(s->opus, OPUS_SET_BITRATE(64000));
	return 0;
}

int codec_synth_create(struct codec_synth **out,
		       const struct codec_synth_config *cfg, char *why,
		       size_t why_len)
{
	struct codec_synth *s;
	int err = check_config(cfg, why, why_len);

	*out = NULL;
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		proto_err_set(why, why_len, "out of memory");
		return -PROTO_E_INTERNAL;
	}
	s->cfg = *cfg;
	err = open_video(s, why, why_len);
	if (!err)
		err = open_picture(s, why, why_len);
	if (!err && cfg->with_audio)
		err = open_audio(s, why, why_len);
	if (err) {
		codec_synth_destroy(s);
		return err;
	}
	*out = s;
	return 0;
}

void codec_synth_destroy(struct codec_synth *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < CODEC_BATCH_MAX; i++)
		codec_msgbuf_free(&s->buf[i]);
	if (s->opus)
		opus_encoder_destroy(s->opus);
	sws_freeContext(s->sws);
	free(s->rgb);
	av_packet_free(&s->pkt);
	av_frame_free(&s->yuv);
	avcodec_free_context(&s->enc);
	free(s);
}

void codec_synth_force_keyframe(struct codec_synth *s)
{
	s->force_key = true;
}

int codec_synth_codec(const struct codec_synth *s)
{
	return s->cfg.codec;
}

static int64_t frame_pts_us(const struct codec_synth *s, int64_t n)
{
	return n * 1000000 / s->cfg.fps;
}

/* Appends one message to the batch, in the batch slot's own buffer. */
static int batch_add(struct codec_synth *s, struct codec_batch *b,
		     struct proto_media_hdr *h, const uint8_t *payload,
		     size_t len, char *why, size_t why_len)
{
	int err;

	if (b->count == CODEC_BATCH_MAX) {
		proto_err_set(why, why_len, "more than %d messages in one "
			      "frame time", CODEC_BATCH_MAX);
		return -PROTO_E_INTERNAL;
	}
	h->seq = s->seq[h->stream]++;
	err = codec_msg_build(&s->buf[b->count], s->cfg.headroom, h, payload,
			      len, &b->msg[b->count]);
	if (err) {
		proto_err_set(why, why_len, "cannot build a %zu-byte media "
			      "message", len);
		return err;
	}
	b->count++;
	return 0;
}

static int render_frame(struct codec_synth *s)
{
	const uint8_t *src[1] = { s->rgb };
	int stride[1] = { s->cfg.width * 3 };
	int err = av_frame_make_writable(s->yuv);

	if (err < 0)
		return err;
	codec_draw_frame(s->rgb, stride[0], s->cfg.width, s->cfg.height,
			 s->frame_no, (int64_t)(codec_now_us() / 1000000));
	sws_scale(s->sws, src, stride, 0, s->cfg.height, s->yuv->data,
		  s->yuv->linesize);
	s->yuv->pts = s->frame_no;
	s->yuv->pict_type = s->force_key ? AV_PICTURE_TYPE_I
					 : AV_PICTURE_TYPE_NONE;
	s->force_key = false;
	return 0;
}

static int encode_video(struct codec_synth *s, struct codec_batch *b,
			uint64_t capture, char *why, size_t why_len)
{
	int err = render_frame(s);

	if (!err)
		err = avcodec_send_frame(s->enc, s->yuv);
	while (err >= 0) {
		err = avcodec_receive_packet(s->enc, s->pkt);
		if (err < 0)
			break;
		bool key = s->pkt->flags & AV_PKT_FLAG_KEY;
		/* Every P-frame is a reference for the next one (no
		 * B-frames), so none is discardable: a relay that must drop
		 * one skips to the next keyframe instead. */
		struct proto_media_hdr h = {
			.kind = PROTO_KIND_VIDEO,
			.flags = key ? PROTO_F_KEYFRAME | PROTO_F_CONFIG : 0,
			.codec = (uint8_t)s->cfg.codec,
			.stream = CODEC_STREAM_VIDEO,
			.pts_us = (uint64_t)frame_pts_us(s, s->pkt->pts),
			.capture_us = capture,
		};
		err = batch_add(s, b, &h, s->pkt->data, (size_t)s->pkt->size,
				why, why_len);
		av_packet_unref(s->pkt);
		if (err)
			return err;
	}
	if (err != AVERROR(EAGAIN)) {
		proto_err_set(why, why_len, "video encoder failed: %s",
			      av_err2str(err));
		return -PROTO_E_INTERNAL;
	}
	return 0;
}

/* A voice-like signal: a gliding fundamental with a few harmonics, shaped
 * into syllables, so that Opus has speech to code and a listener hears
 * something alive. */
static void voice(struct codec_synth *s, opus_int16 *pcm)
{
	for (int i = 0; i < AUDIO_FRAME; i++) {
		double t = (double)(s->audio_no * AUDIO_FRAME + i) / AUDIO_RATE;
		double f0 = 140.0 + 40.0 * sin(2 * M_PI * 0.7 * t);
		double env = fabs(sin(2 * M_PI * 2.5 * t));
		double v = 0;

		s->voice_phase += 2 * M_PI * f0 / AUDIO_RATE;
		for (int k = 1; k <= 5; k++)
			v += sin(k * s->voice_phase) / k;
		v *= 6000.0 * env;
		pcm[2 * i] = (opus_int16)v;
		pcm[2 * i + 1] = (opus_int16)(v * 0.8);
	}
	s->voice_phase = fmod(s->voice_phase, 2 * M_PI);
}

static int encode_audio(struct codec_synth *s, struct codec_batch *b,
			uint64_t capture, char *why, size_t why_len)
{
	opus_int16 pcm[AUDIO_FRAME * AUDIO_CHANNELS];
	uint8_t pkt[OPUS_MAX_PACKET];
	int64_t until = frame_pts_us(s, s->frame_no);

	/* Every audio frame that starts by this video frame's time. */
	while (s->audio_no * AUDIO_FRAME_US <= until) {
		voice(s, pcm);
		int n = opus_encode(s->opus, pcm, AUDIO_FRAME, pkt, sizeof(pkt));

		if (n < 0) {
			proto_err_set(why, why_len, "Opus encoder failed: %s",
				      opus_strerror(n));
			return -PROTO_E_INTERNAL;
		}
		struct proto_media_hdr h = {
			.kind = PROTO_KIND_AUDIO,
			.codec = PROTO_CODEC_OPUS,
			.stream = CODEC_STREAM_AUDIO,
			.pts_us = (uint64_t)(s->audio_no * AUDIO_FRAME_US),
			.capture_us = capture,
		};
		int err = batch_add(s, b, &h, pkt, (size_t)n, why, why_len);

		if (err)
			return err;
		s->audio_no++;
	}
	return 0;
}

/* The cursor is discardable: the next position supersedes it. */
static int add_cursor(struct codec_synth *s, struct codec_batch *b,
		      uint64_t capture, char *why, size_t why_len)
{
	struct proto_cursor c = { 0, 0, 1, 0 };
	uint8_t payload[PROTO_CURSOR_LEN];
	int x, y;

	codec_draw_cursor_pos(s->cfg.width, s->cfg.height, s->frame_no, &x, &y);
	c.x = x;
	c.y = y;
	proto_cursor_encode(&c, payload);
	struct proto_media_hdr h = {
		.kind = PROTO_KIND_CURSOR,
		.flags = PROTO_F_DISCARDABLE,
		.stream = CODEC_STREAM_CURSOR,
		.pts_us = (uint64_t)frame_pts_us(s, s->frame_no),
		.capture_us = capture,
	};
	return batch_add(s, b, &h, payload, sizeof(payload), why, why_len);
}

int codec_synth_next(struct codec_synth *s, struct codec_batch *batch,
		     char *why, size_t why_len)
{
	uint64_t capture = codec_now_us();
	int err;

	batch->count = 0;
	batch->pts_us = frame_pts_us(s, s->frame_no);
	err = encode_video(s, batch, capture, why, why_len);
	if (!err && s->opus)
		err = encode_audio(s, batch, capture, why, why_len);
	if (!err && s->cfg.with_cursor)
		err = add_cursor(s, batch, capture, why, why_len);
	if (!err)
		s->frame_no++;
	return err;
}
