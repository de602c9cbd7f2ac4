/*
 * asp-view: a viewer of a shared desktop, and the tests' probe.
 *
 * It connects to the relay's /view endpoint, says hello, joins as the
 * owner (--owner-key), as the collaborator (--code) or as an assisting
 * administrator (--assist), and receives media, checking every message
 * (client_verify.h): header, payload CRC, sequence gaps only before
 * keyframes, a keyframe first.  It can send a scripted input sequence,
 * subscribe to the relay's metrics, and stall on purpose to play a slow
 * viewer.  At the end it prints one `metrics:` line and exits 0 if all
 * was well, 2 if verification failed (see --help for the rest).
 *
 * --relay takes a list of relays, and a cluster node that does not hold
 * the desktop redirects the viewer to the one that does (client_relays.h
 * has the rules).  A viewer that was joined and loses its connection
 * joins again by itself, with the backoff asp-host has, from the next
 * relay of its list; what it counts and checks goes on across the gap.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec_decode.h"
#include "codec/codec_msg.h"
#include "protocol/proto_ctrl.h"
#include "protocol/proto_media.h"
#include "tools/common/client.h"
#include "tools/common/client_cli.h"
#include "tools/common/client_relays.h"
#include "tools/common/client_verify.h"

#define VIEW_TICK_US (20 * 1000)
/* After `leave` the relay closes; if it does not, we close ourselves. */
#define VIEW_LEAVE_WAIT_US (3 * 1000 * 1000)

struct view_opts {
	const char *relay, *code, *owner_key, *assist, *client;
	const char *client_version, *name, *token, *out, *snapshot;
	bool insecure, send_input, send_input_now, no_reconnect;
	double frames, seconds, metrics_interval, pause_after, pause_seconds;
};

struct view {
	struct view_opts o;
	struct client *c;
	struct client_timer tick, deadline, pause, leave_wait;
	struct client_refusal refusal;
	struct client_relays relays;
	struct client_verify verify;
	struct codec_decoder *dec;
	FILE *out;
	bool joined, leaving, timed_out, paused_once, input_sent;
	bool was_joined;      /* at least once: the summary lines are due */
	uint32_t input_seq;
};

