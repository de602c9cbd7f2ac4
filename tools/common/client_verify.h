/*
 * client_verify: checks the media a viewer receives and sums it up.
 *
 * For every media message: the header decodes (proto_media_decode); a
 * pattern payload (codec 0 video or audio, see client_pattern.h) matches
 * its CRC; per stream the sequence number goes up by one, and a jump (a
 * "gap": the relay dropped messages for us, or the host restarted) is
 * counted.  A gap must not break video: a pattern frame must refer to
 * the last non-discardable frame received (its ref field), so dropped
 * discardable frames are fine and a lost keyframe is not; for coded video
 * (when check_gaps is set: the caller does not decode) a gap must be
 * followed by a keyframe.  The first video message is a keyframe.  Latency is receive wall clock minus capture time, over
 * the messages captured after the join: what the relay replays from its
 * cache on join is old by design and would only measure the keyframe
 * interval.
 *
 * The summary line is what the tests parse:
 *   metrics: frames=N bytes=N gaps=N errors=N latency_p50_ms=X
 *            latency_p99_ms=Y latency_max_ms=Z first_keyframe=1 cached=N
 * frames and bytes count video messages (bytes include the header);
 * cached counts the video messages captured before the join.
 */
#ifndef ASP_CLIENT_VERIFY_H
#define ASP_CLIENT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto_media.h"

#define CLIENT_VERIFY_STREAMS 16
/* Latency samples kept for percentiles (about 15 hours at 60 fps). */
#define CLIENT_VERIFY_MAX_SAMPLES (4u * 1024 * 1024)

struct client_verify_stream {
	bool used;
	uint16_t id;
	uint32_t last_seq;
	bool have_ref;     /* a non-discardable message was received */
	uint32_t last_ref; /* ... and this was the latest one's seq */
};

struct client_verify {
	struct client_verify_stream streams[CLIENT_VERIFY_STREAMS];
	uint64_t frames, bytes, messages, gaps, errors;
	int first_keyframe; /* -1 no video yet, 0 no, 1 yes */
	int64_t live_from_us; /* capture times before this are cached */
	uint64_t cached;
	uint32_t *lat_us;
	size_t lat_n, lat_cap;
	int64_t lat_max_us;
	/* Coded video after a gap must be a keyframe (set by default; a
	 * caller that decodes clears it and lets the decoder judge). */
	bool check_gaps;
};

void client_verify_init(struct client_verify *v);
void client_verify_free(struct client_verify *v);

/* Marks the join: messages captured before now_us (wall clock) count as
 * the relay's cache and are left out of the latency figures. */
void client_verify_joined(struct client_verify *v, int64_t now_us);

/* Checks one whole binary message received at now_us (wall clock).
 * Returns 0 with the header in *hdr, or -1 if the header does not decode
 * (*hdr is then unusable); either way every problem found is counted in
 * errors and printed on stderr as "verify: ...". */
int client_verify_media(struct client_verify *v, const uint8_t *msg,
			size_t len, int64_t now_us,
			struct proto_media_hdr *hdr);

/* Counts and prints a problem found elsewhere (e.g. a decode failure). */
void client_verify_error(struct client_verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints the metrics line on stdout (flushed). */
void client_verify_print(struct client_verify *v);

#endif
