// One viewer connection to the relay (/view, asp.view.v1): hello, join,
// the desktop's media onto a canvas with the shared decoder and audio,
// input while this viewer holds control.  The collaborator page, the
// owner's client and the administrator's assisting view are each made of
// one; the page decides what each control message means to the person
// (hooks.control).
//
// Which relay: the page's list (ui.js relayList), used as asp-view uses
// its --relay (docs/cluster.md, "Clients"): the next relay when one cannot
// be reached, closes before joined or answers unavailable (each tried
// once before the first join); a redirect followed at once, at most 4 in a
// row without joining; and, with more than one relay to go to, a lost
// connection joins again by itself from the next relay, with the tools'
// backoff.  With the page's own origin only, a lost connection is the end
// and the page says why, as it always did.

import { KIND, inputMessage, parseMedia } from './media.js';
import { VideoPlayer } from './video.js';
import { AudioPlayer } from './audio.js';
import { InputCapture } from './input.js';
import { relayList, relayUrl } from './ui.js';

const REDIRECT_HOPS = 4;
const RETRY_FIRST_MS = 250;
const RETRY_CAP_MS = 5000;
// Refusals of a rejoin that say nothing about the next attempt: the
// desktop is not back yet (offline), or the relay had a hiccup.
const REJOIN_RETRY = new Set(['offline', 'slow', 'internal', 'hello_timeout']);

export const CLOSE_MESSAGES = {
  1001: 'The relay is going away (restarting or shutting down). Open the page again in a moment.',
  1006: 'The connection to the relay was lost.',
};

export class Viewer {
  // join: the join message's field ({code}, {owner_key} or {assist});
  // hooks: control(m) for every control message, closed(why) when the
  // viewer is done (why: the words for the person, or null after leave()),
  // reconnecting(why, ms, lost) before another attempt (lost: after a lost
  // connection; else a relay of the list failed before the first join),
  // reconnected() when joined again,
  // and the video's notice(kind), guidance(detail), size().  A page that
  // keeps one audio player (started in the click) or one input capture
  // across connections passes them in.  relays: the URLs to use in turn.
  constructor(canvas, {
    token, name, join, hooks, audio, input, closeMessages = CLOSE_MESSAGES, relays = relayList(),
  }) {
    this.hooks = hooks;
    this.joinFields = join;
    this.closeMessages = closeMessages;
    this.hello = { type: 'hello', client: 'web', client_version: '1.0', ...(name ? { name } : {}), ...(token ? { token } : {}) };
    this.leaving = false;
    this.done = false;
    this.seq = 0;
    this.metrics = null;
    this.audio = audio || new AudioPlayer();
    if (!audio) this.audio.start();
    this.video = new VideoPlayer(canvas, {
      notice: (kind) => hooks.notice?.(kind),
      guidance: (detail) => hooks.guidance?.(detail),
      keyframe: () => this.send({ type: 'keyframe' }),
      size: () => hooks.size?.(),
    });
    this.input = input || new InputCapture(canvas, (fields) => this.sendInput(fields));
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    this.relays = relays;
    this.at = 0;            // the list relay this chain of attempts began at
    this.hops = 0;          // redirects followed without joining
    this.retries = 0;       // failed attempts since the last join
    this.failed = 0;        // list relays failed before the first join
    this.hadSession = false;
    this.lost = false;
    this.redirects = 0;
    this.timer = null;
    this.connect(relays[0]);
  }

