/*
 * codec_decode: libavcodec and libopus behind a counting front.
 *
 * The video decoder is opened on the first video message and reopened if
 * the codec changes.  Payloads are copied into padded packets because
 * libavcodec's bit readers may look up to AV_INPUT_BUFFER_PADDING_SIZE
 * bytes past the end of the data they are given.
 */
#include "codec/codec_decode.h"

#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <limits.h>
#include <opus/opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_msg.h"
#include "protocol/proto_error.h"

#define OPUS_MAX_SAMPLES 5760 /* 120 ms at 48 kHz */

struct codec_decoder {
	AVCodecContext *vdec;
	int vcodec;
	AVPacket *pkt;
	AVFrame *frame;
	AVFrame *latest;
	OpusDecoder *opus;
	FILE *rec;
	struct codec_decode_stats st;
	opus_int16 pcm[OPUS_MAX_SAMPLES * 2];
};

int codec_decoder_create(struct codec_decoder **out, char *why,
			 size_t why_len)
{
	struct codec_decoder *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (d == NULL)
		goto nomem;
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	d->latest = av_frame_alloc();
	if (d->pkt == NULL || d->frame == NULL || d->latest == NULL)
		goto nomem;
	*out = d;
	return 0;
nomem:
	codec_decoder_destroy(d);
	proto_err_set(why, why_len, "out of memory creating a decoder");
	return -PROTO_E_INTERNAL;
}

void codec_decoder_destroy(struct codec_decoder *d)
{
	if (d == NULL)
		return;
	if (d->rec)
		fclose(d->rec);
	if (d->opus)
		opus_decoder_destroy(d->opus);
	av_frame_free(&d->latest);
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	avcodec_free_context(&d->vdec);
	free(d);
}

int codec_decoder_record(struct codec_decoder *d, const char *path,
			 char *why, size_t why_len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL) {
		proto_err_set(why, why_len, "cannot create %s", path);
		return -PROTO_E_INTERNAL;
	}
	if (d->rec)
		fclose(d->rec);
	d->rec = f;
	return 0;
}

void codec_decoder_stats(const struct codec_decoder *d,
			 struct codec_decode_stats *out)
{
	*out = d->st;
}

/* Counts a failure and says why, both to the caller and in the stats. */
static int fail(struct codec_decoder *d, char *why, size_t why_len,
		const char *what, int averr)
{
	char buf[AV_ERROR_MAX_STRING_SIZE] = "";

	if (averr)
		av_strerror(averr, buf, sizeof(buf));
	d->st.errors++;
	proto_err_set(d->st.last_error, sizeof(d->st.last_error), "%s%s%s",
		      what, averr ? ": " : "", buf);
	proto_err_set(why, why_len, "%s", d->st.last_error);
	return -PROTO_E_MALFORMED;
}

static int open_video(struct codec_decoder *d, int codec, char *why,
		      size_t why_len)
{
	enum AVCodecID id = codec == PROTO_CODEC_HEVC ? AV_CODEC_ID_HEVC
						      : AV_CODEC_ID_H264;
	const AVCodec *c = avcodec_find_decoder(id);
	int err;

	avcodec_free_context(&d->vdec);
	d->vcodec = 0;
	if (c == NULL)
		return fail(d, why, why_len, "libavcodec has no decoder for "
			    "this codec", 0);
	d->vdec = avcodec_alloc_context3(c);
	if (d->vdec == NULL)
		return fail(d, why, why_len, "out of memory", 0);
	/* Frame threads would hold pictures back; low delay hands each
	 * one out as soon as its access unit is in. */
	d->vdec->thread_count = 1;
	d->vdec->flags |= AV_CODEC_FLAG_LOW_DELAY;
	err = avcodec_open2(d->vdec, c, NULL);
	if (err < 0) {
		avcodec_free_context(&d->vdec);
		return fail(d, why, why_len, "cannot open the video decoder",
			    err);
	}
	d->vcodec = codec;
	return 0;
}

/* Takes every picture the decoder has ready; returns how many were clean
 * or a negative count of broken ones. */
static int drain_pictures(struct codec_decoder *d, int *clean, int *broken)
{
	int err;

	while ((err = avcodec_receive_frame(d->vdec, d->frame)) >= 0) {
		if (d->frame->decode_error_flags ||
		    (d->frame->flags & AV_FRAME_FLAG_CORRUPT)) {
			(*broken)++;
			av_frame_unref(d->frame);
			continue;
		}
		(*clean)++;
		if (d->st.video_frames++ == 0) {
			d->st.first_frame_pts_us = d->frame->pts;
			d->st.first_frame_wall_us = codec_now_us();
		}
		d->st.width = d->frame->width;
		d->st.height = d->frame->height;
		av_frame_unref(d->latest);
		av_frame_move_ref(d->latest, d->frame);
	}
	return err == AVERROR(EAGAIN) || err == AVERROR_EOF ? 0 : err;
}

