/*
 * asp-host: a cloud desktop that shares its screen through the relay.
 *
 * It connects to the relay's /host endpoint, says hello, and once
 * welcomed pushes media at a steady pace until --seconds run out or a
 * signal or the `quit` command arrives, then leaves with close 1000.
 * Everything the relay tells it is printed on stdout one line at a time
 * (welcome, code, notify, keyframe-request, input) so tests and people
 * can follow and drive it; commands arrive on stdin, one per line.
 *
 * Media comes from client_source: a synthetic desktop encoded as real
 * H.264/HEVC with Opus (the default), a media file, or the `pattern`
 * whose payloads a viewer verifies byte for byte.  Each batch goes out at
 * its own time; when the relay does not keep up, video is skipped up to
 * a forced keyframe instead of queueing without bound.
 *
 * --relay takes a list of relays; a cluster node that does not hold the
 * desktop redirects the host to the one that does (client_relays.h has
 * the rules).  A host that loses the relay after it has been welcomed
 * (the relay restarted, went away with 1001, or the network dropped)
 * connects again by itself with exponential backoff, to the next relay of
 * its list, and gets its session, owner key and collaboration code back;
 * media pauses meanwhile and resumes at a keyframe.  A refusal the relay
 * sends on purpose (close codes 4000-4999) is final, except the cluster's
 * redirect and unavailable; before the first welcome each relay of the
 * list is tried once.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec_msg.h"
#include "protocol/proto_ctrl.h"
#include "protocol/proto_media.h"
#include "tools/common/client.h"
#include "tools/common/client_cli.h"
#include "tools/common/client_pattern.h"
#include "tools/common/client_relays.h"
#include "tools/common/client_source.h"

#define HOST_TICK_US (20 * 1000)
/* Above this much unsent media the relay (or the network) is not keeping
 * up: skip frames rather than queue without bound, and restart at a
 * keyframe once it drains. */
#define HOST_MAX_QUEUED (8u * 1024 * 1024)
/* Batches sent in one timer callback before the loop gets a turn. */
#define HOST_BURST 16
/* Behind schedule by more than this (a stall), start the clock again
 * instead of sending the backlog in a burst. */
#define HOST_REBASE_US (1000 * 1000)

struct host_opts {
	const char *relay, *desktop, *name, *asp_version, *os, *image, *token;
	const char *source, *codec;
	bool insecure, share;
	bool request_help, accept_assist, no_reconnect;
	bool pattern_opts;    /* --frame-bytes or --keyint-frames given */
	int audio, cursor;    /* -1 the source's default, 0 off, 1 on */
	double seconds, fps, bitrate_mbps;
	double frame_bytes, keyint_frames, keyint;
	int width, height;
};

struct host {
	struct host_opts o;
	struct client *c;
	struct client_source *src;
	struct client_timer tick, stop, media;
	struct client_stdin in;
	struct client_refusal refusal;
	struct client_relays relays;
	bool welcomed, leaving;
	bool was_welcomed;    /* at least once: media restarts at a keyframe */
	size_t max_message;
	struct codec_batch batch;
	bool have_batch;
	bool skip_to_key;     /* video dropped: send none until a keyframe */
	int64_t start_mono;
	uint64_t skipped;
	uint64_t too_large;   /* messages over max_message, not sent */
};

