/*
 * client_verify: per-stream sequence, keyframe, CRC and latency checks
 * of received media (see client_verify.h).
 */
#include "tools/common/client_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/common/client_cli.h"
#include "tools/common/client_pattern.h"

/* Past this many, problems are still counted but no longer printed. */
#define CLIENT_VERIFY_PRINT_MAX 20

void client_verify_init(struct client_verify *v)
{
	memset(v, 0, sizeof(*v));
	v->first_keyframe = -1;
	v->check_gaps = true;
}

void client_verify_free(struct client_verify *v)
{
	free(v->lat_us);
	v->lat_us = NULL;
	v->lat_n = v->lat_cap = 0;
}

void client_verify_joined(struct client_verify *v, int64_t now_us)
{
	v->live_from_us = now_us;
}

void client_verify_error(struct client_verify *v, const char *fmt, ...)
{
	va_list ap;

	if (v->errors++ >= CLIENT_VERIFY_PRINT_MAX)
		return;
	fputs("verify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static struct client_verify_stream *client_verify_stream(
	struct client_verify *v, uint16_t id)
{
	struct client_verify_stream *s;
	size_t i;

	for (i = 0; i < CLIENT_VERIFY_STREAMS; i++) {
		s = &v->streams[i];
		if (s->used && s->id == id)
			return s;
		if (!s->used) {
			s->used = true;
			s->id = id;
			/* The first message of a stream follows nothing. */
			s->last_seq = 0;
			return s;
		}
	}
	return NULL;
}

/* Sequence check for one stream: a jump is a gap (dropped for us, or a
 * restarted host).  Whether video survived it is judged by the caller. */
static bool client_verify_seq(struct client_verify *v,
			      struct client_verify_stream *s,
			      const struct proto_media_hdr *h, bool first)
{
	bool gap = !first && h->seq != (uint32_t)(s->last_seq + 1);

	if (gap)
		v->gaps++;
	s->last_seq = h->seq;
	return gap;
}

/* A pattern video frame is decodable if it is a keyframe or refers to
 * the last non-discardable frame we received. */
static void client_verify_ref(struct client_verify *v,
			      struct client_verify_stream *s,
			      const struct proto_media_hdr *h, uint32_t ref)
{
	if (!(h->flags & PROTO_F_KEYFRAME) &&
	    (!s->have_ref || ref != s->last_ref)) {
		if (s->have_ref)
			client_verify_error(v, "stream %u: seq %u refers to "
					    "seq %u, but the last reference "
					    "received is seq %u", h->stream,
					    h->seq, ref, s->last_ref);
		else
			client_verify_error(v, "stream %u: seq %u refers to "
					    "seq %u, which never arrived",
					    h->stream, h->seq, ref);
	}
}

static void client_verify_track_ref(struct client_verify_stream *s,
				    const struct proto_media_hdr *h)
{
	if (!(h->flags & PROTO_F_DISCARDABLE)) {
		s->have_ref = true;
		s->last_ref = h->seq;
	}
}

static bool client_verify_first_of(struct client_verify *v, uint16_t id)
{
	size_t i;

	for (i = 0; i < CLIENT_VERIFY_STREAMS; i++)
		if (v->streams[i].used && v->streams[i].id == id)
			return false;
	return true;
}

static void client_verify_latency(struct client_verify *v,
				  const struct proto_media_hdr *h,
				  int64_t now_us)
{
	int64_t lat = now_us - (int64_t)h->capture_us;
	uint32_t *p;

	if ((int64_t)h->capture_us < v->live_from_us) {
		v->cached++;
		return;
	}
	/* Same host, same clock: a negative age is a clock step. */
	if (lat < 0)
		lat = 0;
	if (lat > v->lat_max_us)
		v->lat_max_us = lat;
	if (v->lat_n == v->lat_cap) {
		size_t cap = v->lat_cap ? v->lat_cap * 2 : 4096;

		if (cap > CLIENT_VERIFY_MAX_SAMPLES)
			return;
		p = realloc(v->lat_us, cap * sizeof(*p));
		if (!p)
			return;
		v->lat_us = p;
		v->lat_cap = cap;
	}
	v->lat_us[v->lat_n++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
}

static void client_verify_video(struct client_verify *v,
				const struct proto_media_hdr *h, size_t len,
				int64_t now_us)
{
	v->frames++;
	v->bytes += len;
	if (v->first_keyframe < 0) {
		v->first_keyframe = !!(h->flags & PROTO_F_KEYFRAME);
		if (!v->first_keyframe)
			client_verify_error(v, "first video message (seq %u) "
					    "is not a keyframe", h->seq);
	}
	client_verify_latency(v, h, now_us);
}

/* The pattern check for codec 0 video and audio: 0 with *ref, or -1. */
static int client_verify_pattern(struct client_verify *v, const uint8_t *msg,
				 const struct proto_media_hdr *h,
				 uint32_t *ref)
{
	char why[256];

	if (client_pattern_check(msg + PROTO_MEDIA_HDR_LEN, h->length,
				 h->stream, h->seq, ref, why, sizeof(why))) {
		client_verify_error(v, "%s", why);
		return -1;
	}
	return 0;
}

static void client_verify_stream_msg(struct client_verify *v,
				     const uint8_t *msg,
				     const struct proto_media_hdr *h)
{
	bool first = client_verify_first_of(v, h->stream);
	struct client_verify_stream *s = client_verify_stream(v, h->stream);
	bool media = h->kind == PROTO_KIND_VIDEO || h->kind == PROTO_KIND_AUDIO;
	bool video = h->kind == PROTO_KIND_VIDEO, gap;
	uint32_t ref;

	if (!s) {
		client_verify_error(v, "more than %d streams",
				    CLIENT_VERIFY_STREAMS);
		return;
	}
	gap = client_verify_seq(v, s, h, first);
	if (media && h->codec == PROTO_CODEC_NONE) {
		if (!client_verify_pattern(v, msg, h, &ref) && video)
			client_verify_ref(v, s, h, ref);
	} else if (video && gap && v->check_gaps &&
		   !(h->flags & PROTO_F_KEYFRAME)) {
		client_verify_error(v, "stream %u: seq %u after a gap is not "
				    "a keyframe", h->stream, h->seq);
	}
	if (video)
		client_verify_track_ref(s, h);
}

int client_verify_media(struct client_verify *v, const uint8_t *msg,
			size_t len, int64_t now_us,
			struct proto_media_hdr *hdr)
{
	char why[256];

	v->messages++;
	if (proto_media_decode(msg, len, hdr, why, sizeof(why))) {
		client_verify_error(v, "bad header: %s", why);
		return -1;
	}
	client_verify_stream_msg(v, msg, hdr);
	if (hdr->kind == PROTO_KIND_VIDEO)
		client_verify_video(v, hdr, len, now_us);
	return 0;
}

static int client_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in milliseconds. */
static double client_pct_ms(const uint32_t *s, size_t n, double pct)
{
	size_t rank;

	if (!n)
		return 0.0;
	rank = (size_t)(pct / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return s[rank - 1] / 1000.0;
}

void client_verify_print(struct client_verify *v)
{
	if (v->lat_n)
		qsort(v->lat_us, v->lat_n, sizeof(*v->lat_us), client_cmp_u32);
	client_say("metrics: frames=%llu bytes=%llu gaps=%llu errors=%llu "
		   "latency_p50_ms=%.3f latency_p99_ms=%.3f "
		   "latency_max_ms=%.3f first_keyframe=%d cached=%llu",
		   (unsigned long long)v->frames,
		   (unsigned long long)v->bytes,
		   (unsigned long long)v->gaps,
		   (unsigned long long)v->errors,
		   client_pct_ms(v->lat_us, v->lat_n, 50),
		   client_pct_ms(v->lat_us, v->lat_n, 99),
		   v->lat_max_us / 1000.0,
		   v->first_keyframe > 0, (unsigned long long)v->cached);
}