static void view_usage(FILE *f)
{
	fprintf(f,
"usage: asp-view [options] (--owner-key KEY | --code CODE | --assist ID)\n"
"A viewer: joins a desktop through the relay's /view endpoint and checks\n"
"the media it receives.\n"
"\n"
"Connection:\n"
"  --relay URL[,URL...]    relay URL, ws:// or wss://, or a list of a\n"
"                          cluster's relays to use in turn (default\n"
"                          ws://127.0.0.1:8080)\n"
"  --insecure              accept a self-signed or mismatched TLS certificate\n"
"  --owner-key KEY         join as the desktop's owner\n"
"  --code CODE             join as the collaborator (guest)\n"
"  --assist ID             join a remote assistance the user accepted, as\n"
"                          the administrator (--token of role admin)\n"
"  --client KIND           windows, macos, terminal or web (default windows)\n"
"  --client-version V      client version sent in hello (default 6.2)\n"
"  --name NAME             the viewer's display name\n"
"  --token T               sign-in token (default: $ASP_TOKEN, none if unset)\n"
"\n"
"Run:\n"
"  --frames N              leave cleanly after N video messages\n"
"  --seconds N             give up after N seconds (exit 6 if --frames was\n"
"                          not reached; without --frames, leave cleanly);\n"
"                          the clock runs on while reconnecting\n"
"  --no-reconnect          exit when the connection is lost (default: join\n"
"                          again, from the next relay of the list, after\n"
"                          0.25 s, doubling up to 5 s, until --seconds,\n"
"                          --frames or a signal)\n"
"  --metrics-interval MS   subscribe to relay metrics; prints each report as\n"
"                          relay-metrics: JSON\n"
"  --send-input            send a scripted input sequence once control is\n"
"                          granted (at once as the owner)\n"
"  --send-input-now        send it right after joining, control or not\n"
"  --pause-after N         after N video messages stop reading ...\n"
"  --pause-seconds S       ... for S seconds (a slow viewer; default 5)\n"
"  --out FILE              write the received video payloads to FILE\n"
"  --snapshot FILE.png     save the last decoded picture as a PNG at the end\n"
"  --help                  this text\n"
"\n"
"H.264/HEVC video and Opus audio are decoded; a message that fails to decode\n"
"is a verification error, as is a pattern payload (codec 0) whose CRC or\n"
"reference does not match.\n"
"\n"
"Output on stdout, one line each: joined: ROLE, notify: EVENT MESSAGE (NAME),\n"
"stream: JSON, relay-metrics: JSON, input-sent: N, input-error: CODE,\n"
"redirected: URL, reconnecting in N ms: WHY, next-relay: URL (with several\n"
"relays), reconnected, and at the end (once joined) metrics: frames=N bytes=N\n"
"gaps=N errors=N latency_p50_ms=X latency_p99_ms=Y latency_max_ms=Z\n"
"first_keyframe=0|1 cached=N, then decode: pictures=N audio_packets=N\n"
"errors=N first_ok=0|1 size=WxH; both count every connection of the run.\n"
"\n"
"Relays: the first of the list is tried first.  One that cannot be reached,\n"
"closes before joined or answers unavailable (4025) is left for the next\n"
"one, after the backoff.  A cluster node that does not hold the desktop\n"
"answers redirect (4024) with the node that does: the viewer connects there\n"
"at once, at most 4 times in a row without joining (a 5th is a loop, a\n"
"failed attempt).  Before the first join each relay is tried once.  After a\n"
"lost connection the viewer joins again from the next relay of the list;\n"
"then offline (the desktop is not back yet), slow, internal and\n"
"hello_timeout are retried too.  Every other refusal is final: busy,\n"
"bad_code, discarded, ended, expired, no_permission, replaced (another\n"
"owner viewer), unauthorized, token_expired, rate_limited, too_many, ...\n"
"\n"
"Exit status: 0 all good, 1 failure or (with --no-reconnect) connection\n"
"lost, 2 media failed verification, 3 refused by the relay (its message on\n"
"stderr), 4 client version refused, 5 cannot connect (no relay of the list\n"
"let the viewer join, or a redirect loop), 6 --frames not reached in\n"
"--seconds.\n");
}

static void view_send_ctrl(struct view *v, char *json)
{
	client_send_json(v->c, json, 0);
}

/* ---- leaving ---- */

static void view_leave_expired(struct client_timer *t)
{
	struct view *v = t->arg;

	client_close(v->c, 1000, "bye");
}

/* Asks the relay to let us go; it closes with 1000. */
static void view_leave(struct view *v)
{
	if (v->leaving)
		return;
	v->leaving = true;
	client_timer_stop(&v->deadline);
	/* A paused viewer must read again to see the relay's close. */
	client_timer_stop(&v->pause);
	client_rx_pause(v->c, false);
	if (v->joined && client_is_open(v->c)) {
		view_send_ctrl(v, proto_ctrl_build(PROTO_MSG_LEAVE, NULL));
		client_timer_start(v->c, &v->leave_wait, VIEW_LEAVE_WAIT_US,
				   view_leave_expired, v);
	} else {
		client_close(v->c, 1000, "bye");
	}
}

static void view_deadline(struct client_timer *t)
{
	struct view *v = t->arg;

	if (v->o.frames > 0) {
		v->timed_out = true;
		fprintf(stderr, "asp-view: %llu of %.0f video messages in "
			"%g seconds\n", (unsigned long long)v->verify.frames,
			v->o.frames, v->o.seconds);
	}
	view_leave(v);
}

static void view_tick(struct client_timer *t)
{
	struct view *v = t->arg;

	if (client_signalled())
		view_leave(v);
	client_timer_start(v->c, t, VIEW_TICK_US, view_tick, v);
}

/* ---- input ---- */

