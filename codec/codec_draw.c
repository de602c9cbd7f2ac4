/*
 * codec_draw: a desktop painted with rectangles and a 5x7 font.
 *
 * Everything is clipped to the picture, so any size from 16x16 up is
 * safe; positions are pure functions of the frame number, so a run is
 * reproducible.
 */
#include "codec/codec_draw.h"

#include <stdio.h>
#include <string.h>

struct canvas {
	uint8_t *rgb;
	int stride, w, h;
};

struct rgb {
	uint8_t r, g, b;
};

/* Rows of 5 bits, most significant bit leftmost. */
static const uint8_t font_digits[10][7] = {
	{ 0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E },
	{ 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E },
	{ 0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F },
	{ 0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E },
	{ 0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02 },
	{ 0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E },
	{ 0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E },
	{ 0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
	{ 0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E },
	{ 0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C },
};

static const uint8_t font_letters[26][7] = {
	{ 0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11 },
	{ 0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E },
	{ 0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E },
	{ 0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C },
	{ 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F },
	{ 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10 },
	{ 0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F },
	{ 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 },
	{ 0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E },
	{ 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C },
	{ 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 },
	{ 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F },
	{ 0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11 },
	{ 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 },
	{ 0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E },
	{ 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10 },
	{ 0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D },
	{ 0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11 },
	{ 0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E },
	{ 0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 },
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E },
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04 },
	{ 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A },
	{ 0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11 },
	{ 0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04 },
	{ 0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F },
};

static const uint8_t font_colon[7] = { 0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0 };
static const uint8_t font_dot[7] = { 0, 0, 0, 0, 0, 0x0C, 0x0C };
static const uint8_t font_dash[7] = { 0, 0, 0, 0x1F, 0, 0, 0 };
static const uint8_t font_blank[7] = { 0, 0, 0, 0, 0, 0, 0 };

static const uint8_t *glyph(char c)
{
	if (c >= '0' && c <= '9')
		return font_digits[c - '0'];
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	if (c >= 'A' && c <= 'Z')
		return font_letters[c - 'A'];
	if (c == ':')
		return font_colon;
	if (c == '.')
		return font_dot;
	if (c == '-')
		return font_dash;
	return font_blank;
}

static void fill_rect(const struct canvas *cv, int x, int y, int w, int h,
		      struct rgb c)
{
	int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int x1 = x + w > cv->w ? cv->w : x + w;
	int y1 = y + h > cv->h ? cv->h : y + h;

	for (int j = y0; j < y1; j++) {
		uint8_t *p = cv->rgb + (size_t)j * (size_t)cv->stride +
			     (size_t)x0 * 3;

		for (int i = x0; i < x1; i++, p += 3) {
			p[0] = c.r;
			p[1] = c.g;
			p[2] = c.b;
		}
	}
}

/* Text at (x, y), each font pixel drawn as a scale x scale square. */
static void draw_text(const struct canvas *cv, int x, int y, int scale,
		      const char *s, struct rgb c)
{
	for (; *s; s++, x += 6 * scale) {
		const uint8_t *g = glyph(*s);

		for (int row = 0; row < 7; row++)
			for (int col = 0; col < 5; col++)
				if (g[row] & (0x10 >> col))
					fill_rect(cv, x + col * scale,
						  y + row * scale, scale,
						  scale, c);
	}
}

static void draw_wallpaper(const struct canvas *cv)
{
	for (int j = 0; j < cv->h; j++) {
		struct rgb c = { (uint8_t)(20 + 40 * j / cv->h),
				 (uint8_t)(60 + 60 * j / cv->h),
				 (uint8_t)(110 + 80 * j / cv->h) };

		fill_rect(cv, 0, j, cv->w, 1, c);
	}
}

/* A coordinate bouncing between 0 and span at `speed` pixels a frame. */
static int bounce(int64_t n, int speed, int phase, int span)
{
	if (span <= 0)
		return 0;
	int64_t t = (n * speed + phase) % (2 * (int64_t)span);

	return (int)(t < span ? t : 2 * span - t);
}