static void host_usage(FILE *f)
{
	fprintf(f,
"usage: asp-host [options]\n"
"A cloud desktop: connects to the relay's /host endpoint and pushes media.\n"
"\n"
"Connection:\n"
"  --relay URL[,URL...] relay URL, ws:// or wss://, or a list of a cluster's\n"
"                       relays to use in turn (default ws://127.0.0.1:8080)\n"
"  --insecure           accept a self-signed or mismatched TLS certificate\n"
"  --desktop ID         desktop id, 1-64 of A-Z a-z 0-9 . _ - (default desk-1)\n"
"  --name NAME          the desktop's display name\n"
"  --asp-version V      ASP version sent in hello (default 1.1.0)\n"
"  --os OS              operating system sent in hello (default windows)\n"
"  --image KIND         image kind, system or custom (default system)\n"
"  --token T            sign-in token (default: $ASP_TOKEN, none if unset)\n"
"\n"
"Media:\n"
"  --source synthetic   a drawn desktop encoded as real H.264/HEVC, with Opus\n"
"                       audio and cursor messages (the default)\n"
"  --source pattern     synthetic codec-0 messages with a CRC-checked payload\n"
"                       (the default when --frame-bytes or --keyint-frames\n"
"                       is given)\n"
"  --source FILE        an H.264/HEVC (+ Opus) media file, remuxed at its own\n"
"                       rate and looped\n"
"  --codec h264|hevc    synthetic: the video codec (default h264)\n"
"  --size WxH           synthetic: the picture size (default 1280x720)\n"
"  --keyint SECONDS     synthetic: a keyframe every SECONDS (default 2)\n"
"  --fps N              video frames per second (default 30)\n"
"  --bitrate-mbps X     synthetic: the encoder's bitrate; pattern: sets\n"
"                       --frame-bytes from X megabits per second at --fps\n"
"  --frame-bytes N      pattern: video payload bytes (default 4096)\n"
"  --keyint-frames N    pattern: a keyframe every N frames (default 30)\n"
"  --audio, --no-audio  audio messages (Opus, or a pattern every 20 ms); on by\n"
"                       default for synthetic at 10 fps or more, off for pattern\n"
"  --cursor, --no-cursor  synthetic: cursor messages (default on)\n"
"\n"
"Run:\n"
"  --seconds N          leave cleanly after N seconds (default: until\n"
"                       SIGINT/SIGTERM or the quit command)\n"
"  --share              share the desktop once welcomed (prints code: CODE)\n"
"  --request-help       ask an administrator for help once welcomed (prints\n"
"                       assist-request: id=ID expires=UNIX)\n"
"  --accept-assist      accept every assistance invitation at once\n"
"  --no-reconnect       exit when the connection is lost (default: connect\n"
"                       again, to the next relay of the list, after 0.25 s,\n"
"                       doubling up to 5 s, until --seconds or a signal;\n"
"                       the session, owner key and code come back)\n"
"  --help               this text\n"
"\n"
"Commands on stdin, one per line: share, discard, end, grant, revoke,\n"
"keyframe, assist-request, assist-accept ID, assist-decline ID, assist-end,\n"
"quit.\n"
"\n"
"Output on stdout, one line each: source: WHAT, welcome: owner_key=KEY,\n"
"owner-link: URL (opens the desktop's own client in a browser),\n"
"code: CODE, notify: EVENT MESSAGE (NAME), keyframe-request: REASON,\n"
"input: TYPE x=X y=Y code=C mods=M, assist-invite: id=ID admin=NAME,\n"
"assist-request: id=ID expires=UNIX, redirected: URL, reconnecting in N ms:\n"
"WHY, next-relay: URL (with several relays), reconnected.\n"
"\n"
"Relays: the first of the list is tried first.  One that cannot be reached,\n"
"closes before the welcome or answers unavailable (4025) is left for the\n"
"next one, after the backoff.  A cluster node that does not hold the desktop\n"
"answers redirect (4024) with the node that does: the host connects there\n"
"at once, at most 4 times in a row without a welcome (a 5th is a loop, a\n"
"failed attempt).  Before the first welcome each relay is tried once; after\n"
"it, a lost connection starts again from the next relay of the list.  Any\n"
"other refusal (an error with a close code 4000-4999) is final.\n"
"\n"
"Exit status: 0 left cleanly, 1 failure or (with --no-reconnect) connection\n"
"lost, 3 refused by the relay (its message on stderr), 4 ASP version\n"
"refused, 5 cannot connect (no relay of the list welcomed the host, or a\n"
"redirect loop).\n");
}