static void view_send_one_input(struct view *v, const struct proto_input *in)
{
	struct proto_media_hdr hdr = {
		.kind = PROTO_KIND_INPUT, .codec = PROTO_CODEC_NONE,
		.seq = v->input_seq++, .length = PROTO_INPUT_LEN,
		.capture_us = (uint64_t)client_wall_us(),
	};
	uint8_t msg[PROTO_MEDIA_HDR_LEN + PROTO_INPUT_LEN];

	proto_media_encode(&hdr, msg);
	proto_input_encode(in, msg + PROTO_MEDIA_HDR_LEN);
	client_send(v->c, msg, sizeof(msg), CLIENT_SEND_BINARY);
}

/* The scripted sequence: what a click and a keystroke look like. */
static void view_send_input(struct view *v)
{
	static const struct proto_input script[] = {
		{ .type = PROTO_IN_POINTER_MOVE, .x = 10, .y = 20 },
		{ .type = PROTO_IN_POINTER_DOWN, .x = 10, .y = 20, .code = 0 },
		{ .type = PROTO_IN_POINTER_UP, .x = 10, .y = 20, .code = 0 },
		{ .type = PROTO_IN_KEY_DOWN, .code = 65,
		  .modifiers = PROTO_MOD_SHIFT },
		{ .type = PROTO_IN_KEY_UP, .code = 65,
		  .modifiers = PROTO_MOD_SHIFT },
		{ .type = PROTO_IN_WHEEL, .x = 0, .y = -120 },
	};
	size_t i;

	if (v->input_sent)
		return;
	v->input_sent = true;
	for (i = 0; i < sizeof(script) / sizeof(script[0]); i++)
		view_send_one_input(v, &script[i]);
	client_say("input-sent: %zu", sizeof(script) / sizeof(script[0]));
}

/* ---- what the relay says ---- */

static void view_send_join(struct view *v)
{
	const struct view_opts *o = &v->o;
	char *json;

	if (o->code)
		json = proto_ctrl_build(PROTO_MSG_JOIN, "{s:s}", "code", o->code);
	else if (o->owner_key)
		json = proto_ctrl_build(PROTO_MSG_JOIN, "{s:s}", "owner_key",
					o->owner_key);
	else
		json = proto_ctrl_build(PROTO_MSG_JOIN, "{s:s}", "assist",
					o->assist);
	view_send_ctrl(v, json);
}

static void view_on_joined(struct view *v, const struct proto_ctrl *m)
{
	const char *role = proto_ctrl_str(m, "role");

	v->joined = true;
	v->was_joined = true;
	client_relays_session(&v->relays);
	client_verify_joined(&v->verify, client_wall_us());
	client_say("joined: %s", role ? role : "?");
	if (v->o.metrics_interval > 0)
		view_send_ctrl(v, proto_ctrl_build(PROTO_MSG_METRICS, "{s:i}",
			"interval_ms", (int)v->o.metrics_interval));
	if (v->o.send_input_now ||
	    (v->o.send_input && ((role && !strcmp(role, "owner")) ||
				 proto_ctrl_bool(m, "control", false))))
		view_send_input(v);
}

static void view_on_notify(struct view *v, const struct proto_ctrl *m)
{
	const char *event = proto_ctrl_str(m, "event");

	client_print_notify(m);
	if (v->o.send_input && event && !strcmp(event, "control_granted"))
		view_send_input(v);
}

/* Refusals of one message (no_control, malformed) keep the connection:
 * they are the answers --send-input-now is there to provoke.  A refusal
 * of the join ends the run unless it sends us to another relay. */
static void view_on_error(struct view *v, const struct proto_ctrl *m)
{
	const char *code = proto_ctrl_str(m, "code");

	if (v->input_sent && code &&
	    (!strcmp(code, "no_control") || !strcmp(code, "malformed"))) {
		client_say("input-error: %s", code);
		return;
	}
	if (client_relays_on_error(&v->relays, m, &v->refusal, !v->joined)) {
		client_close(v->c, 1000, "bye");
		return;
	}
	client_print_error(m, &v->refusal, !v->joined);
	if (!v->joined)
		view_leave(v);
}

