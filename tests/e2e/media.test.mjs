// Real media (issue 4) with the real tools: asp-host encodes the synthetic
// desktop (H.264 by libx264, HEVC by libx265, with Opus), asp-view joins
// mid-GOP and must decode its very first frame from the relay's keyframe
// cache, again on rejoin; what it wrote passes ffprobe and ffmpeg with no
// error; its snapshot is a picture, not a blank; keyframe requests reach
// the host; malformed video and audio are refused and the session goes on.

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  withRelay, parseKv, media, KIND, FLAG, HOST_USER,
} from './lib.mjs';

const CODEC = { h264: 1, hevc: 2, opus: 3 };

// A 10 s keyframe interval: a viewer joining 2 s into the GOP would wait
// 8 s for the next keyframe if the relay had no cache.
const KEYINT = '10';

function tmpFile(name) {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'asp-media-')), name);
}

// Grey-level variance of a PNG, read back through ffmpeg.
function pngVariance(file) {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
    { maxBuffer: 64 << 20 });
  let sum = 0; let sq = 0;
  for (const v of raw) { sum += v; sq += v * v; }
  const mean = sum / raw.length;
  return sq / raw.length - mean * mean;
}

// Joins as a guest with asp-view, writes the stream and a snapshot, and
// returns the parsed summary lines.
async function watch(relay, code, out, snap) {
  const v = relay.aspView(['--code', code, '--frames', '20', '--seconds', '60', '--out', out, '--snapshot', snap]);
  await v.expectExit(0, 90000);
  const metrics = parseKv((await v.waitForLine(/^metrics: (.*)/))[1]);
  const decode = parseKv((await v.waitForLine(/^decode: (.*)/))[1]);
  return { metrics, decode };
}

for (const codec of ['h264', 'hevc']) {
  test(`${codec}: a guest joining mid-GOP decodes its very first frame from the cache, rejoins the same way, and its stream passes ffprobe and ffmpeg`, () => withRelay(async (relay) => {
    const { host, key, code } = await relay.aspHostReady(['--share', '--source', 'synthetic', '--codec', codec,
      '--size', '640x360', '--fps', '15', '--keyint', KEYINT, '--desktop', 'desk-1']);
    // Let the GOP run a while so the joiner lands in its middle.
    const owner = await relay.join({ owner_key: key }, { user: HOST_USER, keepPayload: false });
    for (let i = 0; i < 20; i++) await owner.nextBinary((m) => m.hdr.kind === KIND.video, 30000);

    for (const round of ['join', 'rejoin']) {
      const out = tmpFile(`stream.${codec}`);
      const snap = tmpFile('snap.png');
      const { metrics, decode } = await watch(relay, code, out, snap);
      assert.equal(decode.first_ok, 1, `${round}: the first frame did not decode cleanly: ${JSON.stringify(decode)}`);
      assert.equal(decode.errors, 0, `${round}: decode errors ${JSON.stringify(decode)}`);
      assert.equal(metrics.first_keyframe, 1, `${round}: first video message was not a keyframe`);
      assert.ok(metrics.cached > 0, `${round}: nothing came from the keyframe cache (${JSON.stringify(metrics)})`);
      assert.equal(decode.size, '640x360');

      const probe = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
        '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', out], { encoding: 'utf8' });
      assert.equal(probe.status, 0, probe.stderr);
      assert.equal(probe.stderr, '', `ffprobe reported errors: ${probe.stderr}`);
      const st = JSON.parse(probe.stdout).streams[0];
      assert.equal(st.codec_name, codec);
      assert.equal(Number(st.nb_read_frames), metrics.frames, 'ffprobe counts a different number of frames');
      const dec = spawnSync('ffmpeg', ['-v', 'error', '-i', out, '-f', 'null', '-'], { encoding: 'utf8' });
      assert.equal(dec.status, 0, dec.stderr);
      assert.equal(dec.stderr, '', `ffmpeg reported decode errors: ${dec.stderr}`);
      assert.ok(pngVariance(snap) > 100, `${round}: the snapshot looks blank`);
    }
    // The cache served both joins: the host was never asked for a keyframe.
    assert.equal(host.countLines(/^keyframe-request:/), 0, 'the relay had to ask the host for a keyframe');
  }));
}

// --keyframe-gap 1: a request the relay made for the owner's own join
// must not swallow the one under test (keyframe.test.mjs covers the gap).
test('a viewer\'s keyframe request reaches the host, which answers with a keyframe', () => withRelay({ args: ['--keyframe-gap', '1'] }, async (relay) => {
  const { host, key } = await relay.aspHostReady(['--source', 'synthetic', '--size', '320x180', '--fps', '15',
    '--keyint', '30', '--desktop', 'desk-1']);
  const owner = await relay.join({ owner_key: key }, { user: HOST_USER, keepPayload: false });
  await owner.nextBinary((m) => m.hdr.kind === KIND.video, 30000);
  owner.send({ type: 'keyframe' });
  await host.waitForLine(/^keyframe-request: viewer/, 20000);
  // A keyframe follows (the cached one came first, at join).
  const k = await owner.nextBinary((m) => m.hdr.kind === KIND.video && (m.hdr.flags & FLAG.keyframe), 20000);
  assert.ok(k);
}));

test('garbage video and audio are refused as malformed, not forwarded, and the session goes on', () => withRelay(async (relay) => {
  const { host, owner } = await relay.collab({ keepPayload: true });
  const garbage = Buffer.from('this is not an access unit at all, no start code');
  host.sendBinary(media({ kind: KIND.video, codec: CODEC.h264, flags: FLAG.keyframe, payload: garbage }));
  let e = await host.next('error');
  assert.equal(e.code, 'malformed');
  host.sendBinary(media({ kind: KIND.video, codec: CODEC.hevc, payload: Buffer.alloc(64, 0xff) }));
  e = await host.next('error');
  assert.equal(e.code, 'malformed');
  host.sendBinary(media({ kind: KIND.audio, codec: CODEC.opus, payload: Buffer.alloc(0) }));
  e = await host.next('error');
  assert.equal(e.code, 'malformed');
  // The session goes on: a well-formed message after them is forwarded.
  host.sendBinary(media({ kind: KIND.cursor, payload: Buffer.alloc(12, 0) }));
  const got = await owner.nextBinary();
  assert.equal(got.hdr.kind, KIND.cursor, 'something refused reached the owner');
  await host.echo();
}));
