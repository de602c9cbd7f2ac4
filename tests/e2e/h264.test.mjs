// Real H.264 through the relay: a short x264 stream made by ffmpeg at run
// time is sent access unit by access unit from a raw host.  The relay reads
// the bitstream (codec/codec_inspect.h) to tell viewers what the stream is,
// to start joiners at a real IDR from its cache, and to refuse garbage,
// while forwarding every byte as it came (docs/protocol.md, "Media
// messages", "Viewer" step 4, "stream").

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FLAG, KIND, Relay, media, withRelay } from './lib.mjs';

const WIDTH = 320;
const HEIGHT = 240;
const GOP = 30;
const H264 = 1;
const NAL = { slice: 1, idr: 5, sps: 7, pps: 8, aud: 9 };

// 90 frames of ffmpeg's test pattern, an IDR every 30, no B-frames, with an
// access unit delimiter before each access unit: { data, nals: [types] }[].
function makeStream() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-e2e-h264-'));
  const file = path.join(dir, 'test.h264');
  try {
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc=size=${WIDTH}x${HEIGHT}:rate=30`,
      '-frames:v', '90', '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
      '-bf', '0', '-g', String(GOP), '-x264-params', `aud=1:keyint=${GOP}:min-keyint=${GOP}:scenecut=0`,
      '-f', 'h264', file], { stdio: 'pipe' });
    return splitAccessUnits(fs.readFileSync(file));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Offsets of the Annex-B start codes (00 00 01, or 00 00 00 01 taken whole).
function startCodes(buf) {
  const out = [];
  for (let i = 0; i + 3 <= buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      out.push(i > 0 && buf[i - 1] === 0 ? i - 1 : i);
      i += 2;
    }
  }
  return out;
}

const nalType = (buf, sc) => buf[sc + (buf[sc + 2] === 1 ? 3 : 4)] & 0x1f;

function splitAccessUnits(buf) {
  const units = [];
  for (const sc of startCodes(buf)) {
    const type = nalType(buf, sc);
    if (type === NAL.aud || units.length === 0) units.push({ start: sc, nals: [] });
    units.at(-1).nals.push(type);
  }
  return units.map((u, i) => ({ data: buf.subarray(u.start, units[i + 1]?.start ?? buf.length), nals: u.nals }));
}

const STREAM = makeStream();
const isIdr = (au) => au.nals.includes(NAL.idr);

// Access unit i as a video message; flags from the bitstream unless given.
function auMsg(i, flags) {
  const au = STREAM[i];
  const f = flags ?? (isIdr(au) ? FLAG.keyframe | FLAG.config : 0);
  return media({ kind: KIND.video, codec: H264, flags: f, seq: i, pts: BigInt(i) * 33333n, payload: au.data });
}

const isVideo = (b) => b.hdr.kind === KIND.video;

test('the generated stream is what the tests assume', () => {
  assert.equal(STREAM.length, 90);
  assert.deepEqual(STREAM.map((au, i) => (isIdr(au) ? i : -1)).filter((i) => i >= 0), [0, 30, 60]);
  assert.ok(STREAM[30].nals.includes(NAL.sps) && STREAM[30].nals.includes(NAL.pps), 'IDRs carry SPS and PPS');
});

test('viewers of a real H.264 stream are told its codec string and picture size, in stream and in metrics', () => withRelay(async (relay) => {
  const host = await relay.host();
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  for (let i = 0; i < GOP; i++) host.sendBinary(auMsg(i));
  const s = await owner.next('stream');
  assert.equal(s.video?.codec, 'h264', JSON.stringify(s));
  assert.match(s.video.codec_string, /^avc1\.42[0-9a-fA-F]{4}$/, `baseline profile: ${JSON.stringify(s)}`);
  assert.equal(s.video.width, WIDTH, JSON.stringify(s));
  assert.equal(s.video.height, HEIGHT, JSON.stringify(s));
  for (let i = 0; i < GOP; i++) await owner.nextBinary(isVideo);
  owner.send({ type: 'metrics' });
  const video = (await owner.next('metrics')).streams.find((st) => st.kind === 'video');
  assert.equal(video?.codec, 'h264', JSON.stringify(video));
  assert.equal(video.width, WIDTH, JSON.stringify(video));
  assert.equal(video.height, HEIGHT, JSON.stringify(video));
}));

test('a guest joining mid-GOP starts at the cached IDR with its SPS and PPS, then every frame since, byte for byte', () => withRelay(async (relay) => {
  const host = await relay.host();
  const code = await Relay.share(host);
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  const last = GOP + 14;
  const sent = [];
  for (let i = 0; i <= last; i++) {
    sent.push(auMsg(i));
    host.sendBinary(sent[i]);
  }
  await owner.nextBinary((b) => isVideo(b) && b.hdr.seq === last);
  const guest = await relay.join({ code }, { label: 'guest' });
  const s = await guest.next('stream');
  assert.equal(s.video?.width, WIDTH, `a joiner is told the stream on join: ${JSON.stringify(s)}`);
  for (let i = GOP; i <= last; i++) {
    const got = await guest.nextBinary(isVideo);
    assert.equal(got.hdr.seq, i, `guest's video #${i - GOP} is seq ${got.hdr.seq}, want ${i} (the cache starts at the IDR)`);
    assert.ok(got.data.equals(sent[i]), `guest's seq ${i} differs from what the host sent`);
  }
}));

test('the relay trusts the bitstream, not the host\'s keyframe flag, for where a joiner starts; the bytes still go out as sent', () => withRelay(async (relay) => {
  const host = await relay.host();
  const code = await Relay.share(host);
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  const lie = 35; // a delta frame flagged as a keyframe
  const sent = [];
  for (let i = 0; i <= 40; i++) {
    sent.push(auMsg(i, i === GOP ? 0 : i === lie ? FLAG.keyframe : undefined)); // and an IDR not flagged
    host.sendBinary(sent[i]);
  }
  for (let i = 0; i <= 40; i++) {
    const got = await owner.nextBinary(isVideo);
    assert.ok(got.data.equals(sent[i]), `owner's seq ${got.hdr.seq} differs from what the host sent (flags ${got.hdr.flags})`);
  }
  const guest = await relay.join({ code }, { label: 'guest' });
  const first = await guest.nextBinary(isVideo);
  assert.equal(first.hdr.seq, GOP, `a joiner should start at the real IDR (seq ${GOP}), not seq ${first.hdr.seq}`);
  const m = await relay.get('/metrics');
  assert.match(m.body, /^asp_keyframe_mismatches_total 2$/m, `two flags contradicted the bitstream:\n${m.body}`);
}));

for (const [what, payload] of [
  ['bytes before the first start code', Buffer.concat([Buffer.from([7, 7, 7]), STREAM[1].data])],
  ['no start code at all', Buffer.alloc(500, 0x42)],
  ['a forbidden_zero_bit set', Buffer.from([0, 0, 0, 1, 0x80 | 0x65, 1, 2, 3])],
]) {
  test(`an H.264 message with ${what} is answered with malformed and not forwarded`, () => withRelay(async (relay) => {
    const host = await relay.host();
    const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
    host.sendBinary(auMsg(0));
    await owner.nextBinary(isVideo);
    host.sendBinary(media({ kind: KIND.video, codec: H264, seq: 1, payload }));
    const err = await host.next('error');
    assert.equal(err.code, 'malformed', JSON.stringify(err));
    host.sendBinary(auMsg(2));
    assert.equal((await owner.nextBinary(isVideo)).hdr.seq, 2, owner.describe());
  }));
}