/* ---- sending ---- */

static void host_send_ctrl(struct host *h, char *json)
{
	client_send_json(h->c, json, CLIENT_SEND_URGENT);
}

/* Drops video the relay cannot take yet and restarts at a keyframe (a
 * decoder needs one after a loss); other kinds are just dropped. */
static bool host_must_drop(struct host *h, const struct codec_msg *m)
{
	bool video = m->hdr.kind == PROTO_KIND_VIDEO;
	bool key = m->hdr.flags & PROTO_F_KEYFRAME;

	if (client_queued_bytes(h->c) <= HOST_MAX_QUEUED &&
	    !(video && h->skip_to_key && !key)) {
		if (video && key)
			h->skip_to_key = false;
		return false;
	}
	if (video) {
		h->skipped++;
		h->skip_to_key = true;
		client_source_force_keyframe(h->src);
	}
	return true;
}

/* The source reuses its buffers and lws masks in place: each message gets
 * a private copy. */
static void host_send_msg(struct host *h, const struct codec_msg *m)
{
	struct client_out *o;

	if (host_must_drop(h, m))
		return;
	if (h->max_message && m->len > h->max_message) {
		if (!h->too_large++)
			fprintf(stderr, "asp-host: a %zu-byte message exceeds "
				"the relay's max_message %zu: not sent (nor "
				"any like it)\n", m->len, h->max_message);
		return;
	}
	o = client_out_new(m->len);
	if (!o) {
		fprintf(stderr, "asp-host: out of memory for a frame\n");
		return;
	}
	memcpy(client_out_data(o), m->data, m->len);
	client_send_out(h->c, o, CLIENT_SEND_BINARY);
}

/* ---- pacing ---- */

static void host_leave(struct host *h);

static int host_fetch(struct host *h)
{
	char why[256];

	if (h->have_batch)
		return 0;
	if (client_source_next(h->src, &h->batch, why, sizeof(why))) {
		fprintf(stderr, "asp-host: media source: %s\n", why);
		host_leave(h);
		return -1;
	}
	h->have_batch = true;
	return 0;
}

/* Sends every batch that is due, then sleeps until the next one. */
static void host_media_tick(struct client_timer *t)
{
	struct host *h = t->arg;
	int64_t now = client_mono_us(), due;
	size_t i;
	int n;

	for (n = 0; n < HOST_BURST; n++) {
		if (h->leaving || host_fetch(h))
			return;
		due = h->start_mono + h->batch.pts_us;
		if (due > now) {
			client_timer_start(h->c, t, due - now, host_media_tick,
					   h);
			return;
		}
		if (now - due > HOST_REBASE_US)
			h->start_mono += now - due;
		for (i = 0; i < h->batch.count; i++)
			host_send_msg(h, &h->batch.msg[i]);
		h->have_batch = false;
	}
	client_timer_start(h->c, t, 1, host_media_tick, h);
}

/* First start: the clock starts now.  After a reconnect the relay and
 * every viewer have lost the stream: start again at a keyframe (forced,
 * or the file's next one), on a clock rebased so nothing is owed. */
static void host_start_media(struct host *h)
{
	if (h->was_welcomed) {
		h->have_batch = false;
		h->skip_to_key = true;
		client_source_force_keyframe(h->src);
		if (host_fetch(h))
			return;
		h->start_mono = client_mono_us() - h->batch.pts_us;
	} else {
		h->start_mono = client_mono_us();
	}
	client_timer_start(h->c, &h->media, 1, host_media_tick, h);
}

/* ---- leaving ---- */

static void host_leave(struct host *h)
{
	if (h->leaving)
		return;
	h->leaving = true;
	client_timer_stop(&h->media);
	client_close(h->c, 1000, "bye");
}

static void host_stop_due(struct client_timer *t)
{
	host_leave(t->arg);
}

/* ---- commands ---- */