static void draw_window(const struct canvas *cv, int idx, int64_t n)
{
	static const struct rgb title[] = {
		{ 40, 90, 160 }, { 150, 60, 60 }, { 60, 130, 70 },
	};
	static const char *const text[] = {
		"ASP RELAY TEST", "SHARED DESKTOP", "HELLO VIEWER",
	};
	int ww = cv->w * 2 / 5, wh = cv->h * 2 / 5;
	int scale = cv->h >= 360 ? 2 : 1;
	int x = bounce(n, 2 + idx, idx * 97, cv->w - ww);
	int y = bounce(n, 1 + idx, idx * 53, cv->h - wh - 12 * scale);
	char line[32];

	fill_rect(cv, x + 4, y + 4, ww, wh, (struct rgb){ 10, 20, 40 });
	fill_rect(cv, x, y, ww, wh, (struct rgb){ 235, 235, 230 });
	fill_rect(cv, x, y, ww, 10 * scale, title[idx % 3]);
	snprintf(line, sizeof(line), "WINDOW %d", idx + 1);
	draw_text(cv, x + 3 * scale, y + 2 * scale, scale, line,
		  (struct rgb){ 255, 255, 255 });
	draw_text(cv, x + 4 * scale, y + 16 * scale, scale, text[idx % 3],
		  (struct rgb){ 20, 20, 20 });
	/* A scrolling row of digits, the kind of change a terminal makes. */
	snprintf(line, sizeof(line), "LINE %06lld", (long long)(n / 3 + idx));
	draw_text(cv, x + 4 * scale, y + 28 * scale, scale, line,
		  (struct rgb){ 20, 80, 20 });
}

static void draw_taskbar(const struct canvas *cv, int64_t n, int64_t wall_s)
{
	int scale = cv->h >= 360 ? 2 : 1, bar = 12 * scale;
	int64_t day = ((wall_s % 86400) + 86400) % 86400;
	char s[48];

	fill_rect(cv, 0, cv->h - bar, cv->w, bar, (struct rgb){ 30, 30, 36 });
	snprintf(s, sizeof(s), "%02d:%02d:%02d", (int)(day / 3600),
		 (int)(day / 60 % 60), (int)(day % 60));
	draw_text(cv, cv->w - 50 * scale, cv->h - bar + 3 * scale, scale, s,
		  (struct rgb){ 240, 240, 240 });
	snprintf(s, sizeof(s), "FRAME %lld", (long long)n);
	draw_text(cv, 4 * scale, cv->h - bar + 3 * scale, scale, s,
		  (struct rgb){ 250, 210, 80 });
}

void codec_draw_cursor_pos(int width, int height, int64_t n, int *x, int *y)
{
	*x = bounce(n, 5, 11, width - 12);
	*y = bounce(n, 3, 29, height - 18);
}

/* A 12x18 arrow: black outline, white inside. */
static void draw_cursor(const struct canvas *cv, int x, int y)
{
	for (int row = 0; row < 18; row++) {
		int len = row < 12 ? row + 1 : 5;

		fill_rect(cv, x, y + row, len, 1, (struct rgb){ 0, 0, 0 });
		if (len > 2)
			fill_rect(cv, x + 1, y + row, len - 2, 1,
				  (struct rgb){ 255, 255, 255 });
	}
}

void codec_draw_frame(uint8_t *rgb, int stride, int width, int height,
		      int64_t n, int64_t wall_s)
{
	struct canvas cv = { rgb, stride, width, height };
	int cx, cy;

	draw_wallpaper(&cv);
	for (int i = 0; i < 3; i++)
		draw_window(&cv, i, n);
	draw_taskbar(&cv, n, wall_s);
	codec_draw_cursor_pos(width, height, n, &cx, &cy);
	draw_cursor(&cv, cx, cy);
}
