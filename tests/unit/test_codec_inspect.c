/*
 * test_codec_inspect: inspection of real encoder output.
 *
 * Frames come from codec_synth (libx264 and libx265), so every check is
 * against what a real host sends: keyframe flags on every message, the
 * resolution, codec strings computed independently from the SPS bytes,
 * and refusal of empty, truncated and garbage access units.  Every prefix
 * of a keyframe is inspected too, so AddressSanitizer sees any read past
 * the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_inspect.h"
#include "codec/codec_synth.h"
#include "protocol/proto_error.h"

#define W 320
#define H 180
#define FPS 10
#define FRAMES 25
#define FORCED 5

/* A copy of one message's payload. */
struct au {
	uint8_t *p;
	size_t len;
	uint8_t flags;
};

struct run {
	struct au video[FRAMES];
	struct au audio[FRAMES * 6];
	size_t naudio;
};

static void keep(struct au *a, const struct codec_msg *m)
{
	a->len = m->hdr.length;
	a->p = malloc(a->len ? a->len : 1);
	assert_non_null(a->p);
	memcpy(a->p, m->data + PROTO_MEDIA_HDR_LEN, a->len);
	a->flags = m->hdr.flags;
}

/* Encodes FRAMES frames at FPS with a keyframe every second, forcing one
 * at frame FORCED. */
static struct run *encode(int codec)
{
	struct codec_synth_config cfg = { .width = W, .height = H,
		.fps = FPS, .keyint_s = 1, .codec = codec,
		.with_audio = true };
	struct codec_synth *s;
	struct codec_batch b;
	char why[256] = "";
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	if (codec_synth_create(&s, &cfg, why, sizeof(why)) != 0)
		fail_msg("codec_synth_create: %s", why);
	for (int i = 0; i < FRAMES; i++) {
		if (i == FORCED)
			codec_synth_force_keyframe(s);
		if (codec_synth_next(s, &b, why, sizeof(why)) != 0)
			fail_msg("codec_synth_next: %s", why);
		assert_int_equal(b.msg[0].hdr.kind, PROTO_KIND_VIDEO);
		keep(&r->video[i], &b.msg[0]);
		for (size_t j = 1; j < b.count; j++)
			if (b.msg[j].hdr.kind == PROTO_KIND_AUDIO)
				keep(&r->audio[r->naudio++], &b.msg[j]);
	}
	codec_synth_destroy(s);
	return r;
}

static void run_free(struct run *r)
{
	for (int i = 0; i < FRAMES; i++)
		free(r->video[i].p);
	for (size_t i = 0; i < r->naudio; i++)
		free(r->audio[i].p);
	free(r);
}

/* A forced keyframe restarts the encoder's keyframe interval. */
static bool expect_key(int i)
{
	return i == 0 || (i >= FORCED && (i - FORCED) % FPS == 0);
}

/* The payload of the first NAL of `type` (after its header), unescaped. */
static size_t find_nal(const struct au *a, int codec, int type, uint8_t *out,
		       size_t cap)
{
	for (size_t i = 0; i + 3 < a->len; i++) {
		if (a->p[i] || a->p[i + 1] || a->p[i + 2] != 1)
			continue;
		const uint8_t *n = a->p + i + 3;
		int t = codec == PROTO_CODEC_H264 ? n[0] & 0x1f
						  : (n[0] >> 1) & 0x3f;
		size_t hdr = codec == PROTO_CODEC_H264 ? 1 : 2, len = 0;
		int zeros = 0;

		if (t != type)
			continue;
		for (size_t k = i + 3 + hdr; k < a->len && len < cap; k++) {
			if (zeros >= 2 && a->p[k] == 3) {
				zeros = 0;
				continue;
			}
			zeros = a->p[k] ? 0 : zeros + 1;
			out[len++] = a->p[k];
		}
		return len;
	}
	return 0;
}

static void expected_avc1(const struct au *a, char *s, size_t cap)
{
	uint8_t sps[64];

	assert_true(find_nal(a, PROTO_CODEC_H264, 7, sps, sizeof(sps)) >= 3);
	snprintf(s, cap, "avc1.%02x%02x%02x", sps[0], sps[1], sps[2]);
}

/* Annex E of ISO/IEC 14496-15, written out longhand from the raw
 * profile_tier_level bytes, independently of codec_inspect.c. */