/* Commands that are one control message without fields. */
static const struct {
	const char *word;
	enum proto_msg type;
} host_plain_cmds[] = {
	{ "share", PROTO_MSG_SHARE },
	{ "discard", PROTO_MSG_DISCARD },
	{ "end", PROTO_MSG_END },
	{ "assist-request", PROTO_MSG_ASSIST_REQUEST },
	{ "assist-end", PROTO_MSG_ASSIST_END },
};

/* "assist-accept ID" / "assist-decline ID"; false if line is neither. */
static bool host_assist_answer(struct host *h, const char *line)
{
	static const char acc[] = "assist-accept ", dec[] = "assist-decline ";

	if (!strncmp(line, acc, sizeof(acc) - 1))
		host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_ASSIST_ACCEPT,
			"{s:s}", "id", line + sizeof(acc) - 1));
	else if (!strncmp(line, dec, sizeof(dec) - 1))
		host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_ASSIST_DECLINE,
			"{s:s}", "id", line + sizeof(dec) - 1));
	else
		return false;
	return true;
}

static void host_command(const char *line, void *arg)
{
	struct host *h = arg;
	size_t i;

	if (!*line)
		return;
	for (i = 0; i < sizeof(host_plain_cmds) / sizeof(host_plain_cmds[0]);
	     i++) {
		if (!strcmp(line, host_plain_cmds[i].word)) {
			host_send_ctrl(h, proto_ctrl_build(
				host_plain_cmds[i].type, NULL));
			return;
		}
	}
	if (!strcmp(line, "grant") || !strcmp(line, "revoke"))
		host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_CONTROL, "{s:b}",
						   "guest",
						   !strcmp(line, "grant")));
	else if (!strcmp(line, "keyframe"))
		client_source_force_keyframe(h->src);
	else if (!strcmp(line, "quit"))
		host_leave(h);
	else if (!host_assist_answer(h, line))
		fprintf(stderr, "asp-host: unknown command '%s' (share, "
			"discard, end, grant, revoke, keyframe, assist-request, "
			"assist-accept ID, assist-decline ID, assist-end, "
			"quit)\n", line);
}

static void host_tick(struct client_timer *t)
{
	struct host *h = t->arg;

	if (client_signalled())
		host_leave(h);
	/* Commands wait in the pipe until the relay has welcomed us: a
	 * share must not overtake the hello. */
	if (h->welcomed && !h->leaving)
		client_stdin_poll(&h->in, host_command, h);
	client_timer_start(h->c, t, HOST_TICK_US, host_tick, h);
}

/* ---- what the relay says ---- */

/* The link that opens the desktop's own client in a browser, signed in
 * as the desktop's user: the page on the http(s) origin of the relay
 * that welcomed us, with the owner key and this host's token in the
 * fragment, which browsers never send to a server.  With several relays
 * the page gets the list too (?relay=), to use as we do. */
static void host_say_owner_link(const struct host *h, const char *key)
{
	const char *url = h->relays.target;
	bool tls = !strncmp(url, "wss://", 6) || !strncmp(url, "https://", 8);
	const char *authority = strstr(url, "://") + 3;
	int n = (int)strcspn(authority, "/");

	client_say("owner-link: %s://%.*s/owner.html%s%s#key=%s&token=%s",
		   tls ? "https" : "http", n, authority,
		   h->relays.n > 1 ? "?relay=" : "",
		   h->relays.n > 1 ? h->o.relay : "", key,
		   h->o.token ? h->o.token : "");
}

static void host_on_welcome(struct host *h, const struct proto_ctrl *m)
{
	const char *key = proto_ctrl_str(m, "owner_key");
	int64_t max = proto_ctrl_int(m, "max_message", 0);

	h->welcomed = true;
	client_relays_session(&h->relays);
	client_say("welcome: owner_key=%s", key ? key : "");
	if (key)
		host_say_owner_link(h, key);
	if (max > 0)
		h->max_message = (size_t)max;
	host_start_media(h);
	/* Once per run: the relay keeps the code and the request across a
	 * reconnect and sends the code again by itself. */
	if (h->was_welcomed)
		return;
	h->was_welcomed = true;
	if (h->o.share)
		host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_SHARE, NULL));
	if (h->o.request_help)
		host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_ASSIST_REQUEST,
						   NULL));
	if (h->o.seconds > 0)
		client_timer_start(h->c, &h->stop,
				   (int64_t)(h->o.seconds * 1e6),
				   host_stop_due, h);
}

