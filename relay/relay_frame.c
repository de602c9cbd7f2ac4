/*
 * relay_frame: refcounted message buffers with LWS_PRE headroom.
 */
#include "relay/relay_frame.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_alloc.h"

struct relay_frame *relay_frame_new(size_t cap)
{
	struct relay_frame *f = relay_xmalloc(sizeof(*f) + LWS_PRE + cap);

	memset(f, 0, sizeof(*f));
	f->refs = 1;
	f->cap = (uint32_t)cap;
	return f;
}

struct relay_frame *relay_frame_text(const char *s, size_t len)
{
	struct relay_frame *f = relay_frame_new(len);

	memcpy(relay_frame_data(f), s, len);
	f->len = (uint32_t)len;
	f->text = true;
	return f;
}

void relay_frame_unref(struct relay_frame *f)
{
	if (!f)
		return;
	assert(f->refs != 0);
	if (--f->refs == 0)
		free(f);
}
