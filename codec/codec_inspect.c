/*
 * codec_inspect: NAL scanning and SPS parsing for the relay's hot path.
 *
 * An access unit is walked once: each start code opens a NAL unit whose
 * header byte(s) say what it is.  Only a sequence parameter set is read
 * further, after removing its emulation-prevention bytes into a bounded
 * stack buffer, with a bit reader that flags (never performs) a read past
 * the end.  Everything the reader returns is range-checked before use.
 */
#include "codec/codec_inspect.h"

#include <limits.h>
#include <opus/opus.h>
#include <stdio.h>
#include <string.h>

#include "protocol/proto_error.h"
#include "protocol/proto_media.h"

/* Longest SPS prefix we unescape.  Real SPSs are tens of bytes; a huge
 * one can only come from a hostile host, and then reading past this
 * bound is reported as a truncated SPS. */
#define SPS_MAX 1024

/* ---- bit reader over an RBSP ---- */

struct bits {
	const uint8_t *p;
	size_t nbits;
	size_t pos;
	bool overrun;
};

static uint32_t bits_u(struct bits *b, unsigned n)
{
	uint32_t v = 0;

	if (n > b->nbits - b->pos || b->pos > b->nbits) {
		b->overrun = true;
		b->pos = b->nbits;
		return 0;
	}
	for (unsigned i = 0; i < n; i++, b->pos++)
		v = (v << 1) | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
	return v;
}

static void bits_skip(struct bits *b, size_t n)
{
	if (n > b->nbits - b->pos) {
		b->overrun = true;
		b->pos = b->nbits;
		return;
	}
	b->pos += n;
}

/* Exp-Golomb ue(v); values above 2^31 - 2 are refused as overrun, since
 * no field we read can legitimately be that large. */
static uint32_t bits_ue(struct bits *b)
{
	unsigned zeros = 0;

	while (!b->overrun && bits_u(b, 1) == 0) {
		if (++zeros > 30) {
			b->overrun = true;
			return 0;
		}
	}
	if (b->overrun)
		return 0;
	return ((1u << zeros) - 1) + bits_u(b, zeros);
}