/* Notifications as usual; a request for help also gets its id on a line
 * of its own, since the notify line has only the message. */
static void host_on_notify(const struct proto_ctrl *m)
{
	const char *event = proto_ctrl_str(m, "event");
	const char *id = proto_ctrl_str(m, "id");

	client_print_notify(m);
	if (event && !strcmp(event, "assist_requested"))
		client_say("assist-request: id=%s expires=%" PRId64,
			   id ? id : "", proto_ctrl_int(m, "expires_at", 0));
}

/* Prints the invitation; with --accept-assist, clicks Accept Request. */
static void host_on_invite(struct host *h, const struct proto_ctrl *m)
{
	const char *id = proto_ctrl_str(m, "id");
	const char *admin = proto_ctrl_str(m, "admin");

	client_say("assist-invite: id=%s admin=%s", id ? id : "",
		   admin ? admin : "");
	if (h->o.accept_assist && id)
		host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_ASSIST_ACCEPT,
						   "{s:s}", "id", id));
}

static void host_on_keyframe(struct host *h, const struct proto_ctrl *m)
{
	const char *reason = proto_ctrl_str(m, "reason");

	client_source_force_keyframe(h->src);
	client_say("keyframe-request: %s", reason ? reason : "");
}

/* A refusal of what we came for (the hello) ends the run, unless it sends
 * us to another relay; other errors refuse one message. */
static void host_on_error(struct host *h, const struct proto_ctrl *m)
{
	if (client_relays_on_error(&h->relays, m, &h->refusal, !h->welcomed)) {
		client_timer_stop(&h->media);
		client_close(h->c, 1000, "bye");
		return;
	}
	client_print_error(m, &h->refusal, !h->welcomed);
	if (!h->welcomed)
		host_leave(h);
}

static void host_on_text(void *user, const char *text, size_t len)
{
	struct host *h = user;
	struct proto_ctrl m;
	const char *s;

	if (client_parse_relay(text, len, PROTO_DIR_RELAY_TO_HOST, &m))
		return;
	switch (m.type) {
	case PROTO_MSG_WELCOME:
		host_on_welcome(h, &m);
		break;
	case PROTO_MSG_CODE:
		s = proto_ctrl_str(&m, "code");
		client_say("code: %s", s ? s : "");
		break;
	case PROTO_MSG_NOTIFY:
		host_on_notify(&m);
		break;
	case PROTO_MSG_KEYFRAME:
		host_on_keyframe(h, &m);
		break;
	case PROTO_MSG_ASSIST_INVITE:
		host_on_invite(h, &m);
		break;
	case PROTO_MSG_ERROR:
		host_on_error(h, &m);
		break;
	case PROTO_MSG_METRICS:
		client_say("relay-metrics: %.*s", (int)len, text);
		break;
	default:
		client_say("%s: %.*s", proto_msg_name(m.type), (int)len, text);
		break;
	}
	proto_ctrl_release(&m);
}

static void host_on_input(void *user, const uint8_t *msg, size_t len)
{
	struct proto_media_hdr hdr;
	struct proto_input in;
	char why[256];

	(void)user;
	if (proto_media_decode(msg, len, &hdr, why, sizeof(why))) {
		fprintf(stderr, "asp-host: bad media from the relay: %s\n",
			why);
		return;
	}
	if (hdr.kind != PROTO_KIND_INPUT)
		return;
	if (proto_input_decode(msg + PROTO_MEDIA_HDR_LEN, hdr.length, &in,
			       why, sizeof(why))) {
		fprintf(stderr, "asp-host: bad input: %s\n", why);
		return;
	}
	client_say("input: %s x=%d y=%d code=%u mods=%u",
		   proto_input_name(in.type), in.x, in.y, in.code,
		   in.modifiers);
}