static void expected_hvc1(const struct au *a, char *s, size_t cap)
{
	uint8_t sps[64], *ptl = sps + 1;
	uint32_t compat = 0, rev = 0;
	int n, last = 5;

	assert_true(find_nal(a, PROTO_CODEC_HEVC, 33, sps, sizeof(sps)) >= 13);
	for (int i = 0; i < 4; i++)
		compat = compat << 8 | ptl[1 + i];
	for (int i = 0; i < 32; i++)
		if (compat & (1u << i))
			rev |= 1u << (31 - i);
	while (last >= 0 && ptl[5 + last] == 0)
		last--;
	n = snprintf(s, cap, "hvc1.%s%d.%X.%c%d",
		     (const char *[]){ "", "A", "B", "C" }[ptl[0] >> 6],
		     ptl[0] & 0x1f, rev, (ptl[0] & 0x20) ? 'H' : 'L', ptl[11]);
	for (int i = 0; i <= last; i++)
		n += snprintf(s + n, cap - (size_t)n, ".%X", ptl[5 + i]);
}

static void check_stream(int codec)
{
	struct run *r = encode(codec);
	struct codec_video_inspector vi;
	struct codec_video_info info;
	char why[256], want[CODEC_STRING_MAX] = "";

	codec_video_inspector_init(&vi);
	for (int i = 0; i < FRAMES; i++) {
		const struct au *a = &r->video[i];
		int err = codec_video_inspect(&vi, codec, a->p, a->len, &info,
					      why, sizeof(why));

		if (err)
			fail_msg("frame %d (%zu bytes): %s", i, a->len, why);
		if (info.keyframe != expect_key(i) ||
		    info.keyframe != !!(a->flags & PROTO_F_KEYFRAME))
			fail_msg("frame %d: inspect says keyframe=%d, encoder "
				 "flags %#x, expected %d", i, info.keyframe,
				 a->flags, expect_key(i));
		assert_int_equal(info.has_config, info.keyframe);
		if (info.keyframe) {
			if (codec == PROTO_CODEC_H264)
				expected_avc1(a, want, sizeof(want));
			else
				expected_hvc1(a, want, sizeof(want));
		}
		assert_int_equal(info.width, W);
		assert_int_equal(info.height, H);
		assert_string_equal(info.codec_string, want);
	}
	print_message("  %s codec string %s, profile %d level %d\n",
		      proto_codec_name(codec), info.codec_string, info.profile,
		      info.level);
	if (codec == PROTO_CODEC_H264) {
		/* ultrafast turns CABAC off: Constrained Baseline. */
		assert_int_equal(info.profile, 66);
		assert_memory_equal(info.codec_string, "avc1.42c0", 9);
	} else {
		assert_int_equal(info.profile, 1);
		assert_memory_equal(info.codec_string, "hvc1.1.6.L", 10);
	}
	run_free(r);
}

static void expect_malformed(int codec, const uint8_t *p, size_t len,
			     const char *what)
{
	struct codec_video_info info;
	char why[256] = "";
	int err = codec_video_inspect(NULL, codec, p, len, &info, why,
				      sizeof(why));

	if (err != -PROTO_E_MALFORMED)
		fail_msg("%s: expected -PROTO_E_MALFORMED, got %d", what, err);
	if (why[0] == '\0')
		fail_msg("%s: refused without a reason", what);
}

/* Every prefix of a keyframe either inspects or is refused, never reads
 * past its end; cuts inside the SPS and before the slice are refused. */
static void check_truncation(int codec)
{
	struct run *r = encode(codec);
	const struct au *key = &r->video[0];
	uint8_t *copy;
	size_t refused = 0;

	for (size_t n = 0; n < key->len; n++) {
		struct codec_video_info info;
		char why[256];

		/* An exact-size copy, so ASan flags any overread. */
		copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, key->p, n);
		if (codec_video_inspect(NULL, codec, copy, n, &info, why,
					sizeof(why)) < 0)
			refused++;
		free(copy);
	}
	/* Everything up to the first slice header is refused. */
	assert_true(refused >= 30);
	expect_malformed(codec, key->p, 0, "empty access unit");
	expect_malformed(codec, NULL, 0, "NULL access unit");
	expect_malformed(codec, key->p, 4, "start code and header only");
	run_free(r);
}

/* The first packet libx264 makes of a gradient, with the given preset
 * and pixel format: the host's own settings only ever give Constrained
 * Baseline, so this covers the High profiles' SPS fields (chroma format,
 * bit depths). */
