// A slow viewer must not hurt anyone else: while the guest stops reading for
// 10 s under a ~50 Mbit/s stream, the owner keeps receiving with bounded
// latency, the relay's memory stays bounded, the guest's queue drops, and
// when the guest reads again it restarts at a keyframe (docs/protocol.md,
// "Metrics"; STYLE.md habit 7: every consumer has a bounded queue).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLAG, KIND, controlMsg, delay, isNotify, media, parseKv, withRelay } from './lib.mjs';

const PAUSE_MS = 10000;
const RSS_LIMIT_MB = 200;
// Growth allowed while one viewer stalls: its queue (--queue-bytes, 16 MiB
// by default) plus the keyframe cache (--gop-bytes, 8 MiB), three times over.
const RSS_GROWTH_LIMIT_MB = 72;
const OWNER_LATENCY_LIMIT_MS = 2000;
// ~48 Mbit/s of video, a keyframe every half second.
const HEAVY = ['--fps', '60', '--frame-bytes', '100000', '--keyint-frames', '30', '--seconds', '90'];

const isVideo = (b) => b.hdr.kind === KIND.video;

// ASan holds freed memory in a quarantine (256 MB by default) that would
// make RSS count every frame the relay ever freed; a small one makes RSS
// measure what the relay really keeps.
const RELAY = {
  env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':') },
};

// Samples the relay's RSS until stop() is called; resolves with the peak.
function watchRss(relay) {
  let peak = relay.rssMB();
  let running = true;
  const done = (async () => {
    while (running) {
      peak = Math.max(peak, relay.rssMB());
      await delay(100);
    }
    return peak;
  })();
  return { stop: () => { running = false; return done; } };
}

// Every place where the video seq jumps, with the message after the jump.
function gaps(items) {
  const out = [];
  for (let i = 1; i < items.length; i++) {
    if (items[i].hdr.seq !== ((items[i - 1].hdr.seq + 1) >>> 0)) out.push({ from: items[i - 1].hdr.seq, to: items[i] });
  }
  return out;
}

test('a guest that stops reading for 10 s under a 50 Mbit/s stream does not slow the owner or grow the relay, and restarts at a keyframe', () => withRelay(RELAY, async (relay) => {
  const { key, code } = await relay.aspHostReady(['--share', ...HEAVY]);
  const owner = await relay.join({ owner_key: key }, { label: 'owner', keepPayload: false });
  const guest = await relay.join({ code }, { label: 'guest', keepPayload: false });
  for (let i = 0; i < 30; i++) await guest.nextBinary(isVideo);

  const rssBefore = relay.rssMB();
  const rss = watchRss(relay);
  guest.pauseReading();
  const pausedAt = Date.now();
  await delay(PAUSE_MS); // the scenario is "10 s without reading"
  const ownerDuring = owner.bin.items.filter((b) => isVideo(b) && b.wall >= pausedAt);
  const lastSeqAtResume = ownerDuring.at(-1)?.hdr.seq;
  guest.resumeReading();
  const peakMB = await rss.stop();

  assert.ok(ownerDuring.length >= 300, `owner got only ${ownerDuring.length} video messages in 10 s of a 60 fps stream`);
  const latencies = ownerDuring.map((b) => b.wall - Number(b.hdr.capture / 1000n)).sort((a, b) => a - b);
  const worst = latencies.at(-1);
  assert.ok(worst < OWNER_LATENCY_LIMIT_MS,
    `owner latency reached ${worst} ms while the guest stalled (p50 ${latencies[latencies.length >> 1]} ms)`);
  assert.ok(peakMB < RSS_LIMIT_MB, `relay RSS peaked at ${peakMB.toFixed(1)} MB while the guest stalled`);
  assert.ok(peakMB - rssBefore < RSS_GROWTH_LIMIT_MB,
    `relay RSS grew from ${rssBefore.toFixed(1)} to ${peakMB.toFixed(1)} MB while the guest stalled`);

  // The guest catches up to live, then says what it lost.
  await guest.nextBinary((b) => isVideo(b) && b.hdr.seq >= lastSeqAtResume, 30000);
  guest.send({ type: 'metrics' });
  const report = await guest.next('metrics', 20000);
  assert.ok(report.dropped > 0, `guest's dropped count is ${report.dropped} after a 10 s stall: ${JSON.stringify(report)}`);
  assert.equal(guest.close, null, guest.describe());

  const video = guest.bin.items.filter(isVideo);
  const jumps = gaps(video);
  console.log(`# slow guest: owner got ${ownerDuring.length} frames while stalled, worst latency ${worst} ms; ` +
    `relay RSS ${rssBefore.toFixed(1)} MB, peak ${peakMB.toFixed(1)} MB; guest dropped ${report.dropped}, ${jumps.length} gaps ` +
    `(${jumps.slice(0, 5).map((g) => `${g.from}->${g.to.hdr.seq}`).join(' ')})`);
  assert.ok(jumps.length > 0, 'the guest lost nothing, yet its dropped count says otherwise');
  // Dropping only discardable frames keeps the stream decodable; dropping
  // anything else must be followed by a keyframe.  The owner saw every frame.
  const ownerFlags = new Map(owner.bin.items.filter(isVideo).map((b) => [b.hdr.seq, b.hdr.flags]));
  for (const g of jumps) {
    let onlyDiscardable = true;
    for (let s = (g.from + 1) >>> 0; s !== g.to.hdr.seq; s = (s + 1) >>> 0) {
      if (!((ownerFlags.get(s) ?? 0) & FLAG.discardable)) { onlyDiscardable = false; break; }
    }
    assert.ok(onlyDiscardable || g.to.hdr.flags & FLAG.keyframe,
      `after the gap ${g.from} -> ${g.to.hdr.seq} the guest got a frame with flags ${g.to.hdr.flags}, not a keyframe`);
  }
}));

