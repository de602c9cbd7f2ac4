/*
 * codec_file: demux, filter to Annex-B, wrap.
 *
 * Packets are read in file order.  Video packets go through the
 * mp4toannexb filter (which may hold a packet back, so its output is
 * drained before reading more); Opus packets are wrapped as they are.
 * Timestamps become microseconds from the file's start, plus the length
 * of the passes already played when looping.
 */
#include "codec/codec_file.h"

#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <stdlib.h>

#include "codec/codec_inspect.h"
#include "protocol/proto_error.h"

struct codec_file {
	AVFormatContext *fmt;
	AVBSFContext *bsf;
	AVPacket *pkt;
	int vidx, aidx;
	bool loop, flushed, emitted_in_pass;
	size_t headroom;
	int64_t start_us;  /* the file's start time */
	int64_t offset_us; /* added to timestamps: passes already played */
	int64_t end_us;    /* latest end time emitted so far */
	uint32_t seq[2];
	struct codec_file_info info;
	struct codec_video_inspector vi;
	struct codec_msgbuf buf;
};

static int open_filter(struct codec_file *f, char *why, size_t why_len)
{
	AVStream *st = f->fmt->streams[f->vidx];
	const char *name = f->info.video_codec == PROTO_CODEC_HEVC
				   ? "hevc_mp4toannexb"
				   : "h264_mp4toannexb";
	const AVBitStreamFilter *bsf = av_bsf_get_by_name(name);

	if (bsf == NULL || av_bsf_alloc(bsf, &f->bsf) < 0 ||
	    avcodec_parameters_copy(f->bsf->par_in, st->codecpar) < 0) {
		proto_err_set(why, why_len, "cannot create the %s filter", name);
		return -PROTO_E_INTERNAL;
	}
	f->bsf->time_base_in = st->time_base;
	if (av_bsf_init(f->bsf) < 0) {
		proto_err_set(why, why_len, "the %s filter refused this "
			      "stream", name);
		return -PROTO_E_INTERNAL;
	}
	return 0;
}

static int find_streams(struct codec_file *f, const char *path, char *why,
			size_t why_len)
{
	const AVCodecParameters *par;

	f->vidx = av_find_best_stream(f->fmt, AVMEDIA_TYPE_VIDEO, -1, -1,
				      NULL, 0);
	if (f->vidx < 0) {
		proto_err_set(why, why_len, "%s has no video", path);
		return -PROTO_E_MALFORMED;
	}
	par = f->fmt->streams[f->vidx]->codecpar;
	if (par->codec_id == AV_CODEC_ID_H264)
		f->info.video_codec = PROTO_CODEC_H264;
	else if (par->codec_id == AV_CODEC_ID_HEVC)
		f->info.video_codec = PROTO_CODEC_HEVC;
	else {
		proto_err_set(why, why_len, "%s has %s video; only H.264 and "
			      "HEVC can be streamed", path,
			      avcodec_get_name(par->codec_id));
		return -PROTO_E_MALFORMED;
	}
	f->info.width = par->width;
	f->info.height = par->height;
	f->aidx = av_find_best_stream(f->fmt, AVMEDIA_TYPE_AUDIO, -1, -1,
				      NULL, 0);
	if (f->aidx >= 0 &&
	    f->fmt->streams[f->aidx]->codecpar->codec_id != AV_CODEC_ID_OPUS)
		f->aidx = -1;
	f->info.has_audio = f->aidx >= 0;
	return 0;
}

int codec_file_open(struct codec_file **out, const char *path, bool loop,
		    size_t headroom, char *why, size_t why_len)
{
	struct codec_file *f = calloc(1, sizeof(*f));
	int err;

	*out = NULL;
	if (f == NULL || (f->pkt = av_packet_alloc()) == NULL) {
		free(f);
		proto_err_set(why, why_len, "out of memory");
		return -PROTO_E_INTERNAL;
	}
	f->loop = loop;
	f->headroom = headroom;
	codec_video_inspector_init(&f->vi);
	if (avformat_open_input(&f->fmt, path, NULL, NULL) < 0 ||
	    avformat_find_stream_info(f->fmt, NULL) < 0) {
		proto_err_set(why, why_len, "cannot open %s as a media file",
			      path);
		err = -PROTO_E_NOT_FOUND;
		goto fail;
	}
	err = find_streams(f, path, why, why_len);
	if (!err)
		err = open_filter(f, why, why_len);
	if (err)
		goto fail;
	if (f->fmt->start_time != AV_NOPTS_VALUE)
		f->start_us = f->fmt->start_time;
	*out = f;
	return 0;
fail:
	codec_file_close(f);
	return err;
}

void codec_file_get_info(const struct codec_file *f,
			 struct codec_file_info *out)
{
	*out = f->info;
}

void codec_file_close(struct codec_file *f)
{
	if (f == NULL)
		return;
	codec_msgbuf_free(&f->buf);
	av_bsf_free(&f->bsf);
	avformat_close_input(&f->fmt);
	av_packet_free(&f->pkt);
	free(f);
}