static struct au x264_keyframe(const char *preset, enum AVPixelFormat fmt)
{
	const AVCodec *c = avcodec_find_encoder_by_name("libx264");
	AVCodecContext *enc = avcodec_alloc_context3(c);
	AVFrame *f = av_frame_alloc();
	AVPacket *pkt = av_packet_alloc();
	struct au a = { NULL, 0, 0 };

	assert_true(c && enc && f && pkt);
	enc->width = W;
	enc->height = H;
	enc->pix_fmt = fmt;
	enc->time_base = (AVRational){ 1, FPS };
	av_opt_set(enc->priv_data, "preset", preset, 0);
	av_opt_set(enc->priv_data, "tune", "zerolatency", 0);
	assert_int_equal(avcodec_open2(enc, c, NULL), 0);
	f->format = fmt;
	f->width = W;
	f->height = H;
	assert_int_equal(av_frame_get_buffer(f, 0), 0);
	for (int p = 0; p < 3; p++)
		for (int y = 0; y < (p && fmt == AV_PIX_FMT_YUV420P ? H / 2 : H);
		     y++)
			memset(f->data[p] + y * f->linesize[p], p ? 128 : y,
			       (size_t)f->linesize[p]);
	f->pts = 0;
	assert_int_equal(avcodec_send_frame(enc, f), 0);
	assert_int_equal(avcodec_receive_packet(enc, pkt), 0);
	struct codec_msg m = { .data = pkt->data - PROTO_MEDIA_HDR_LEN };

	m.hdr.length = (uint32_t)pkt->size;
	keep(&a, &m);
	av_packet_free(&pkt);
	av_frame_free(&f);
	avcodec_free_context(&enc);
	return a;
}

static void test_h264_high_profiles(void **state)
{
	static const struct {
		const char *preset;
		enum AVPixelFormat fmt;
		int profile;
	} cases[] = {
		{ "medium", AV_PIX_FMT_YUV420P, 100 }, /* High */
		{ "medium", AV_PIX_FMT_YUV444P, 244 }, /* High 4:4:4 */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct au a = x264_keyframe(cases[i].preset, cases[i].fmt);
		struct codec_video_info info;
		char why[256], want[CODEC_STRING_MAX];

		if (codec_video_inspect(NULL, PROTO_CODEC_H264, a.p, a.len,
					&info, why, sizeof(why)))
			fail_msg("profile %d: %s", cases[i].profile, why);
		expected_avc1(&a, want, sizeof(want));
		print_message("  %s\n", info.codec_string);
		assert_string_equal(info.codec_string, want);
		assert_int_equal(info.profile, cases[i].profile);
		assert_true(info.keyframe && info.has_config);
		assert_int_equal(info.width, W);
		assert_int_equal(info.height, H);
		free(a.p);
	}
}

/* ---- hand-made SPSs for the syntax x264 never writes ----
 * Both were checked once with ffprobe, which reports the same sizes,
 * profiles and levels as the cases below. */

struct bitw {
	uint8_t b[64];
	size_t pos; /* in bits */
};

static void put_u(struct bitw *w, unsigned n, uint32_t v)
{
	while (n--) {
		if ((v >> n) & 1)
			w->b[w->pos >> 3] |= (uint8_t)(0x80 >> (w->pos & 7));
		w->pos++;
	}
}

static void put_ue(struct bitw *w, uint32_t v)
{
	unsigned bits = 0;

	while ((v + 1) >> (bits + 1))
		bits++;
	put_u(w, bits, 0);
	put_u(w, bits + 1, v + 1);
}

static void put_se(struct bitw *w, int32_t v)
{
	put_ue(w, v > 0 ? (uint32_t)(2 * v - 1) : (uint32_t)(-2 * v));
}

/* An access unit of SPS (with emulation prevention), a fixed PPS and the
 * first bytes of an IDR slice. */
static size_t sps_au(struct bitw *w, uint8_t *au)
{
	static const uint8_t tail[] = { 0, 0, 1, 0x68, 0xce, 0x38, 0x80,
					0, 0, 1, 0x65, 0x88, 0x84 };
	size_t n = 0, zeros = 0;

	memcpy(au, "\0\0\0\1\x67", 5);
	n = 5;
	put_u(w, 1, 1); /* rbsp_stop_one_bit */
	for (size_t i = 0; i < (w->pos + 7) / 8; i++) {
		if (zeros >= 2 && w->b[i] <= 3) {
			au[n++] = 3;
			zeros = 0;
		}
		zeros = w->b[i] ? 0 : zeros + 1;
		au[n++] = w->b[i];
	}
	memcpy(au + n, tail, sizeof(tail));
	return n + sizeof(tail);
}

