// Instant join: a viewer that joins mid-stream starts at a decodable point
// from the relay's cache, not at the host's next scheduled keyframe
// (docs/protocol.md, "Viewer", step 4).  The host here sends a keyframe only
// every 10 s (300 frames at 30 fps), so waiting for it would be obvious.
// asp-host's pattern source is synthetic (codec 0, CRC-checked payloads).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLAG, KIND, parseKv, patternCheck, withRelay } from './lib.mjs';

const FAST_MS = 3000;
const isVideo = (b) => b.hdr.kind === KIND.video;

// A real host with a 10 s keyframe interval, watched by the owner for 2 s so
// the stream is well past its first keyframe: { host, owner, code }.
async function midStream(relay) {
  const { host, key, code } = await relay.aspHostReady(['--share', '--source', 'pattern', '--fps', '30', '--keyint-frames', '300', '--seconds', '60']);
  const owner = await relay.join({ owner_key: key }, { label: 'owner' });
  for (let i = 0; i < 60; i++) await owner.nextBinary(isVideo);
  return { host, owner, code };
}

test('a guest joining mid-stream gets a keyframe as its first video message within a few seconds, not at the next scheduled keyframe', () => withRelay(async (relay) => {
  const { code } = await midStream(relay);
  const guest = await relay.join({ code }, { label: 'guest' });
  const first = await guest.nextBinary(isVideo, 15000);
  const waited = first.t - guest.joined._t;
  assert.ok(first.hdr.flags & FLAG.keyframe, `first video message (seq ${first.hdr.seq}) has flags ${first.hdr.flags}, no keyframe bit`);
  assert.ok(waited < FAST_MS, `first video message came ${waited.toFixed(0)} ms after joined`);
  assert.equal(patternCheck(first.data), null, 'the keyframe arrived intact');
  // What follows the keyframe is contiguous: a decoder can play it.
  let seq = first.hdr.seq;
  for (let i = 0; i < 30; i++) {
    const b = await guest.nextBinary(isVideo);
    assert.equal(b.hdr.seq, (seq + 1) >>> 0, `video seq jumped from ${seq} to ${b.hdr.seq} right after join`);
    seq = b.hdr.seq;
  }
}));

test('asp-view joining mid-stream decodes from its first frame (first_keyframe=1) within seconds', () => withRelay(async (relay) => {
  const { code } = await midStream(relay);
  const view = relay.aspView(['--code', code, '--frames', '30', '--seconds', '8']);
  await view.expectExit(0, 30000);
  const m = await view.waitForLine(/^metrics: (.*)$/);
  const kv = parseKv(m[1]);
  assert.equal(kv.first_keyframe, 1, view.describe());
  assert.ok(kv.frames >= 30, view.describe());
  assert.equal(kv.errors, 0, view.describe());
}));

test('a viewer asking for a keyframe makes the relay ask the host for one', () => withRelay(async (relay) => {
  const { host, key } = await relay.aspHostReady(['--fps', '30', '--keyint-frames', '300', '--seconds', '60']);
  const owner = await relay.join({ owner_key: key }, { label: 'owner' });
  // Requests are rate-limited (--keyframe-gap, 1 s): let any request the
  // join itself caused age past that first.
  const joinedAt = Date.now();
  await owner.nextBinary((b) => isVideo(b) && b.wall >= joinedAt + 1500, 15000);
  owner.send({ type: 'keyframe' });
  await host.waitForLine(/^keyframe-request: viewer/);
}));

test('keyframe requests are rate-limited: within --keyframe-gap the host is asked only once', () => withRelay({ args: ['--keyframe-gap', '60000'] }, async (relay) => {
  const host = await relay.host();
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  for (let i = 0; i < 5; i++) owner.send({ type: 'keyframe' });
  await owner.echo(); // the relay has handled all five
  await host.echo(); // and the host has everything the relay sent before
  const asked = host.json.items.filter((m) => m.type === 'keyframe');
  assert.equal(asked.length, 1, `the host was asked ${asked.length} times: ${JSON.stringify(asked)}`);
}));
