// Audio: Opus packets in, sound out, through WebCodecs AudioDecoder and Web
// Audio.  Each decoded 20 ms block is scheduled right after the previous
// one; a small lead absorbs network jitter, and when playback falls behind
// or runs too far ahead the schedule restarts near "now" so latency stays
// bounded.  The AudioContext must be created during a user gesture (the
// Join click), or the browser keeps it suspended.

import { CODEC } from './media.js';

const LEAD_S = 0.06;
const MAX_AHEAD_S = 0.4;

export class AudioPlayer {
  constructor() {
    this.ctx = null;
    this.decoder = null;
    this.blocks = 0;
  }

  // Call from a user gesture handler.
  start() {
    this.close();
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || typeof AudioDecoder === 'undefined') return;
    this.ctx = new Ctx({ sampleRate: 48000, latencyHint: 'interactive' });
    this.ctx.resume().catch(() => {});
    this.playAt = 0;
    this.blocks = 0;
  }

  push(m) {
    if (!this.ctx || m.codec !== CODEC.opus) return;
    if (!this.decoder) {
      this.decoder = new AudioDecoder({ output: (d) => this.play(d), error: () => { this.decoder = null; } });
      this.decoder.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 2 });
    }
    try {
      this.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: m.pts, data: m.payload }));
    } catch {
      this.decoder = null;
    }
  }

  play(data) {
    const ctx = this.ctx;
    if (!ctx) return data.close();
    const buf = ctx.createBuffer(data.numberOfChannels, data.numberOfFrames, data.sampleRate);
    for (let c = 0; c < data.numberOfChannels; c++) {
      const plane = new Float32Array(data.numberOfFrames);
      data.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
      buf.copyToChannel(plane, c);
    }
    data.close();
    this.blocks++;
    const now = ctx.currentTime;
    if (this.playAt < now + 0.01 || this.playAt > now + MAX_AHEAD_S) this.playAt = now + LEAD_S;
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    src.start(this.playAt);
    this.playAt += buf.duration;
  }

  close() {
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    this.decoder = null;
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}