/* 1920x1080 interlaced High profile with scaling lists and a crop. */
static void write_sps_interlaced(struct bitw *w)
{
	put_u(w, 8, 100);
	put_u(w, 8, 0);
	put_u(w, 8, 40);
	put_ue(w, 0);      /* sps id */
	put_ue(w, 1);      /* 4:2:0 */
	put_ue(w, 0);
	put_ue(w, 0);      /* 8-bit */
	put_u(w, 1, 0);
	put_u(w, 1, 1);    /* seq_scaling_matrix_present_flag */
	put_u(w, 1, 1);    /* list 0: two deltas, the second ends it */
	put_se(w, 5);
	put_se(w, -13);
	for (int i = 1; i < 6; i++)
		put_u(w, 1, 0);
	put_u(w, 1, 1);    /* list 6: "use the default" */
	put_se(w, -8);
	put_u(w, 1, 0);
	put_ue(w, 0);      /* log2_max_frame_num_minus4 */
	put_ue(w, 0);      /* poc type 0 */
	put_ue(w, 2);
	put_ue(w, 4);      /* max_num_ref_frames */
	put_u(w, 1, 0);
	put_ue(w, 119);    /* 120 macroblocks wide */
	put_ue(w, 33);     /* 34 map units: 68 macroblock rows in fields */
	put_u(w, 1, 0);    /* frame_mbs_only_flag */
	put_u(w, 1, 1);    /* mb_adaptive_frame_field_flag */
	put_u(w, 1, 1);
	put_u(w, 1, 1);    /* cropping: 2 units of 4 rows at the bottom */
	put_ue(w, 0);
	put_ue(w, 0);
	put_ue(w, 0);
	put_ue(w, 2);
	put_u(w, 1, 0);    /* no VUI */
}

/* 640x480 Constrained Baseline with picture order count type 1. */
static void write_sps_poc1(struct bitw *w)
{
	put_u(w, 8, 66);
	put_u(w, 8, 0xe0);
	put_u(w, 8, 30);
	put_ue(w, 0);
	put_ue(w, 0);
	put_ue(w, 1);      /* poc type 1 */
	put_u(w, 1, 0);
	put_se(w, -2);
	put_se(w, 3);
	put_ue(w, 2);      /* two offsets in the cycle */
	put_se(w, 1);
	put_se(w, -1);
	put_ue(w, 1);
	put_u(w, 1, 0);
	put_ue(w, 39);
	put_ue(w, 29);
	put_u(w, 1, 1);
	put_u(w, 1, 1);
	put_u(w, 1, 0);
	put_u(w, 1, 0);
}

