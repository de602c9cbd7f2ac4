// Bad input from the network: oversized messages close the connection with
// too_large; a single malformed message is answered with malformed and
// dropped while the connection and everything else keep working
// (docs/protocol.md, "Endpoints", "Control messages", "Errors").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KIND, Relay, controlMsg, media, withRelay } from './lib.mjs';

const MAX = 65536;

// Host and owner, raw; the owner has joined.
async function pair(relay, label = 'host') {
  const host = await relay.host({ label });
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: `${label}'s owner` });
  return { host, owner };
}

async function expectMalformed(c, field) {
  const err = await c.next('error');
  assert.equal(err.code, 'malformed', JSON.stringify(err));
  if (field) assert.ok(err.message.includes(field), `message should name "${field}": ${err.message}`);
  await c.echo();
  assert.equal(c.close, null, c.describe());
  return err;
}

test('the relay tells hosts its --max-message in welcome', () => withRelay({ args: ['--max-message', String(MAX)] }, async (relay) => {
  const host = await relay.host();
  assert.equal(host.welcome.max_message, MAX, JSON.stringify(host.welcome));
}));

test('a media message of exactly --max-message bytes is forwarded whole', () => withRelay({ args: ['--max-message', String(MAX)] }, async (relay) => {
  const { host, owner } = await pair(relay);
  const m = controlMsg(1, MAX - 32);
  host.sendBinary(m);
  const got = await owner.nextBinary((b) => b.hdr.kind === KIND.control);
  assert.ok(got.data.equals(m), `owner got ${got.size} bytes, want ${m.length} identical`);
}));

test('a host sending --max-message + 1 bytes gets too_large (4010) and is closed; other sessions are unaffected', () => withRelay({ args: ['--max-message', String(MAX)] }, async (relay) => {
  const other = await pair(relay, 'other host');
  const { host } = await pair(relay, 'big host');
  host.sendBinary(controlMsg(1, MAX - 32 + 1));
  await host.expectRefusal('too_large', 4010);
  other.host.sendBinary(controlMsg(2));
  await other.owner.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === 2);
  await other.host.echo();
  const fresh = await pair(relay, 'new host');
  fresh.host.sendBinary(controlMsg(3));
  await fresh.owner.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === 3);
}));

test('a control message over 65,536 bytes gets too_large (4010)', () => withRelay(async (relay) => {
  const host = await relay.host();
  host.send({ type: 'echo', t: 1, pad: 'x'.repeat(70000) });
  await host.expectRefusal('too_large', 4010);
}));

const badMedia = {
  'a bad magic byte': () => controlMsg(9).fill(0x5a, 0, 1),
  'a length field not matching its size': () => media({ kind: KIND.control, seq: 9, payload: Buffer.alloc(100), length: 99 }),
  'fewer bytes than the header': () => Buffer.from([0xa5, 1, 5, 0, 0, 0, 0, 0]),
  'an unknown kind': () => media({ kind: 9, seq: 9, payload: Buffer.alloc(8) }),
  'audio carrying H.264': () => media({ kind: KIND.audio, codec: 1, seq: 9, payload: Buffer.alloc(8) }),
  'a cursor payload that is not 12 bytes': () => media({ kind: KIND.cursor, seq: 9, payload: Buffer.alloc(11) }),
  'unknown flag bits': () => media({ kind: KIND.control, flags: 0x80, seq: 9, payload: Buffer.alloc(8) }),
  'a nonzero reserved byte': () => { const m = controlMsg(9); m[5] = 1; return m; },
  'an unknown header version': () => media({ kind: KIND.control, version: 2, seq: 9, payload: Buffer.alloc(8) }),
};

for (const [what, make] of Object.entries(badMedia)) {
  test(`a media message with ${what} is answered with malformed and not forwarded; the host stays connected`, () => withRelay(async (relay) => {
    const { host, owner } = await pair(relay);
    host.sendBinary(make());
    await expectMalformed(host);
    host.sendBinary(controlMsg(10));
    const next = await owner.nextBinary();
    assert.equal(next.hdr.seq, 10, `owner's first message should be the good one: ${owner.describe()}`);
  }));
}

test('input that is not 16 bytes gets malformed and the viewer stays connected', () => withRelay(async (relay) => {
  const { owner } = await pair(relay);
  owner.sendBinary(media({ kind: KIND.input, seq: 1, payload: Buffer.alloc(15) }));
  await expectMalformed(owner);
}));

test('text that is not JSON gets malformed and the connection stays', () => withRelay(async (relay) => {
  const { host, owner } = await pair(relay);
  host.send('{"type": "echo", ');
  await expectMalformed(host);
  owner.send('[1, 2, 3]');
  await expectMalformed(owner);
}));

test('a message missing a required field gets malformed naming the field, and the connection stays', () => withRelay(async (relay) => {
  const { host, owner } = await pair(relay);
  host.send({ type: 'control' });
  await expectMalformed(host, 'guest');
  host.send({ type: 'control', guest: 'yes' });
  await expectMalformed(host, 'guest');
  host.send({ noType: true });
  await expectMalformed(host, 'type');
  owner.send({ type: 'metrics', interval_ms: 'often' });
  await expectMalformed(owner, 'interval_ms');
  owner.send({ type: 'echo' });
  await expectMalformed(owner, '"t"');
}));

// Whether a malformed hello closes the connection is not pinned by the doc
// ("an error and closes" vs "malformed ... does not close"): only the answer is.
test('a host hello missing asp_version is refused as malformed naming the field, without a welcome', () => withRelay(async (relay) => {
  const c = await relay.connect('/host', 'asp.host.v1');
  c.send({ type: 'hello', os: 'windows', image: 'system', desktop: 'desk-1' });
  const err = await c.next('error');
  assert.equal(err.code, 'malformed', JSON.stringify(err));
  assert.ok(err.message.includes('asp_version'), err.message);
  assert.equal(c.json.items.filter((m) => m.type === 'welcome').length, 0, c.describe());
}));

test('a join with neither code nor owner key is refused as malformed', () => withRelay(async (relay) => {
  const v = await relay.viewer();
  v.send({ type: 'join' });
  const err = await v.next('error');
  assert.equal(err.code, 'malformed', JSON.stringify(err));
}));

test('an unknown message type gets malformed and the connection stays', () => withRelay(async (relay) => {
  const { host, owner } = await pair(relay);
  host.send({ type: 'teleport' });
  await expectMalformed(host);
  owner.send({ type: 'code', code: 'x' }); // the relay's message, not valid from a viewer
  await expectMalformed(owner);
  await Relay.share(host);
}));

test('a WebSocket upgrade with the wrong subprotocol is refused in the handshake', () => withRelay(async (relay) => {
  await assert.rejects(relay.connect('/host', 'asp.view.v1'), 'host path with the viewer subprotocol');
  await assert.rejects(relay.connect('/view', 'asp.host.v1'), 'view path with the host subprotocol');
  await relay.host(); // and the relay still serves
}));