static int feed_video(struct codec_decoder *d,
		      const struct proto_media_hdr *h, const uint8_t *payload,
		      size_t len, char *why, size_t why_len)
{
	bool first = !d->st.first_video_seen;
	int clean = 0, broken = 0, err;

	d->st.video_msgs++;
	d->st.first_video_seen = true;
	if (d->rec && len && fwrite(payload, 1, len, d->rec) != len)
		return fail(d, why, why_len, "cannot write the recording", 0);
	if (h->codec != d->vcodec &&
	    (err = open_video(d, h->codec, why, why_len)) != 0)
		return err;
	if (len == 0 || len > INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE)
		return fail(d, why, why_len, "video payload size out of range",
			    0);
	err = av_new_packet(d->pkt, (int)len);
	if (err < 0)
		return fail(d, why, why_len, "out of memory", err);
	memcpy(d->pkt->data, payload, len);
	d->pkt->pts = (int64_t)h->pts_us;
	err = avcodec_send_packet(d->vdec, d->pkt);
	av_packet_unref(d->pkt);
	if (err < 0)
		return fail(d, why, why_len, "video access unit did not decode",
			    err);
	err = drain_pictures(d, &clean, &broken);
	if (err < 0 || broken)
		return fail(d, why, why_len, "video picture decoded with errors",
			    err);
	if (first)
		d->st.first_video_ok = clean > 0;
	return 0;
}

static int feed_audio(struct codec_decoder *d, const uint8_t *payload,
		      size_t len, char *why, size_t why_len)
{
	int n;

	if (d->opus == NULL) {
		d->opus = opus_decoder_create(48000, 2, &n);
		if (d->opus == NULL)
			return fail(d, why, why_len, "cannot create the Opus "
				    "decoder", 0);
	}
	if (len == 0 || len > INT_MAX)
		return fail(d, why, why_len, "Opus payload size out of range",
			    0);
	n = opus_decode(d->opus, payload, (opus_int32)len, d->pcm,
			OPUS_MAX_SAMPLES, 0);
	if (n < 0) {
		fail(d, why, why_len, "Opus packet did not decode", 0);
		proto_err_set(why, why_len, "Opus packet did not decode: %s",
			      opus_strerror(n));
		return -PROTO_E_MALFORMED;
	}
	d->st.audio_packets++;
	d->st.audio_samples += (uint64_t)n;
	return 0;
}

int codec_decoder_feed(struct codec_decoder *d,
		       const struct proto_media_hdr *h, const uint8_t *payload,
		       size_t len, char *why, size_t why_len)
{
	if (h->kind == PROTO_KIND_VIDEO &&
	    (h->codec == PROTO_CODEC_H264 || h->codec == PROTO_CODEC_HEVC))
		return feed_video(d, h, payload, len, why, why_len);
	if (h->kind == PROTO_KIND_AUDIO && h->codec == PROTO_CODEC_OPUS)
		return feed_audio(d, payload, len, why, why_len);
	return 0;
}

/* ---- PNG snapshot ---- */

static AVFrame *to_rgb(const AVFrame *src)
{
	AVFrame *rgb = av_frame_alloc();
	struct SwsContext *sws = NULL;

	if (rgb == NULL)
		return NULL;
	rgb->format = AV_PIX_FMT_RGB24;
	rgb->width = src->width;
	rgb->height = src->height;
	if (av_frame_get_buffer(rgb, 0) < 0)
		goto fail;
	sws = sws_getContext(src->width, src->height, src->format,
			     src->width, src->height, AV_PIX_FMT_RGB24,
			     SWS_BILINEAR, NULL, NULL, NULL);
	if (sws == NULL)
		goto fail;
	sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0,
		  src->height, rgb->data, rgb->linesize);
	sws_freeContext(sws);
	return rgb;
fail:
	av_frame_free(&rgb);
	return NULL;
}

static int encode_png(const AVFrame *rgb, AVPacket *pkt)
{
	const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_PNG);
	AVCodecContext *enc;
	int err;

	if (c == NULL)
		return AVERROR_ENCODER_NOT_FOUND;
	enc = avcodec_alloc_context3(c);
	if (enc == NULL)
		return AVERROR(ENOMEM);
	enc->width = rgb->width;
	enc->height = rgb->height;
	enc->pix_fmt = AV_PIX_FMT_RGB24;
	enc->time_base = (AVRational){ 1, 1 };
	err = avcodec_open2(enc, c, NULL);
	if (err >= 0)
		err = avcodec_send_frame(enc, rgb);
	if (err >= 0)
		err = avcodec_receive_packet(enc, pkt);
	avcodec_free_context(&enc);
	return err;
}

static int write_file(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(p, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

int codec_decoder_snapshot_png(struct codec_decoder *d, const char *path,
			       char *why, size_t why_len)
{
	AVFrame *rgb;
	AVPacket *pkt;
	int err;

	if (d->st.video_frames == 0) {
		proto_err_set(why, why_len, "no picture decoded yet");
		return -PROTO_E_STATE;
	}
	rgb = to_rgb(d->latest);
	pkt = av_packet_alloc();
	if (rgb == NULL || pkt == NULL) {
		proto_err_set(why, why_len, "cannot convert the picture to RGB");
		err = -PROTO_E_INTERNAL;
		goto out;
	}
	err = encode_png(rgb, pkt);
	if (err < 0) {
		proto_err_set(why, why_len, "PNG encoder failed: %s",
			      av_err2str(err));
		err = -PROTO_E_INTERNAL;
		goto out;
	}
	err = write_file(path, pkt->data, (size_t)pkt->size);
	if (err) {
		proto_err_set(why, why_len, "cannot write %s", path);
		err = -PROTO_E_INTERNAL;
	}
out:
	av_packet_free(&pkt);
	av_frame_free(&rgb);
	return err;
}