static void test_h264_rare_sps(void **state)
{
	static const struct {
		void (*write)(struct bitw *);
		int w, h;
		const char *codec_string;
	} cases[] = {
		{ write_sps_interlaced, 1920, 1080, "avc1.640028" },
		{ write_sps_poc1, 640, 480, "avc1.42e01e" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bitw w = { { 0 }, 0 };
		uint8_t au[128];
		struct codec_video_info info;
		char why[256];
		size_t n;

		cases[i].write(&w);
		n = sps_au(&w, au);
		if (codec_video_inspect(NULL, PROTO_CODEC_H264, au, n, &info,
					why, sizeof(why)))
			fail_msg("%s: %s", cases[i].codec_string, why);
		if (info.width != cases[i].w || info.height != cases[i].h)
			fail_msg("%s: %dx%d, expected %dx%d",
				 cases[i].codec_string, info.width,
				 info.height, cases[i].w, cases[i].h);
		assert_string_equal(info.codec_string, cases[i].codec_string);
		assert_true(info.keyframe && info.has_config);
		/* Any cut inside the SPS is refused, never over-read (an
		 * exact-size copy lets ASan see). */
		for (size_t cut = 5; cut < n - 13; cut++) {
			uint8_t *copy = malloc(cut);

			assert_non_null(copy);
			memcpy(copy, au, cut);
			expect_malformed(PROTO_CODEC_H264, copy, cut, "cut SPS");
			free(copy);
		}
	}
}

/* Each test runs once per codec; its state points at the codec. */
static const int h264 = PROTO_CODEC_H264, hevc = PROTO_CODEC_HEVC;

static void test_stream(void **state)
{
	check_stream(*(const int *)*state);
}

static void test_truncated(void **state)
{
	check_truncation(*(const int *)*state);
}

static void test_garbage(void **state)
{
	static const uint8_t no_start[] = { 0x12, 0x34, 0x00, 0x00, 0x01, 0x65,
					    0x88 };
	static const uint8_t forbidden[] = { 0, 0, 0, 1, 0xE5, 0x88, 0x84 };
	static const uint8_t config_only[] = { 0, 0, 1, 0x68, 0xce, 0x38,
					       0x80 };
	static const uint8_t zeros[16];
	static const uint8_t bad_sps[] = { 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e,
					   0x00, 0x00, 0x00, 0x00, 0, 0, 1,
					   0x65, 0x88 };
	uint8_t rnd[512];
	struct codec_video_info info;
	char why[256];

	(void)state;
	expect_malformed(PROTO_CODEC_H264, no_start, sizeof(no_start),
			 "bytes before the first start code");
	expect_malformed(PROTO_CODEC_H264, forbidden, sizeof(forbidden),
			 "forbidden bit");
	expect_malformed(PROTO_CODEC_HEVC, forbidden, sizeof(forbidden),
			 "HEVC forbidden bit");
	expect_malformed(PROTO_CODEC_H264, config_only, sizeof(config_only),
			 "no slice");
	expect_malformed(PROTO_CODEC_H264, zeros, sizeof(zeros), "all zeros");
	expect_malformed(PROTO_CODEC_H264, bad_sps, sizeof(bad_sps),
			 "SPS of zeros");
	expect_malformed(PROTO_CODEC_OPUS, forbidden, sizeof(forbidden),
			 "Opus is not video");
	/* Random bytes: any answer is fine, as long as it is an answer. */
	srand(42);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand() % (int)sizeof(rnd));

		for (size_t i = 0; i < n; i++)
			rnd[i] = (uint8_t)(rand() % 4 == 0 ? 0 : rand());
		if (n > 4)
			memcpy(rnd, "\0\0\1", 3);
		codec_video_inspect(NULL, PROTO_CODEC_H264, rnd, n, &info,
				    why, sizeof(why));
		codec_video_inspect(NULL, PROTO_CODEC_HEVC, rnd, n, &info,
				    why, sizeof(why));
	}
}

static void test_opus(void **state)
{
	struct run *r = encode(PROTO_CODEC_H264);
	struct codec_audio_info info;
	char why[256];

	(void)state;
	/* 25 frames at 10 fps is 2.4 s of video: 121 audio frames. */
	assert_int_equal(r->naudio, (FRAMES - 1) * 100 / FPS / 2 + 1);
	for (size_t i = 0; i < r->naudio; i++) {
		if (codec_opus_inspect(r->audio[i].p, r->audio[i].len, &info,
				       why, sizeof(why)) != 0)
			fail_msg("audio packet %zu: %s", i, why);
		assert_int_equal(info.channels, 2);
		assert_int_equal(info.duration_us, 20000);
		assert_int_equal(info.samples, 960);
	}
	run_free(r);
}

static void expect_opus_refused(const uint8_t *p, size_t len, const char *w)
{
	struct codec_audio_info info;
	char why[256] = "";

	if (codec_opus_inspect(p, len, &info, why, sizeof(why)) !=
	    -PROTO_E_MALFORMED)
		fail_msg("%s: accepted", w);
	assert_true(why[0] != '\0');
}

static void test_opus_garbage(void **state)
{
	static const uint8_t too_long[] = { 0xFF, 0xFF, 0, 0 };
	static const uint8_t no_count[] = { 0x03 };
	static const uint8_t odd_cbr[] = { 0x01, 0xAA };

	(void)state;
	expect_opus_refused(NULL, 0, "NULL");
	expect_opus_refused(too_long, 0, "empty");
	expect_opus_refused(too_long, sizeof(too_long), "63 frames");
	expect_opus_refused(no_count, sizeof(no_count), "code 3, no count");
	expect_opus_refused(odd_cbr, sizeof(odd_cbr), "odd two-frame CBR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{ "test_stream_h264", test_stream, NULL, NULL, (void *)&h264 },
		{ "test_stream_hevc", test_stream, NULL, NULL, (void *)&hevc },
		{ "test_truncated_h264", test_truncated, NULL, NULL, (void *)&h264 },
		{ "test_truncated_hevc", test_truncated, NULL, NULL, (void *)&hevc },
		cmocka_unit_test(test_h264_high_profiles),
		cmocka_unit_test(test_h264_rare_sps),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_opus),
		cmocka_unit_test(test_opus_garbage),
	};

	codec_log_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