  // One attempt, with fresh per-connection state.
  connect(url) {
    Object.assign(this, { url, joined: false, lastError: null, retryError: null, redirect: null, verdict: null });
    let ws;
    try {
      ws = new WebSocket(`${url}/view`, 'asp.view.v1');
    } catch (e) {
      this.ws = null;
      this.verdict = `The relay ${url} cannot be reached (${e.message}).`;
      this.timer = setTimeout(() => { this.timer = null; this.onClose({ code: 1006, reason: '' }); }, 0);
      return;
    }
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => this.send(this.hello);
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      if (typeof e.data === 'string') this.onControl(e.data);
      else this.onMedia(e.data);
    };
    ws.onclose = (e) => { if (ws === this.ws) this.onClose(e); };
    this.ws = ws;
  }

  send(obj) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  sendInput(fields) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(inputMessage(this.seq, fields));
    this.seq = (this.seq + 1) >>> 0;
  }

  onControl(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (m.type === 'welcome') this.send({ type: 'join', ...this.joinFields });
    else if (m.type === 'joined') this.onJoined(m);
    else if (m.type === 'stream') this.video.setHint(m.video);
    else if (m.type === 'metrics') this.metrics = m;
    else if (m.type === 'error' && this.sendsElsewhere(m)) return;
    else if (m.type === 'error') this.lastError = { ...m, beforeJoin: !this.joined };
    this.hooks.control(m);
  }

  onJoined(m) {
    const back = this.lost;
    Object.assign(this, { joined: true, hadSession: true, lost: false, hops: 0, retries: 0, failed: 0 });
    this.input.enabled = m.control === true;
    this.send({ type: 'metrics', interval_ms: 1000 });
    if (back) this.hooks.reconnected?.();
  }

  // An error that sends this viewer to another relay: a redirect, or a
  // refusal worth another attempt.  The page is not told; the attempt
  // ends here and onClose goes on.
  sendsElsewhere(m) {
    if (m.code === 'redirect') this.takeRedirect(m.url);
    else if (m.code === 'unavailable' || (!this.joined && this.hadSession && REJOIN_RETRY.has(m.code))) this.retryError = m.message;
    else return false;
    this.ws.close(1000);
    return true;
  }

  takeRedirect(url) {
    const next = relayUrl(url, true);
    if (!next) this.verdict = `The relay sent a redirect this page cannot follow (${String(url).slice(0, 96)}).`;
    else if (this.hops >= REDIRECT_HOPS) this.verdict = `Redirect loop: ${REDIRECT_HOPS + 1} redirects in a row without reaching the desktop.`;
    else this.redirect = next;
  }

  onMedia(buf) {
    const m = parseMedia(buf);
    if (!m) return;
    if (m.kind === KIND.video) this.video.push(m);
    else if (m.kind === KIND.audio) this.audio.push(m);
  }

  // The connection is gone: follow a redirect, try the next relay, or say
  // why and stop.
  onClose(e) {
    if (this.leaving) return this.finish(null);
    const wasJoined = this.joined;
    this.joined = false;
    this.input.enabled = false;
    if (this.redirect) {
      const url = this.redirect;
      this.hops++;
      this.redirects++;
      return this.connect(url);
    }
    const why = this.why(e);
    if (this.final(e)) return this.finish(why);
    if (wasJoined) {
      if (this.relays.length < 2) return this.finish(why);
      this.lost = true;
    } else if (!this.hadSession && ++this.failed >= this.relays.length) {
      return this.finish(why);
    }
    const ms = this.backoff();
    this.at = (this.at + 1) % this.relays.length;
    this.hops = 0;
    this.video.resync();
    this.hooks.reconnecting?.(why, ms, this.lost);
    this.timer = setTimeout(() => { this.timer = null; this.connect(this.relays[this.at]); }, ms);
    return undefined;
  }

  // The words for the person: our own verdict, the relay's refusal, or
  // what the close code means.
  why(e) {
    const refused = this.lastError && (this.lastError.beforeJoin || (e.code >= 4000 && e.code <= 4999));
    return this.verdict || (refused && this.lastError.message) || this.retryError
      || this.closeMessages[e.code] || `The relay closed the connection (${e.code}).`;
  }

  // A refusal that ends this viewer: what it answered the join with, or
  // the relay's close code, unless another attempt may do better.
  final(e) {
    let code = null;
    if (this.lastError?.beforeJoin) code = this.lastError.code;
    else if (e.code >= 4000 && e.code <= 4999) code = e.reason;
    if (code === null || this.verdict || this.retryError) return false;
    return !(code === 'redirect' || code === 'unavailable' || (this.hadSession && REJOIN_RETRY.has(code)));
  }

  // 0.25 s doubling to 5 s, each drawn from its upper half.
  backoff() {
    const d = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** Math.min(this.retries, 5));
    this.retries++;
    return d / 2 + Math.random() * (d / 2);
  }

  finish(why) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.video.close();
    this.resolveClosed();
    if (why === null) { this.hooks.closed(null); return; }
    this.audio.close();
    this.input.enabled = false;
    this.hooks.closed(why);
  }

  leave() {
    this.leaving = true;
    this.video.close();
    this.audio.close();
    this.input.enabled = false;
    const state = this.ws ? this.ws.readyState : WebSocket.CLOSED;
    if (state === WebSocket.OPEN) {
      this.send({ type: 'leave' });
      // The relay closes after leave; don't let a lost close hold the slot.
      setTimeout(() => this.ws.close(), 3000);
    } else if (state === WebSocket.CONNECTING) {
      this.ws.close();
    } else {
      this.finish(null); // between attempts: nothing to close
    }
  }

  stats() {
    return {
      videoFrames: this.video.decoded, codecString: this.video.codecString, fps: this.video.fps,
      relay: this.url, redirects: this.redirects,
    };
  }
}