static void host_on_open(struct client *c, void *user)
{
	struct host *h = user;
	const struct host_opts *o = &h->o;

	(void)c;
	host_send_ctrl(h, proto_ctrl_build(PROTO_MSG_HELLO,
		"{s:s, s:s, s:s, s:s, s:s*, s:s*}",
		"os", o->os, "image", o->image, "asp_version", o->asp_version,
		"desktop", o->desktop, "name", o->name, "token", o->token));
}

/* ---- reconnecting ---- */

/* The connection is gone: stop sending and, unless we are leaving, let
 * the relay list decide where and when the next attempt goes. */
static void host_on_closed(struct client *c, void *user)
{
	struct host *h = user;

	h->welcomed = false;
	client_timer_stop(&h->media);
	if (h->leaving || client_signalled())
		return;
	client_relays_on_closed(&h->relays, c, &h->refusal);
}

static const struct client_ops host_ops = {
	.on_open = host_on_open,
	.on_text = host_on_text,
	.on_binary = host_on_input,
	.on_closed = host_on_closed,
};

/* ---- options ---- */

enum host_opt {
	OPT_RELAY = 256, OPT_INSECURE, OPT_DESKTOP, OPT_NAME, OPT_ASPV,
	OPT_OS, OPT_IMAGE, OPT_TOKEN, OPT_SOURCE, OPT_CODEC, OPT_SIZE,
	OPT_AUDIO, OPT_NO_AUDIO, OPT_CURSOR, OPT_NO_CURSOR, OPT_SHARE,
	OPT_REQUEST_HELP, OPT_ACCEPT_ASSIST, OPT_NO_RECONNECT, OPT_HELP,
	/* numeric options: rows of host_num_opts */
	OPT_SECONDS = CLIENT_NUM_OPT, OPT_FPS, OPT_FRAME_BYTES,
	OPT_KEYINT_FRAMES, OPT_KEYINT, OPT_BITRATE,
};

#define HOST_NUM(name, min, max, field) \
	{ name, min, max, offsetof(struct host_opts, field) }
static const struct client_num_opt host_num_opts[] = {
	HOST_NUM("seconds", 0, 1e7, seconds),
	HOST_NUM("fps", 0.1, 240, fps),
	HOST_NUM("frame-bytes", CLIENT_PATTERN_MIN, 256 << 20, frame_bytes),
	HOST_NUM("keyint-frames", 1, 1e6, keyint_frames),
	HOST_NUM("keyint", 1, 3600, keyint),
	HOST_NUM("bitrate-mbps", 0.001, 1000, bitrate_mbps),
};

static const struct option host_longopts[] = {
	{ "relay", required_argument, NULL, OPT_RELAY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "desktop", required_argument, NULL, OPT_DESKTOP },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "asp-version", required_argument, NULL, OPT_ASPV },
	{ "os", required_argument, NULL, OPT_OS },
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "audio", no_argument, NULL, OPT_AUDIO },
	{ "no-audio", no_argument, NULL, OPT_NO_AUDIO },
	{ "cursor", no_argument, NULL, OPT_CURSOR },
	{ "no-cursor", no_argument, NULL, OPT_NO_CURSOR },
	{ "share", no_argument, NULL, OPT_SHARE },
	{ "request-help", no_argument, NULL, OPT_REQUEST_HELP },
	{ "accept-assist", no_argument, NULL, OPT_ACCEPT_ASSIST },
	{ "no-reconnect", no_argument, NULL, OPT_NO_RECONNECT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "fps", required_argument, NULL, OPT_FPS },
	{ "frame-bytes", required_argument, NULL, OPT_FRAME_BYTES },
	{ "keyint-frames", required_argument, NULL, OPT_KEYINT_FRAMES },
	{ "keyint", required_argument, NULL, OPT_KEYINT },
	{ "bitrate-mbps", required_argument, NULL, OPT_BITRATE },
	{ NULL, 0, NULL, 0 },
};