static int32_t bits_se(struct bits *b)
{
	uint32_t k = bits_ue(b);

	return (k & 1) ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

/* Copies a NAL payload into dst without its 0x000003 emulation-prevention
 * bytes, at most cap bytes; returns the RBSP length. */
static size_t unescape(const uint8_t *src, size_t len, uint8_t *dst,
		       size_t cap)
{
	size_t n = 0, zeros = 0;

	for (size_t i = 0; i < len && n < cap; i++) {
		if (zeros >= 2 && src[i] == 3) {
			zeros = 0;
			continue;
		}
		zeros = src[i] == 0 ? zeros + 1 : 0;
		dst[n++] = src[i];
	}
	return n;
}

/* ---- Annex-B scanning ---- */

/* Finds the next 00 00 01 at or after from; returns len if none.  Looks
 * for the 01 with memchr, which is vectorised, since 01 bytes are rare in
 * coded data. */
static size_t find_start(const uint8_t *p, size_t len, size_t from)
{
	size_t i = from + 2;

	while (i < len) {
		const uint8_t *one = memchr(p + i, 1, len - i);

		if (one == NULL)
			return len;
		i = (size_t)(one - p);
		if (p[i - 1] == 0 && p[i - 2] == 0)
			return i - 2;
		i++;
	}
	return len;
}

struct nal {
	const uint8_t *p; /* first header byte */
	size_t len;       /* header + payload, trailing zeros removed */
};

/* ---- both codecs ---- */

/* Fills the picture size: the coded size minus the cropping (H.264) or
 * conformance (HEVC) window, whose offsets count in chroma samples, times
 * two vertically for H.264 field coding (vscale). */
static int set_size(struct codec_video_info *out, int64_t coded_w,
		    int64_t coded_h, uint32_t chroma, uint32_t sep_planes,
		    int64_t vscale, const uint32_t crop[4], const char *what,
		    char *why, size_t why_len)
{
	uint32_t array_type = sep_planes ? 0 : chroma;
	int64_t sub_w = array_type == 1 || array_type == 2 ? 2 : 1;
	int64_t sub_h = (array_type == 1 ? 2 : 1) * vscale;
	int64_t w = coded_w - sub_w * ((int64_t)crop[0] + crop[1]);
	int64_t h = coded_h - sub_h * ((int64_t)crop[2] + crop[3]);

	if (w <= 0 || h <= 0) {
		proto_err_set(why, why_len,
			      "%s SPS crops the picture to nothing", what);
		return -PROTO_E_MALFORMED;
	}
	out->width = (int)w;
	out->height = (int)h;
	return 0;
}

/* ---- H.264 ---- */

static bool h264_high_profile(uint32_t profile)
{
	switch (profile) {
	case 100: case 110: case 122: case 244: case 44: case 83: case 86:
	case 118: case 128: case 138: case 139: case 134: case 135:
		return true;
	default:
		return false;
	}
}

static void h264_skip_scaling_lists(struct bits *b, uint32_t chroma)
{
	unsigned lists = chroma == 3 ? 12 : 8;

	for (unsigned i = 0; i < lists && !b->overrun; i++) {
		if (!bits_u(b, 1))
			continue;
		int32_t last = 8, next = 8;
		unsigned size = i < 6 ? 16 : 64;

		for (unsigned j = 0; j < size && next != 0 && !b->overrun;
		     j++) {
			next = (last + bits_se(b) + 256) % 256;
			last = next == 0 ? last : next;
		}
	}
}

/* Reads from pic_order_cnt_type up to, not including, the picture size. */
static void h264_skip_poc(struct bits *b)
{
	uint32_t poc_type = bits_ue(b);

	if (poc_type == 0) {
		bits_ue(b); /* log2_max_pic_order_cnt_lsb_minus4 */
	} else if (poc_type == 1) {
		bits_skip(b, 1);
		bits_se(b);
		bits_se(b);
		uint32_t cycle = bits_ue(b);

		if (cycle > 255)
			b->overrun = true;
		for (uint32_t i = 0; i < cycle && !b->overrun; i++)
			bits_se(b);
	}
	bits_ue(b);       /* max_num_ref_frames */
	bits_skip(b, 1);  /* gaps_in_frame_num_value_allowed_flag */
}

static int h264_parse_sps(const struct nal *n, struct codec_video_info *out,
			  char *why, size_t why_len)
{
	uint8_t rbsp[SPS_MAX];
	struct bits b = { rbsp, 0, 0, false };
	uint32_t chroma = 1, sep_planes = 0;

	b.nbits = unescape(n->p + 1, n->len - 1, rbsp, sizeof(rbsp)) * 8;
	uint32_t profile = bits_u(&b, 8), flags = bits_u(&b, 8);
	uint32_t level = bits_u(&b, 8);

	bits_ue(&b); /* seq_parameter_set_id */
	if (h264_high_profile(profile)) {
		chroma = bits_ue(&b);
		if (chroma == 3)
			sep_planes = bits_u(&b, 1);
		bits_ue(&b);
		bits_ue(&b);
		bits_skip(&b, 1);
		if (bits_u(&b, 1))
			h264_skip_scaling_lists(&b, chroma);
	}
	bits_ue(&b); /* log2_max_frame_num_minus4 */
	h264_skip_poc(&b);
	uint32_t w_mbs = bits_ue(&b) + 1, h_units = bits_ue(&b) + 1;
	uint32_t frame_mbs_only = bits_u(&b, 1);

	if (!frame_mbs_only)
		bits_skip(&b, 1);
	bits_skip(&b, 1); /* direct_8x8_inference_flag */
	uint32_t crop[4] = { 0, 0, 0, 0 };

	if (bits_u(&b, 1))
		for (int i = 0; i < 4; i++)
			crop[i] = bits_ue(&b);
	if (b.overrun) {
		proto_err_set(why, why_len, "H.264 SPS is truncated");
		return -PROTO_E_MALFORMED;
	}
	if (chroma > 3 || w_mbs > 1024 || h_units > 1024) {
		proto_err_set(why, why_len,
			      "H.264 SPS has an impossible size or chroma "
			      "format (%u x %u macroblocks, chroma %u)",
			      w_mbs, h_units, chroma);
		return -PROTO_E_MALFORMED;
	}
	if (set_size(out, (int64_t)w_mbs * 16,
		     (int64_t)h_units * 16 * (2 - frame_mbs_only), chroma,
		     sep_planes, 2 - frame_mbs_only, crop, "H.264", why,
		     why_len))
		return -PROTO_E_MALFORMED;
	out->profile = (int)profile;
	out->level = (int)level;
	snprintf(out->codec_string, sizeof(out->codec_string),
		 "avc1.%02x%02x%02x", profile, flags, level);
	return 0;
}

enum {
	H264_NAL_SLICE = 1,
	H264_NAL_IDR = 5,
	H264_NAL_SPS = 7,
	H264_NAL_PPS = 8,
};

/* ---- HEVC ---- */

enum {
	HEVC_NAL_IRAP_FIRST = 16,
	HEVC_NAL_IRAP_LAST = 23,
	HEVC_NAL_VCL_LAST = 31,
	HEVC_NAL_VPS = 32,
	HEVC_NAL_SPS = 33,
	HEVC_NAL_PPS = 34,
};

struct hevc_ptl {
	uint32_t space, tier, profile, compat, level;
	uint8_t constraints[6];
};

static void hevc_read_ptl(struct bits *b, uint32_t max_sub_layers_minus1,
			  struct hevc_ptl *ptl)
{
	uint8_t sub_profile[8] = { 0 }, sub_level[8] = { 0 };

	ptl->space = bits_u(b, 2);
	ptl->tier = bits_u(b, 1);
	ptl->profile = bits_u(b, 5);
	ptl->compat = bits_u(b, 32);
	for (int i = 0; i < 6; i++)
		ptl->constraints[i] = (uint8_t)bits_u(b, 8);
	ptl->level = bits_u(b, 8);
	for (uint32_t i = 0; i < max_sub_layers_minus1; i++) {
		sub_profile[i] = (uint8_t)bits_u(b, 1);
		sub_level[i] = (uint8_t)bits_u(b, 1);
	}
	if (max_sub_layers_minus1 > 0)
		bits_skip(b, 2 * (8 - max_sub_layers_minus1));
	for (uint32_t i = 0; i < max_sub_layers_minus1; i++)
		bits_skip(b, (sub_profile[i] ? 88 : 0) + (sub_level[i] ? 8 : 0));
}

/* ISO/IEC 14496-15 Annex E: the compatibility flags in reverse bit order,
 * and the constraint bytes with trailing zero bytes left out. */
static void hevc_codec_string(const struct hevc_ptl *ptl, char *s,
			      size_t cap)
{
	static const char *const space[] = { "", "A", "B", "C" };
	uint32_t rev = 0;
	int last = 5, n;

	for (int i = 0; i < 32; i++)
		rev |= ((ptl->compat >> i) & 1u) << (31 - i);
	while (last >= 0 && ptl->constraints[last] == 0)
		last--;
	n = snprintf(s, cap, "hvc1.%s%u.%X.%c%u", space[ptl->space & 3],
		     ptl->profile, rev, ptl->tier ? 'H' : 'L', ptl->level);
	for (int i = 0; i <= last && n > 0 && (size_t)n < cap; i++)
		n += snprintf(s + n, cap - (size_t)n, ".%X",
			      ptl->constraints[i]);
}

static int hevc_parse_sps(const struct nal *n, struct codec_video_info *out,
			  char *why, size_t why_len)
{
	uint8_t rbsp[SPS_MAX];
	struct bits b = { rbsp, 0, 0, false };
	struct hevc_ptl ptl;
	uint32_t sep_planes = 0, conf[4] = { 0, 0, 0, 0 };

	b.nbits = unescape(n->p + 2, n->len - 2, rbsp, sizeof(rbsp)) * 8;
	bits_skip(&b, 4); /* sps_video_parameter_set_id */
	uint32_t max_sub_layers_minus1 = bits_u(&b, 3);

	bits_skip(&b, 1);
	if (max_sub_layers_minus1 > 6) {
		proto_err_set(why, why_len,
			      "HEVC SPS has %u sub-layers (at most 7)",
			      max_sub_layers_minus1 + 1);
		return -PROTO_E_MALFORMED;
	}
	hevc_read_ptl(&b, max_sub_layers_minus1, &ptl);
	bits_ue(&b); /* sps_seq_parameter_set_id */
	uint32_t chroma = bits_ue(&b);

	if (chroma == 3)
		sep_planes = bits_u(&b, 1);
	uint32_t w = bits_ue(&b), h = bits_ue(&b);

	if (bits_u(&b, 1))
		for (int i = 0; i < 4; i++)
			conf[i] = bits_ue(&b);
	if (b.overrun) {
		proto_err_set(why, why_len, "HEVC SPS is truncated");
		return -PROTO_E_MALFORMED;
	}
	if (chroma > 3 || w == 0 || h == 0 || w > 16888 || h > 16888) {
		proto_err_set(why, why_len,
			      "HEVC SPS has an impossible size or chroma "
			      "format (%u x %u, chroma %u)", w, h, chroma);
		return -PROTO_E_MALFORMED;
	}
	if (set_size(out, w, h, chroma, sep_planes, 1, conf, "HEVC", why,
		     why_len))
		return -PROTO_E_MALFORMED;
	out->profile = (int)ptl.profile;
	out->level = (int)ptl.level;
	hevc_codec_string(&ptl, out->codec_string, sizeof(out->codec_string));
	return 0;
}

/* ---- access units ---- */

struct au_scan {
	bool slice, key, vps, sps, pps;
};

static int scan_h264_nal(const struct nal *n, struct au_scan *s,
			 struct codec_video_info *out, char *why,
			 size_t why_len)
{
	int type = n->p[0] & 0x1f;

	if (type >= H264_NAL_SLICE && type <= H264_NAL_IDR) {
		if (n->len < 2) {
			proto_err_set(why, why_len,
				      "H.264 slice NAL has no payload");
			return -PROTO_E_MALFORMED;
		}
		s->slice = true;
		s->key |= type == H264_NAL_IDR;
	} else if (type == H264_NAL_SPS) {
		s->sps = true;
		return h264_parse_sps(n, out, why, why_len);
	} else if (type == H264_NAL_PPS) {
		s->pps = true;
	}
	return 0;
}

static int scan_hevc_nal(const struct nal *n, struct au_scan *s,
			 struct codec_video_info *out, char *why,
			 size_t why_len)
{
	if (n->len < 2) {
		proto_err_set(why, why_len, "HEVC NAL header is truncated");
		return -PROTO_E_MALFORMED;
	}
	int type = (n->p[0] >> 1) & 0x3f;

	if ((n->p[1] & 7) == 0) {
		proto_err_set(why, why_len,
			      "HEVC NAL header has temporal id plus 1 of 0");
		return -PROTO_E_MALFORMED;
	}
	if (type <= HEVC_NAL_VCL_LAST) {
		if (n->len < 3) {
			proto_err_set(why, why_len,
				      "HEVC slice NAL has no payload");
			return -PROTO_E_MALFORMED;
		}
		s->slice = true;
		s->key |= type >= HEVC_NAL_IRAP_FIRST &&
			  type <= HEVC_NAL_IRAP_LAST;
	} else if (type == HEVC_NAL_VPS) {
		s->vps = true;
	} else if (type == HEVC_NAL_SPS) {
		s->sps = true;
		return hevc_parse_sps(n, out, why, why_len);
	} else if (type == HEVC_NAL_PPS) {
		s->pps = true;
	}
	return 0;
}

static bool is_vcl(int codec, uint8_t hdr)
{
	if (codec == PROTO_CODEC_H264)
		return (hdr & 0x1f) >= H264_NAL_SLICE &&
		       (hdr & 0x1f) <= H264_NAL_IDR;
	return ((hdr >> 1) & 0x3f) <= HEVC_NAL_VCL_LAST;
}

static int scan_nal(int codec, const struct nal *n, struct au_scan *s,
		    struct codec_video_info *out, char *why, size_t why_len)
{
	if (n->p[0] & 0x80) {
		proto_err_set(why, why_len, "a NAL unit has its forbidden "
			      "bit set");
		return -PROTO_E_MALFORMED;
	}
	return codec == PROTO_CODEC_H264
		       ? scan_h264_nal(n, s, out, why, why_len)
		       : scan_hevc_nal(n, s, out, why, why_len);
}

/* Walks the NAL units up to the first slice.  Parameter sets and SEI come
 * before it, and every slice of a picture is of the same kind, so the
 * slice data (nearly all of the bytes) is never scanned: the cost does
 * not grow with the bitrate. */
static int scan_au(int codec, const uint8_t *au, size_t len,
		   struct au_scan *s, struct codec_video_info *out, char *why,
		   size_t why_len)
{
	size_t pos = find_start(au, len, 0);
	int err;

	for (size_t i = 0; i < pos; i++) {
		if (au[i] != 0) {
			proto_err_set(why, why_len, "access unit does not "
				      "begin with an Annex-B start code");
			return -PROTO_E_MALFORMED;
		}
	}
	while (pos + 3 < len) {
		size_t begin = pos + 3, end;
		struct nal n = { au + begin, len - begin };

		if (is_vcl(codec, n.p[0]))
			return scan_nal(codec, &n, s, out, why, why_len);
		end = pos = find_start(au, len, begin);
		/* Zeros before the next start code belong to it (4-byte
		 * start codes, trailing_zero_8bits), not to this NAL. */
		while (end > begin && au[end - 1] == 0)
			end--;
		n.len = end - begin;
		if (n.len == 0)
			continue; /* stray start code; harmless */
		err = scan_nal(codec, &n, s, out, why, why_len);
		if (err)
			return err;
	}
	return 0;
}

void codec_video_inspector_init(struct codec_video_inspector *vi)
{
	memset(vi, 0, sizeof(*vi));
}

static int inspect_au(int codec, const uint8_t *au, size_t len,
		      struct au_scan *s, struct codec_video_info *out,
		      char *why, size_t why_len)
{
	int err;

	if (codec != PROTO_CODEC_H264 && codec != PROTO_CODEC_HEVC) {
		proto_err_set(why, why_len, "video codec %d cannot be "
			      "inspected (H.264 or HEVC only)", codec);
		return -PROTO_E_MALFORMED;
	}
	if (au == NULL || len == 0) {
		proto_err_set(why, why_len, "video access unit is empty");
		return -PROTO_E_MALFORMED;
	}
	err = scan_au(codec, au, len, s, out, why, why_len);
	if (err)
		return err;
	if (!s->slice) {
		proto_err_set(why, why_len, "%s access unit has no slice",
			      proto_codec_name(codec));
		return -PROTO_E_MALFORMED;
	}
	out->keyframe = s->key;
	out->has_config = s->sps && s->pps &&
			  (s->vps || codec == PROTO_CODEC_H264);
	return 0;
}

int codec_video_inspect(struct codec_video_inspector *vi, int proto_codec,
			const uint8_t *au, size_t len,
			struct codec_video_info *out, char *why,
			size_t why_len)
{
	struct au_scan s = { false, false, false, false, false };
	int err;

	memset(out, 0, sizeof(*out));
	err = inspect_au(proto_codec, au, len, &s, out, why, why_len);
	if (err) {
		memset(out, 0, sizeof(*out)); /* an SPS may have been read */
		return err;
	}
	if (vi == NULL)
		return 0;
	if (s.sps) {
		vi->codec = proto_codec;
		vi->last = *out;
	} else if (vi->codec == proto_codec) {
		/* The stream's facts, with this AU's own flags. */
		bool key = out->keyframe, config = out->has_config;

		*out = vi->last;
		out->keyframe = key;
		out->has_config = config;
	}
	return 0;
}

int codec_opus_inspect(const uint8_t *pkt, size_t len,
		       struct codec_audio_info *out, char *why,
		       size_t why_len)
{
	const unsigned char *frames[48];
	opus_int16 sizes[48];
	unsigned char toc;
	int nframes, spf;

	memset(out, 0, sizeof(*out));
	if (pkt == NULL || len == 0) {
		proto_err_set(why, why_len, "Opus packet is empty");
		return -PROTO_E_MALFORMED;
	}
	if (len > INT_MAX) {
		proto_err_set(why, why_len, "Opus packet is too large");
		return -PROTO_E_MALFORMED;
	}
	nframes = opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes,
				    NULL);
	if (nframes <= 0) {
		proto_err_set(why, why_len, "not a valid Opus packet (%s)",
			      nframes < 0 ? opus_strerror(nframes)
					  : "no frames");
		return -PROTO_E_MALFORMED;
	}
	spf = opus_packet_get_samples_per_frame(pkt, 48000);
	out->frames = nframes;
	out->samples = nframes * spf;
	out->channels = opus_packet_get_nb_channels(pkt);
	out->duration_us = (int64_t)out->samples * 1000000 / 48000;
	if (out->samples > 5760) {
		proto_err_set(why, why_len, "Opus packet lasts %d samples "
			      "(over 120 ms)", out->samples);
		return -PROTO_E_MALFORMED;
	}
	return 0;
}