test('asp-view pausing for 10 s under a 50 Mbit/s stream still verifies its stream, and the relay reports drops', () => withRelay(RELAY, async (relay) => {
  const { key, code } = await relay.aspHostReady(['--share', ...HEAVY]);
  const owner = await relay.join({ owner_key: key }, { label: 'owner', keepPayload: false });
  const rss = watchRss(relay);
  const view = relay.aspView(['--code', code, '--pause-after', '30', '--pause-seconds', '10', '--frames', '200', '--seconds', '40']);
  await view.expectExit(0, 60000);
  const peakMB = await rss.stop();
  assert.ok(peakMB < RSS_LIMIT_MB, `relay RSS peaked at ${peakMB.toFixed(1)} MB`);
  const kv = parseKv((await view.waitForLine(/^metrics: (.*)$/))[1]);
  assert.equal(kv.errors, 0, view.describe());
  assert.ok(kv.gaps > 0, `asp-view saw no gaps after pausing 10 s at 50 Mbit/s\n${view.describe()}`);
  const ownerVideo = owner.bin.items.filter(isVideo);
  assert.ok(ownerVideo.length >= 600, `the owner got only ${ownerVideo.length} frames meanwhile`);
  assert.deepEqual(gaps(ownerVideo).map((g) => `${g.from}->${g.to.hdr.seq}`), [], 'the owner lost video');
  const m = await relay.get('/metrics');
  const dropped = m.body.match(/^asp_dropped_total\{kind="video"\} (\d+)$/m);
  assert.ok(dropped && Number(dropped[1]) > 0, `asp_dropped_total{kind="video"} should be above 0 in /metrics:\n${m.body}`);
  console.log(`# asp-view pause: RSS peak ${peakMB.toFixed(1)} MB; ${view.lines.find((l) => l.startsWith('metrics: '))}`);
}));