static bool host_opt_size(const char *arg, struct host_opts *o)
{
	char x;

	if (sscanf(arg, "%d%c%d", &o->width, &x, &o->height) != 3 ||
	    x != 'x' || o->width < 16 || o->height < 16 ||
	    o->width > 8192 || o->height > 8192 || (o->width | o->height) & 1) {
		fprintf(stderr, "asp-host: --size '%s' is not WxH with even "
			"sides from 16 to 8192\n", arg);
		return false;
	}
	return true;
}

static bool host_opt_str(int opt, const char *arg, struct host_opts *o)
{
	switch (opt) {
	case OPT_RELAY: o->relay = arg; break;
	case OPT_DESKTOP: o->desktop = arg; break;
	case OPT_NAME: o->name = arg; break;
	case OPT_ASPV: o->asp_version = arg; break;
	case OPT_OS: o->os = arg; break;
	case OPT_IMAGE: o->image = arg; break;
	case OPT_TOKEN: o->token = arg; break;
	case OPT_SOURCE: o->source = arg; break;
	case OPT_CODEC: o->codec = arg; break;
	case OPT_SIZE: return host_opt_size(arg, o);
	default: return false;
	}
	return true;
}

static bool host_opt_flag(int opt, struct host_opts *o)
{
	switch (opt) {
	case OPT_INSECURE: o->insecure = true; break;
	case OPT_AUDIO: o->audio = 1; break;
	case OPT_NO_AUDIO: o->audio = 0; break;
	case OPT_CURSOR: o->cursor = 1; break;
	case OPT_NO_CURSOR: o->cursor = 0; break;
	case OPT_SHARE: o->share = true; break;
	case OPT_REQUEST_HELP: o->request_help = true; break;
	case OPT_ACCEPT_ASSIST: o->accept_assist = true; break;
	case OPT_NO_RECONNECT: o->no_reconnect = true; break;
	default: return false;
	}
	return true;
}

