/*
 * codec_draw: the picture of a synthetic desktop, in RGB24.
 *
 * A gradient wallpaper, a task bar with a clock, a few windows with title
 * bars that drift and bounce, a line of text per window, a frame counter
 * and an arrow cursor, drawn with a built-in 5x7 bitmap font.  Each frame
 * differs from the last in small regions, like a real desktop, so the
 * encoder produces realistic keyframe and delta sizes.  Used only by
 * codec_synth.
 */
#ifndef ASP_CODEC_DRAW_H
#define ASP_CODEC_DRAW_H

#include <stdint.h>

/* Where the cursor is at frame n (the same path codec_synth reports in
 * cursor messages). */
void codec_draw_cursor_pos(int width, int height, int64_t n, int *x, int *y);

/* Draws frame n into rgb (width * height * 3 bytes, rows of `stride`
 * bytes).  wall_s is the clock shown in the task bar (seconds since the
 * epoch).  width and height must be at least 16. */
void codec_draw_frame(uint8_t *rgb, int stride, int width, int height,
		      int64_t n, int64_t wall_s);

#endif