/* The packet's time in microseconds from the start of the first pass. */
static int64_t packet_us(struct codec_file *f, AVRational tb)
{
	int64_t ts = f->pkt->pts != AV_NOPTS_VALUE ? f->pkt->pts
						   : f->pkt->dts;
	int64_t us = ts == AV_NOPTS_VALUE
			     ? f->end_us - f->offset_us
			     : av_rescale_q(ts, tb, AV_TIME_BASE_Q) - f->start_us;
	int64_t dur = av_rescale_q(f->pkt->duration, tb, AV_TIME_BASE_Q);

	us = (us < 0 ? 0 : us) + f->offset_us;
	if (us + dur > f->end_us)
		f->end_us = us + dur;
	return us;
}

static uint8_t video_flags(struct codec_file *f)
{
	struct codec_video_info vi;
	char why[8];
	uint8_t flags = 0;

	if (codec_video_inspect(&f->vi, f->info.video_codec, f->pkt->data,
				(size_t)f->pkt->size, &vi, why,
				sizeof(why)) != 0) {
		/* Not ours to refuse: the relay will judge it.  Trust the
		 * container's keyframe mark. */
		vi.keyframe = f->pkt->flags & AV_PKT_FLAG_KEY;
		vi.has_config = vi.keyframe;
	}
	if (vi.keyframe)
		flags |= PROTO_F_KEYFRAME;
	if (vi.has_config)
		flags |= PROTO_F_CONFIG;
	/* A file's non-key frames may be references (P, reference B): none
	 * is marked discardable, so a relay drops to the next keyframe. */
	return flags;
}

/* Wraps the packet in f->pkt as the batch's one message. */
static int emit(struct codec_file *f, bool video, struct codec_batch *b,
		char *why, size_t why_len)
{
	AVRational tb = video ? f->bsf->time_base_out
			      : f->fmt->streams[f->aidx]->time_base;
	struct proto_media_hdr h = {
		.kind = video ? PROTO_KIND_VIDEO : PROTO_KIND_AUDIO,
		.flags = video ? video_flags(f) : 0,
		.codec = (uint8_t)(video ? f->info.video_codec
					 : PROTO_CODEC_OPUS),
		.stream = video ? CODEC_STREAM_VIDEO : CODEC_STREAM_AUDIO,
		.seq = f->seq[video ? 0 : 1]++,
		.pts_us = (uint64_t)packet_us(f, tb),
		.capture_us = codec_now_us(),
	};
	int err = codec_msg_build(&f->buf, f->headroom, &h, f->pkt->data,
				  (size_t)f->pkt->size, &b->msg[0]);

	av_packet_unref(f->pkt);
	if (err) {
		proto_err_set(why, why_len, "cannot build a media message");
		return err;
	}
	b->count = 1;
	b->pts_us = (int64_t)h.pts_us;
	f->emitted_in_pass = true;
	return 0;
}

/* At the end of the file: rewind when looping (and something was played
 * in this pass, or a broken file would spin), else flush the filter. */
static int at_end(struct codec_file *f)
{
	if (f->loop && f->emitted_in_pass &&
	    av_seek_frame(f->fmt, -1, f->fmt->start_time == AV_NOPTS_VALUE
				     ? 0 : f->fmt->start_time,
			  AVSEEK_FLAG_BACKWARD) >= 0) {
		f->offset_us = f->end_us;
		f->emitted_in_pass = false;
		return 0;
	}
	if (f->flushed)
		return CODEC_FILE_EOF;
	f->flushed = true;
	av_bsf_send_packet(f->bsf, NULL);
	return 0;
}

int codec_file_next(struct codec_file *f, struct codec_batch *batch,
		    char *why, size_t why_len)
{
	int err;

	batch->count = 0;
	for (;;) {
		err = av_bsf_receive_packet(f->bsf, f->pkt);
		if (err == 0)
			return emit(f, true, batch, why, why_len);
		if (err != AVERROR(EAGAIN) && err != AVERROR_EOF)
			break;
		if (f->flushed)
			return CODEC_FILE_EOF;
		err = av_read_frame(f->fmt, f->pkt);
		if (err == AVERROR_EOF) {
			err = at_end(f);
			if (err)
				return err;
			continue;
		}
		if (err < 0)
			break;
		if (f->pkt->stream_index == f->aidx)
			return emit(f, false, batch, why, why_len);
		if (f->pkt->stream_index != f->vidx) {
			av_packet_unref(f->pkt);
			continue;
		}
		err = av_bsf_send_packet(f->bsf, f->pkt);
		if (err < 0) {
			av_packet_unref(f->pkt);
			break;
		}
	}
	proto_err_set(why, why_len, "reading the file failed: %s",
		      av_err2str(err));
	return -PROTO_E_INTERNAL;
}