/* 0 to run, 1 to exit 0 (--help), -1 to exit 1. */
static int host_parse_args(int argc, char **argv, struct host_opts *o)
{
	int opt;

	*o = (struct host_opts){
		.relay = "ws://127.0.0.1:8080", .desktop = "desk-1",
		.asp_version = "1.1.0", .os = "windows", .image = "system",
		.token = getenv("ASP_TOKEN"), .source = NULL,
		.codec = "h264", .audio = -1, .cursor = -1,
		.fps = 30, .frame_bytes = 4096, .keyint_frames = 30,
		.keyint = 2, .width = 1280, .height = 720,
	};
	while ((opt = getopt_long(argc, argv, "", host_longopts, NULL)) != -1) {
		if (opt == OPT_HELP) {
			host_usage(stdout);
			return 1;
		}
		if (opt == OPT_FRAME_BYTES || opt == OPT_KEYINT_FRAMES)
			o->pattern_opts = true;
		if (host_opt_flag(opt, o) ||
		    client_num_opt_parse(host_num_opts,
					 sizeof(host_num_opts) /
					 sizeof(host_num_opts[0]),
					 opt, optarg, o) ||
		    (opt < OPT_SECONDS && optarg && host_opt_str(opt, optarg, o)))
			continue;
		if (opt == '?')
			host_usage(stderr);
		return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "asp-host: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	/* Options that only the pattern has choose it: asking for a frame
	 * size means asking for messages of that size. */
	if (!o->source)
		o->source = o->pattern_opts ? "pattern" : "synthetic";
	return 0;
}

/* Turns the options into a source configuration. */
static int host_source_config(const struct host_opts *o,
			      struct client_source_config *sc)
{
	*sc = (struct client_source_config){
		.kind = CLIENT_SOURCE_FILE, .path = o->source, .fps = o->fps,
		.cursor = o->cursor != 0, .frame_bytes = (size_t)o->frame_bytes,
		.keyint_frames = (uint32_t)o->keyint_frames,
		.keyint_s = (int)(o->keyint + 0.5), .width = o->width,
		.height = o->height,
	};
	if (!strcmp(o->source, "pattern")) {
		sc->kind = CLIENT_SOURCE_PATTERN;
		sc->audio = o->audio > 0;
		if (o->bitrate_mbps > 0)
			sc->frame_bytes = (size_t)(o->bitrate_mbps * 1e6 / 8 /
						   o->fps);
		if (sc->frame_bytes < CLIENT_PATTERN_MIN)
			sc->frame_bytes = CLIENT_PATTERN_MIN;
	} else if (!strcmp(o->source, "synthetic")) {
		sc->kind = CLIENT_SOURCE_SYNTHETIC;
		/* Opus frames are 20 ms: below 10 fps a batch would hold
		 * too many, so the default turns audio off there. */
		sc->audio = o->audio < 0 ? o->fps >= 10 : o->audio;
		sc->bitrate_kbps = (int)(o->bitrate_mbps * 1000);
		sc->codec = PROTO_CODEC_H264;
		if (!strcmp(o->codec, "hevc"))
			sc->codec = PROTO_CODEC_HEVC;
		else if (strcmp(o->codec, "h264")) {
			fprintf(stderr, "asp-host: --codec is h264 or hevc, "
				"not '%s'\n", o->codec);
			return -1;
		}
	}
	return 0;
}

static int host_open_source(struct host *h)
{
	struct client_source_config sc;
	char why[256], what[300];

	if (host_source_config(&h->o, &sc))
		return -1;
	if (client_source_open(&h->src, &sc, why, sizeof(why))) {
		fprintf(stderr, "asp-host: --source %s: %s\n", h->o.source,
			why);
		return -1;
	}
	client_source_describe(h->src, what, sizeof(what));
	client_say("source: %s", what);
	return 0;
}

static int host_run(struct host *h)
{
	struct client_config cfg = {
		.url = h->relays.target, .path = "/host",
		.subprotocol = "asp.host.v1", .insecure = h->o.insecure,
		.ops = &host_ops, .user = h,
	};
	int status;

	if (client_open(&h->c, &cfg))
		return CLIENT_EXIT_FAIL;
	client_timer_start(h->c, &h->tick, HOST_TICK_US, host_tick, h);
	if (client_run(h->c)) {
		fprintf(stderr, "asp-host: the event loop failed\n");
		status = CLIENT_EXIT_FAIL;
	} else {
		status = client_relays_exit_status(&h->relays,
						   client_close_info(h->c),
						   &h->refusal, h->leaving);
	}
	if (h->skipped)
		fprintf(stderr, "asp-host: skipped %llu frames while the relay "
			"was not keeping up\n", (unsigned long long)h->skipped);
	client_destroy(h->c);
	return status;
}

int main(int argc, char **argv)
{
	static struct host h;
	char why[300];
	int r = host_parse_args(argc, argv, &h.o);

	if (r)
		return r > 0 ? CLIENT_EXIT_OK : CLIENT_EXIT_FAIL;
	if (client_relays_init(&h.relays, h.o.relay, !h.o.no_reconnect, why,
			       sizeof(why))) {
		fprintf(stderr, "asp-host: --relay: %s\n", why);
		return CLIENT_EXIT_FAIL;
	}
	codec_log_quiet();
	if (host_open_source(&h))
		return CLIENT_EXIT_FAIL;
	client_signals_install();
	srandom((unsigned)client_mono_us() ^ (unsigned)getpid());
	client_stdin_init(&h.in);
	r = host_run(&h);
	client_source_close(h.src);
	return r;
}
