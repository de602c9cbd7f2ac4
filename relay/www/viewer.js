// One viewer connection to the relay (/view, asp.view.v1): hello, join,
// the desktop's media onto a canvas with the shared decoder and audio,
// input while this viewer holds control.  The collaborator page, the
// owner's client and the administrator's assisting view are each made of
// one; the page decides what each control message means to the person
// (hooks.control).

import { KIND, inputMessage, parseMedia } from './media.js';
import { VideoPlayer } from './video.js';
import { AudioPlayer } from './audio.js';
import { InputCapture } from './input.js';

export const CLOSE_MESSAGES = {
  1001: 'The relay is going away (restarting or shutting down). Open the page again in a moment.',
  1006: 'The connection to the relay was lost.',
};

export class Viewer {
  // join: the join message's field ({code}, {owner_key} or {assist});
  // hooks: control(m) for every control message, closed(why) when the
  // relay closes (why: its words, or null after leave()), and the video's
  // notice(kind), guidance(detail), size().  A page that keeps one audio
  // player (started in the click) or one input capture across
  // connections passes them in.
  constructor(canvas, { token, name, join, hooks, audio, input, closeMessages = CLOSE_MESSAGES }) {
    this.hooks = hooks;
    this.joinFields = join;
    this.closeMessages = closeMessages;
    this.lastError = null;
    this.leaving = false;
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
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    this.ws = new WebSocket(`${scheme}://${location.host}/view`, 'asp.view.v1');
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => this.send({
      type: 'hello', client: 'web', client_version: '1.0', ...(name ? { name } : {}), ...(token ? { token } : {}),
    });
    this.ws.onmessage = (e) => (typeof e.data === 'string' ? this.onControl(e.data) : this.onMedia(e.data));
    this.ws.onclose = (e) => this.onClose(e);
  }

  send(obj) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  sendInput(fields) {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(inputMessage(this.seq, fields));
    this.seq = (this.seq + 1) >>> 0;
  }

  onControl(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (m.type === 'welcome') this.send({ type: 'join', ...this.joinFields });
    else if (m.type === 'joined') {
      this.input.enabled = m.control === true;
      this.send({ type: 'metrics', interval_ms: 1000 });
    } else if (m.type === 'stream') this.video.setHint(m.video);
    else if (m.type === 'metrics') this.metrics = m;
    else if (m.type === 'error') this.lastError = m;
    this.hooks.control(m);
  }

  onMedia(buf) {
    const m = parseMedia(buf);
    if (!m) return;
    if (m.kind === KIND.video) this.video.push(m);
    else if (m.kind === KIND.audio) this.audio.push(m);
  }

  // The relay closed: after leave() that is expected; otherwise say why,
  // with the relay's own message when it sent one.
  onClose(e) {
    this.video.close();
    this.resolveClosed();
    if (this.leaving) { this.hooks.closed(null); return; }
    this.audio.close();
    this.input.enabled = false;
    this.hooks.closed(this.lastError?.message || this.closeMessages[e.code] || `The relay closed the connection (${e.code}).`);
  }

  leave() {
    this.leaving = true;
    this.send({ type: 'leave' });
    this.video.close();
    this.audio.close();
    this.input.enabled = false;
    // The relay closes after leave; don't let a lost close hold the slot.
    setTimeout(() => this.ws.close(), 3000);
  }

  stats() {
    return { videoFrames: this.video.decoded, codecString: this.video.codecString, fps: this.video.fps };
  }
}
