/*
 * test_codec_decode: synthetic desktop -> media messages -> decoder.
 *
 * Each message goes through proto_media_decode first, as it would on a
 * viewer, so the test also proves codec_synth emits valid messages.  The
 * round trip must decode every frame without a single error, the
 * recording must hold exactly the video payloads, and the PNG snapshot,
 * decoded back with libavcodec, must show a picture (not a flat blank).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libavcodec/avcodec.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec_decode.h"
#include "codec/codec_synth.h"
#include "protocol/proto_error.h"

#define W 320
#define H 180
#define FPS 10
#define FRAMES 15

struct fed {
	uint64_t video_bytes;
	uint64_t audio_msgs;
};

static struct codec_synth *synth(int codec)
{
	struct codec_synth_config cfg = { .width = W, .height = H,
		.fps = FPS, .keyint_s = 1, .codec = codec,
		.with_audio = true, .with_cursor = true, .headroom = 16 };
	struct codec_synth *s;
	char why[256] = "";

	if (codec_synth_create(&s, &cfg, why, sizeof(why)) != 0)
		fail_msg("codec_synth_create: %s", why);
	return s;
}

/* Feeds one batch to the decoder, unless skip: a viewer that joins late
 * never sees the messages before it joined. */
static void feed_batch(struct codec_decoder *d, const struct codec_batch *b,
		       bool skip, struct fed *fed)
{
	for (size_t i = 0; i < b->count; i++) {
		const struct codec_msg *m = &b->msg[i];
		struct proto_media_hdr h;
		char why[256] = "";

		if (proto_media_decode(m->data, m->len, &h, why, sizeof(why)))
			fail_msg("message %zu of the batch is invalid: %s", i,
				 why);
		if (skip)
			continue;
		if (h.kind == PROTO_KIND_VIDEO)
			fed->video_bytes += h.length;
		if (h.kind == PROTO_KIND_AUDIO)
			fed->audio_msgs++;
		codec_decoder_feed(d, &h, m->data + PROTO_MEDIA_HDR_LEN,
				   h.length, why, sizeof(why));
	}
}

/* Encodes `frames` frames and feeds those from frame `from` on. */
static void run(struct codec_decoder *d, int codec, int frames, int from,
		struct fed *fed)
{
	struct codec_synth *s = synth(codec);
	struct codec_batch b;
	char why[256];

