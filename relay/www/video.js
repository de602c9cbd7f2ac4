// Video: Annex-B access units in, pictures on a canvas out, through the
// browser's WebCodecs VideoDecoder.  The decoder is configured from the
// first keyframe (its SPS gives the codec string) and configured again
// whenever a keyframe's parameter sets differ, which is how a resolution or
// profile change shows up.  Frames are drawn as soon as they are decoded:
// this is a live desktop, so showing the newest picture beats smoothness.

import { CODEC, FLAG_KEYFRAME, parameterSets } from './media.js';

// More undecoded chunks than this means the decoder cannot keep up: skip to
// the next keyframe rather than fall ever further behind.
const MAX_DECODE_QUEUE = 30;
const KEYFRAME_ASK_GAP_MS = 1000;

export class VideoPlayer {
  // hooks: notice(kind) with 'pattern' | 'unsupported-codec' | null,
  // guidance(detail) when this browser cannot decode, keyframe() to ask
  // the relay for a keyframe, size(width, height) when the picture changes.
  constructor(canvas, hooks) {
    this.canvas = canvas;
    this.ctx2d = canvas.getContext('2d', { alpha: false });
    this.hooks = hooks;
    this.decoder = null;
    this.setsKey = null;
    this.codecString = null;
    this.hint = null;
    this.waitKey = true;
    this.decoded = 0;
    this.failed = false;
    this.shownNotice = undefined;
    this.lastAsk = 0;
    this.fpsWindow = { t: performance.now(), n: 0, fps: 0 };
  }

  // The relay's `stream` message: its codec_string wins over the SPS's.
  setHint(video) { this.hint = video || null; }

  get fps() {
    const w = this.fpsWindow;
    const now = performance.now();
    if (now - w.t >= 1000) {
      w.fps = (w.n * 1000) / (now - w.t);
      w.t = now;
      w.n = 0;
    }
    return w.fps;
  }

  push(m) {
    if (this.failed) return;
    if (m.codec === CODEC.none) return this.notice('pattern');
    if (m.codec !== CODEC.h264 && m.codec !== CODEC.hevc) return this.notice('unsupported-codec');
    this.notice(null);
    const key = (m.flags & FLAG_KEYFRAME) !== 0;
    if (key) this.onKeyframe(m);
    if (this.waitKey || !this.decoder) return this.askKeyframe();
    if (this.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      this.waitKey = true;
      return this.askKeyframe();
    }
    try {
      this.decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: m.pts, data: m.payload }));
    } catch (e) {
      this.onError(e);
    }
  }

  // Tells the page only when what it should say changes, not every frame.
  notice(kind) {
    if (kind === this.shownNotice) return;
    this.shownNotice = kind;
    this.hooks.notice(kind);
  }

  onKeyframe(m) {
    const sets = parameterSets(m.codec, m.payload);
    if (!sets) return; // a keyframe without parameter sets decodes with the old ones
    const hinted = this.hint && this.hint.codec === (m.codec === CODEC.h264 ? 'h264' : 'hevc') && this.hint.codec_string;
    const codecString = hinted || sets.codecString;
    if (!this.decoder || this.decoder.state === 'closed' || sets.key !== this.setsKey) {
      this.configure(codecString);
      this.setsKey = sets.key;
    }
    this.waitKey = false;
  }

  configure(codec) {
    if (typeof VideoDecoder === 'undefined') return this.fail('WebCodecs (VideoDecoder) is not available in this browser.');
    const config = { codec, optimizeForLatency: true };
    if (!this.decoder || this.decoder.state === 'closed') {
      this.decoder = new VideoDecoder({ output: (f) => this.draw(f), error: (e) => this.onError(e) });
    }
    this.codecString = codec;
    this.decoder.configure(config);
    VideoDecoder.isConfigSupported(config).then((r) => {
      if (!r.supported) this.fail(`VideoDecoder.isConfigSupported says ${codec} is not supported.`);
    }, (e) => this.fail(`VideoDecoder.isConfigSupported failed for ${codec}: ${e.message}`));
  }

  draw(frame) {
    const w = frame.displayWidth;
    const h = frame.displayHeight;
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.hooks.size(w, h);
    }
    this.ctx2d.drawImage(frame, 0, 0, w, h);
    frame.close();
    this.decoded++;
    this.fpsWindow.n++;
  }

  // A decoder that never produced a picture cannot decode this stream here;
  // one that did hit a bad frame, and starts over at the next keyframe.
  onError(e) {
    if (this.decoded === 0) return this.fail(`The video decoder failed to start (${this.codecString}): ${e.message}`);
    this.closeDecoder();
    this.waitKey = true;
    this.askKeyframe();
  }

  askKeyframe() {
    const now = performance.now();
    if (now - this.lastAsk < KEYFRAME_ASK_GAP_MS) return;
    this.lastAsk = now;
    this.hooks.keyframe();
  }

  fail(detail) {
    if (this.failed) return;
    this.failed = true;
    this.closeDecoder();
    this.hooks.guidance(detail);
  }

  closeDecoder() {
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    this.decoder = null;
    this.setsKey = null;
  }

  // The stream starts over (another connection): wait for its keyframe.
  resync() {
    this.closeDecoder();
    this.waitKey = true;
  }

  close() {
    this.closeDecoder();
    this.failed = true;
  }
}