static void view_on_text(void *user, const char *text, size_t len)
{
	struct view *v = user;
	struct proto_ctrl m;

	if (client_parse_relay(text, len, PROTO_DIR_RELAY_TO_VIEWER, &m))
		return;
	switch (m.type) {
	case PROTO_MSG_WELCOME:
		view_send_join(v);
		break;
	case PROTO_MSG_JOINED:
		view_on_joined(v, &m);
		break;
	case PROTO_MSG_NOTIFY:
		view_on_notify(v, &m);
		break;
	case PROTO_MSG_ERROR:
		view_on_error(v, &m);
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

/* ---- media ---- */

static void view_resume(struct client_timer *t)
{
	struct view *v = t->arg;

	client_rx_pause(v->c, false);
	client_say("resumed");
}

static void view_maybe_pause(struct view *v)
{
	if (v->paused_once || v->o.pause_after <= 0 ||
	    (double)v->verify.frames < v->o.pause_after)
		return;
	v->paused_once = true;
	client_say("paused: %g seconds", v->o.pause_seconds);
	client_rx_pause(v->c, true);
	client_timer_start(v->c, &v->pause, (int64_t)(v->o.pause_seconds * 1e6),
			   view_resume, v);
}

static void view_on_video(struct view *v, const uint8_t *msg,
			  const struct proto_media_hdr *hdr)
{
	if (v->out &&
	    fwrite(msg + PROTO_MEDIA_HDR_LEN, 1, hdr->length, v->out) !=
	    hdr->length) {
		client_verify_error(&v->verify, "cannot write --out file");
		fclose(v->out);
		v->out = NULL;
	}
	view_maybe_pause(v);
	if (v->o.frames > 0 && (double)v->verify.frames >= v->o.frames)
		view_leave(v);
}

static void view_decode(struct view *v, const uint8_t *msg,
			const struct proto_media_hdr *hdr)
{
	char why[256];

	if (hdr->codec == PROTO_CODEC_NONE)
		return;
	if (codec_decoder_feed(v->dec, hdr, msg + PROTO_MEDIA_HDR_LEN,
			       hdr->length, why, sizeof(why)))
		client_verify_error(&v->verify, "%s seq %u does not decode: %s",
				    proto_kind_name(hdr->kind), hdr->seq, why);
}

static void view_on_media(void *user, const uint8_t *msg, size_t len)
{
	struct view *v = user;
	struct proto_media_hdr hdr;

	/* What arrives after we asked to leave is not part of the run. */
	if (v->leaving)
		return;
	if (client_verify_media(&v->verify, msg, len, client_wall_us(), &hdr))
		return;
	view_decode(v, msg, &hdr);
	if (hdr.kind == PROTO_KIND_VIDEO)
		view_on_video(v, msg, &hdr);
}

static void view_on_open(struct client *c, void *user)
{
	struct view *v = user;
	const struct view_opts *o = &v->o;

	(void)c;
	view_send_ctrl(v, proto_ctrl_build(PROTO_MSG_HELLO,
		"{s:s, s:s, s:s*, s:s*}", "client", o->client,
		"client_version", o->client_version, "name", o->name,
		"token", o->token));
}

/* The connection is gone: unless we are leaving, the relay list decides
 * where and when the next attempt goes. */
static void view_on_closed(struct client *c, void *user)
{
	struct view *v = user;

	v->joined = false;
	if (v->leaving || client_signalled())
		return;
	client_relays_on_closed(&v->relays, c, &v->refusal);
}

static const struct client_ops view_ops = {
	.on_open = view_on_open,
	.on_text = view_on_text,
	.on_binary = view_on_media,
	.on_closed = view_on_closed,
};

/* ---- options ---- */

enum view_opt {
	OPT_RELAY = 256, OPT_INSECURE, OPT_CODE, OPT_OWNER_KEY, OPT_ASSIST,
	OPT_CLIENT, OPT_CLIENT_VERSION, OPT_NAME, OPT_TOKEN, OPT_OUT,
	OPT_SNAPSHOT,
	OPT_SEND_INPUT, OPT_SEND_INPUT_NOW, OPT_NO_RECONNECT, OPT_HELP,
	/* numeric options: rows of view_num_opts */
	OPT_FRAMES = CLIENT_NUM_OPT, OPT_SECONDS, OPT_METRICS_INTERVAL,
	OPT_PAUSE_AFTER, OPT_PAUSE_SECONDS,
};

#define VIEW_NUM(name, min, max, field) \
	{ name, min, max, offsetof(struct view_opts, field) }
static const struct client_num_opt view_num_opts[] = {
	VIEW_NUM("frames", 1, 1e12, frames),
	VIEW_NUM("seconds", 0.001, 1e7, seconds),
	VIEW_NUM("metrics-interval", 100, 60000, metrics_interval),
	VIEW_NUM("pause-after", 1, 1e12, pause_after),
	VIEW_NUM("pause-seconds", 0, 1e6, pause_seconds),
};

static const struct option view_longopts[] = {
	{ "relay", required_argument, NULL, OPT_RELAY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "code", required_argument, NULL, OPT_CODE },
	{ "owner-key", required_argument, NULL, OPT_OWNER_KEY },
	{ "assist", required_argument, NULL, OPT_ASSIST },
	{ "client", required_argument, NULL, OPT_CLIENT },
	{ "client-version", required_argument, NULL, OPT_CLIENT_VERSION },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
	{ "send-input", no_argument, NULL, OPT_SEND_INPUT },
	{ "send-input-now", no_argument, NULL, OPT_SEND_INPUT_NOW },
	{ "no-reconnect", no_argument, NULL, OPT_NO_RECONNECT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "frames", required_argument, NULL, OPT_FRAMES },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "metrics-interval", required_argument, NULL, OPT_METRICS_INTERVAL },
	{ "pause-after", required_argument, NULL, OPT_PAUSE_AFTER },
	{ "pause-seconds", required_argument, NULL, OPT_PAUSE_SECONDS },
	{ NULL, 0, NULL, 0 },
};

static bool view_check_args(const struct view_opts *o)
{
	int how = !!o->code + !!o->owner_key + !!o->assist;

	if (how != 1) {
		fprintf(stderr, "asp-view: give exactly one of --owner-key, "
			"--code, --assist\n");
		return false;
	}
	return true;
}

/* 0 to run, 1 to exit 0 (--help), -1 to exit 1. */
static int view_parse_args(int argc, char **argv, struct view_opts *o)
{
	int opt;

	*o = (struct view_opts){
		.relay = "ws://127.0.0.1:8080", .client = "windows",
		.client_version = "6.2", .token = getenv("ASP_TOKEN"),
		.pause_seconds = 5,
	};
	while ((opt = getopt_long(argc, argv, "", view_longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_RELAY: o->relay = optarg; break;
		case OPT_INSECURE: o->insecure = true; break;
		case OPT_CODE: o->code = optarg; break;
		case OPT_OWNER_KEY: o->owner_key = optarg; break;
		case OPT_ASSIST: o->assist = optarg; break;
		case OPT_CLIENT: o->client = optarg; break;
		case OPT_CLIENT_VERSION: o->client_version = optarg; break;
		case OPT_NAME: o->name = optarg; break;
		case OPT_TOKEN: o->token = optarg; break;
		case OPT_OUT: o->out = optarg; break;
		case OPT_SNAPSHOT: o->snapshot = optarg; break;
		case OPT_SEND_INPUT: o->send_input = true; break;
		case OPT_SEND_INPUT_NOW: o->send_input_now = true; break;
		case OPT_NO_RECONNECT: o->no_reconnect = true; break;
		case OPT_HELP: view_usage(stdout); return 1;
		default:
			if (client_num_opt_parse(view_num_opts,
						 sizeof(view_num_opts) /
						 sizeof(view_num_opts[0]),
						 opt, optarg, o))
				break;
			if (opt < OPT_FRAMES)
				view_usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "asp-view: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	return view_check_args(o) ? 0 : -1;
}

/* What the decoder says about the run; its failures are ours. */
static void view_decode_summary(struct view *v)
{
	struct codec_decode_stats st;
	char why[256];

	/* first_ok is reported, not judged: a stream with B-frames (a file)
	 * shows its first picture only after a few messages. */
	codec_decoder_stats(v->dec, &st);
	if (v->o.snapshot &&
	    codec_decoder_snapshot_png(v->dec, v->o.snapshot, why, sizeof(why)))
		client_verify_error(&v->verify, "--snapshot: %s", why);
	client_say("decode: pictures=%llu audio_packets=%llu errors=%llu "
		   "first_ok=%d size=%dx%d",
		   (unsigned long long)st.video_frames,
		   (unsigned long long)st.audio_packets,
		   (unsigned long long)st.errors, st.first_video_ok, st.width,
		   st.height);
}

/* The summary lines; runs before the exit status is taken. */
static void view_finish(struct view *v)
{
	view_decode_summary(v);
	client_verify_print(&v->verify);
}

/* The connection's verdict first, then the media's, then the clock's. */
static int view_status(struct view *v)
{
	int status = client_relays_exit_status(&v->relays,
					       client_close_info(v->c),
					       &v->refusal, v->leaving);

	if (status != CLIENT_EXIT_OK)
		return status;
	if (v->verify.errors)
		return CLIENT_EXIT_VERIFY;
	return v->timed_out ? CLIENT_EXIT_TIMEOUT : CLIENT_EXIT_OK;
}

static int view_run(struct view *v)
{
	struct client_config cfg = {
		.url = v->relays.target, .path = "/view",
		.subprotocol = "asp.view.v1", .insecure = v->o.insecure,
		.ops = &view_ops, .user = v,
	};
	int status;

	if (client_open(&v->c, &cfg))
		return CLIENT_EXIT_FAIL;
	client_timer_start(v->c, &v->tick, VIEW_TICK_US, view_tick, v);
	if (v->o.seconds > 0)
		client_timer_start(v->c, &v->deadline,
				   (int64_t)(v->o.seconds * 1e6),
				   view_deadline, v);
	status = client_run(v->c);
	if (v->was_joined)
		view_finish(v);
	if (status) {
		fprintf(stderr, "asp-view: the event loop failed\n");
		status = CLIENT_EXIT_FAIL;
	} else {
		status = view_status(v);
	}
	client_destroy(v->c);
	return status;
}

int main(int argc, char **argv)
{
	static struct view v;
	char why[300];
	int r = view_parse_args(argc, argv, &v.o);

	if (r)
		return r > 0 ? CLIENT_EXIT_OK : CLIENT_EXIT_FAIL;
	if (client_relays_init(&v.relays, v.o.relay, !v.o.no_reconnect, why,
			       sizeof(why))) {
		fprintf(stderr, "asp-view: --relay: %s\n", why);
		return CLIENT_EXIT_FAIL;
	}
	if (v.o.out && !(v.out = fopen(v.o.out, "wb"))) {
		perror(v.o.out);
		return CLIENT_EXIT_FAIL;
	}
	codec_log_quiet();
	if (codec_decoder_create(&v.dec, why, sizeof(why))) {
		fprintf(stderr, "asp-view: %s\n", why);
		r = CLIENT_EXIT_FAIL;
		goto out_file;
	}
	client_signals_install();
	/* Viewers lost together must not come back in lockstep. */
	srandom((unsigned)client_mono_us() ^ (unsigned)getpid());
	client_verify_init(&v.verify);
	/* The decoder judges coded video after a gap. */
	v.verify.check_gaps = false;
	r = view_run(&v);
	client_verify_free(&v.verify);
	codec_decoder_destroy(v.dec);
out_file:
	if (v.out && fclose(v.out)) {
		perror(v.o.out);
		r = r ? r : CLIENT_EXIT_FAIL;
	}
	return r;
}