	for (int i = 0; i < frames; i++) {
		if (codec_synth_next(s, &b, why, sizeof(why)))
			fail_msg("codec_synth_next: %s", why);
		feed_batch(d, &b, i < from, fed);
	}
	codec_synth_destroy(s);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Decodes the PNG at path back to RGB24 and returns its luminance
 * standard deviation, or -1. */
static double png_stddev(const char *path, int *w, int *h)
{
	const AVCodec *c = avcodec_find_decoder(AV_CODEC_ID_PNG);
	AVCodecContext *ctx = avcodec_alloc_context3(c);
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	long size = file_size(path);
	FILE *fp = fopen(path, "rb");
	double sum = 0, sq = 0, sd = -1;

	assert_true(ctx && pkt && f && fp && size > 8);
	assert_int_equal(av_new_packet(pkt, (int)size), 0);
	assert_int_equal(fread(pkt->data, 1, (size_t)size, fp), size);
	fclose(fp);
	assert_memory_equal(pkt->data, "\x89PNG", 4);
	if (avcodec_open2(ctx, c, NULL) == 0 &&
	    avcodec_send_packet(ctx, pkt) == 0 &&
	    avcodec_receive_frame(ctx, f) == 0 &&
	    f->format == AV_PIX_FMT_RGB24) {
		*w = f->width;
		*h = f->height;
		for (int y = 0; y < f->height; y++) {
			const uint8_t *p = f->data[0] + y * f->linesize[0];

			for (int x = 0; x < f->width; x++, p += 3) {
				double l = 0.3 * p[0] + 0.59 * p[1] +
					   0.11 * p[2];

				sum += l;
				sq += l * l;
			}
		}
		double n = (double)f->width * f->height;

		sd = sqrt(sq / n - (sum / n) * (sum / n));
	}
	av_frame_free(&f);
	av_packet_free(&pkt);
	avcodec_free_context(&ctx);
	return sd;
}

static void round_trip(int codec)
{
	const char *ext = proto_codec_name(codec); /* h264, hevc */
	struct codec_decoder *d;
	struct codec_decode_stats st;
	struct fed fed = { 0, 0 };
	char why[256], es[64], png[64];
	int pw = 0, ph = 0;

	snprintf(es, sizeof(es), "/tmp/test_codec_decode.%d.%s", getpid(), ext);
	snprintf(png, sizeof(png), "/tmp/test_codec_decode.%d.png", getpid());
	assert_int_equal(codec_decoder_create(&d, why, sizeof(why)), 0);
	assert_int_equal(codec_decoder_snapshot_png(d, png, why, sizeof(why)),
			 -PROTO_E_STATE);
	if (codec_decoder_record(d, es, why, sizeof(why)))
		fail_msg("record: %s", why);
	run(d, codec, FRAMES, 0, &fed);
	codec_decoder_stats(d, &st);
	if (st.errors)
		fail_msg("%llu decode errors, last: %s",
			 (unsigned long long)st.errors, st.last_error);
	assert_int_equal(st.video_msgs, FRAMES);
	assert_int_equal(st.video_frames, FRAMES);
	assert_int_equal(st.audio_packets, fed.audio_msgs);
	assert_int_equal(st.audio_samples, fed.audio_msgs * 960);
	assert_true(st.first_video_ok);
	assert_int_equal(st.first_frame_pts_us, 0);
	assert_int_equal(st.width, W);
	assert_int_equal(st.height, H);
	if (codec_decoder_snapshot_png(d, png, why, sizeof(why)))
		fail_msg("snapshot: %s", why);
	codec_decoder_destroy(d); /* closes the recording */
	assert_int_equal(file_size(es), (long)fed.video_bytes);
	double sd = png_stddev(png, &pw, &ph);

	print_message("  %s: %d frames, %llu audio packets, snapshot "
		      "%dx%d luma stddev %.1f\n", ext, FRAMES,
		      (unsigned long long)fed.audio_msgs, pw, ph, sd);
	assert_int_equal(pw, W);
	assert_int_equal(ph, H);
	assert_true(sd > 20.0);
	unlink(es);
	unlink(png);
}

/* Runs once per codec; state points at the codec. */
static const int h264 = PROTO_CODEC_H264, hevc = PROTO_CODEC_HEVC;

static void test_round_trip(void **state)
{
	round_trip(*(const int *)*state);
}

/* A viewer that joins at a delta frame cannot decode its first message;
 * one that joins at a keyframe can. */
static void join_at(int codec, int from, bool want_ok)
{
	struct codec_decoder *d;
	struct codec_decode_stats st;
	struct fed fed = { 0, 0 };
	char why[256];

	assert_int_equal(codec_decoder_create(&d, why, sizeof(why)), 0);
	run(d, codec, FRAMES, from, &fed);
	codec_decoder_stats(d, &st);
	if (st.first_video_ok != want_ok)
		fail_msg("%s joining at frame %d: first_video_ok=%d, wanted "
			 "%d (errors %llu, last: %s)", proto_codec_name(codec),
			 from, st.first_video_ok, want_ok,
			 (unsigned long long)st.errors, st.last_error);
	if (want_ok) {
		assert_int_equal(st.errors, 0);
		assert_int_equal(st.video_frames, FRAMES - from);
	}
	codec_decoder_destroy(d);
}

static void test_join(void **state)
{
	(void)state;
	join_at(PROTO_CODEC_H264, FPS, true);
	join_at(PROTO_CODEC_H264, 3, false);
	join_at(PROTO_CODEC_HEVC, FPS, true);
	join_at(PROTO_CODEC_HEVC, 3, false);
}

static void test_garbage(void **state)
{
	static const uint8_t junk[] = { 0, 0, 1, 0x65, 0xde, 0xad, 0xbe, 0xef,
					0x00, 0x00, 0x01, 0x41, 0x12 };
	static const uint8_t bad_opus[] = { 0xFF, 0xFF };
	struct proto_media_hdr hv = { .kind = PROTO_KIND_VIDEO,
				      .codec = PROTO_CODEC_H264 };
	struct proto_media_hdr ha = { .kind = PROTO_KIND_AUDIO,
				      .codec = PROTO_CODEC_OPUS };
	struct codec_decoder *d;
	struct codec_decode_stats st;
	char why[256] = "";

	(void)state;
	assert_int_equal(codec_decoder_create(&d, why, sizeof(why)), 0);
	codec_decoder_feed(d, &hv, junk, sizeof(junk), why, sizeof(why));
	assert_int_equal(codec_decoder_feed(d, &ha, bad_opus,
					    sizeof(bad_opus), why,
					    sizeof(why)),
			 -PROTO_E_MALFORMED);
	assert_true(why[0] != '\0');
	codec_decoder_stats(d, &st);
	assert_false(st.first_video_ok);
	assert_int_equal(st.video_frames, 0);
	assert_true(st.errors >= 1);
	codec_decoder_destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_round_trip_h264", test_round_trip, NULL, NULL, (void *)&h264 },
		{ "test_round_trip_hevc", test_round_trip, NULL, NULL, (void *)&hevc },
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_garbage),
	};

	/* The decoders complain loudly about the deliberate garbage. */
	av_log_set_level(AV_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