// A raw host pushing ~48 Mbit/s of video at 60 fps (codec 0; a keyframe
// every 30 frames, the others not discardable, so a full queue must skip to
// a keyframe) and a control message every 10 frames.  stop() resolves with
// the number of control messages sent; videoSeq() is the next video seq.
function pump(host) {
  let running = true;
  let video = 0;
  let control = 0;
  const payload = Buffer.alloc(100000, 0x42);
  const done = (async () => {
    while (running) {
      const key = video % 30 === 0;
      host.sendBinary(media({ kind: KIND.video, flags: key ? FLAG.keyframe | FLAG.config : 0, seq: video++, payload }));
      if (video % 10 === 0) host.sendBinary(controlMsg(control++));
      await delay(16);
    }
    return control;
  })();
  return { stop: () => { running = false; return done; }, videoSeq: () => video };
}

// Resolves once /metrics counts dropped video; polls, as nothing pushes it.
async function videoDropped(relay, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = (await relay.get('/metrics')).body.match(/^asp_dropped_total\{kind="video"\} (\d+)$/m);
    if (m && Number(m[1]) > 0) return;
    assert.ok(Date.now() < deadline, `no video dropped after ${ms} ms of a stalled viewer`);
    await delay(200);
  }
}

test('control messages are never dropped for a stalled viewer, while its video skips to a keyframe', () => withRelay({ ...RELAY, args: ['--queue-bytes', '1M'] }, async (relay) => {
  const { host, owner, guest } = await relay.collab({ keepPayload: false });
  const p = pump(host);
  let sent;
  try {
    for (let i = 0; i < 30; i++) await guest.nextBinary(isVideo);
    guest.pauseReading();
    // Loopback sockets buffer tens of MB before the relay's queue even
    // starts to fill: stay stalled until the relay has dropped video.
    await videoDropped(relay);
    const live = p.videoSeq();
    guest.resumeReading();
    await guest.nextBinary((b) => isVideo(b) && b.hdr.seq >= live, 30000);
  } finally {
    sent = await p.stop();
  }
  await guest.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === sent - 1, 30000);
  const controls = guest.bin.items.filter((b) => b.hdr.kind === KIND.control).map((b) => b.hdr.seq);
  assert.deepEqual(controls, Array.from({ length: sent }, (_, i) => i), 'the guest must get every control message, in order');
  const jumps = gaps(guest.bin.items.filter(isVideo));
  const seqs = guest.bin.items.filter(isVideo).map((b) => b.hdr.seq);
  assert.ok(jumps.length > 0, `the relay counted drops, yet the guest lost no video: got ${seqs.length} frames, ` +
    `seq ${seqs[0]}..${seqs.at(-1)} of ${owner.bin.items.filter(isVideo).length} the owner got\n${(await relay.get('/metrics')).body.match(/^asp_dropped.*$/gm).join('\n')}`);
  for (const g of jumps) {
    assert.ok(g.to.hdr.flags & FLAG.keyframe, `after the gap ${g.from} -> ${g.to.hdr.seq} the guest got flags ${g.to.hdr.flags}, not a keyframe`);
  }
  assert.equal(gaps(owner.bin.items.filter(isVideo)).length, 0, 'the owner lost video');
}));

test('a viewer that reads nothing for longer than --stall-timeout is closed as slow; the host is told and the owner keeps watching', () => withRelay({ ...RELAY, args: ['--stall-timeout', '2'] }, async (relay) => {
  const { host, owner, guest } = await relay.collab({ keepPayload: false });
  const p = pump(host);
  try {
    for (let i = 0; i < 10; i++) await guest.nextBinary(isVideo);
    guest.pauseReading();
    await host.next('notify', 20000, isNotify('collab_stopped'));
    // Only the stalled guest goes: the host and the owner are reading.
    await host.echo();
    await owner.echo();
    const after = owner.bin.items.length;
    await owner.nextBinary((b) => isVideo(b) && owner.bin.items.indexOf(b) >= after);
    const m = await relay.get('/metrics');
    assert.match(m.body, /^asp_refusals_total\{reason="slow"\} 1$/m, m.body);
    guest.resumeReading();
    await guest.waitClose(20000); // no close frame fits a full socket: the code is not checked
  } finally {
    await p.stop();
  }
}));
