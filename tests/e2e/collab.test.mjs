// Shared collaboration: the host shares a code, exactly one guest joins with
// it, sees the same bytes as the owner, and leaves, is dropped, discarded or
// ended (docs/protocol.md, "Host", "Viewer", "Collaboration codes").

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import {
  BUSY_MESSAGE, CODE_RE, GUEST_USER, KIND, MESSAGES, Relay, controlMsg, isNotify, media, patternCheck, sloppy, withRelay,
} from './lib.mjs';

// A raw host that has shared its desktop: { host, code }.
async function sharedHost(relay) {
  const host = await relay.host();
  const code = await Relay.share(host);
  return { host, code };
}

test('sharing gives a code of three groups of four symbols without look-alikes, stable while it stands', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  assert.match(code, CODE_RE);
  assert.equal(await Relay.share(host), code, 'a second share while the code stands gives the same code');
  const other = await relay.host({ label: 'other host' });
  assert.notEqual(await Relay.share(other), code, 'two desktops share two different codes');
}));

test('a guest joins with the code typed in lower case without dashes; the host is told "Joined Shared Collaboration" with the guest\'s name', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const guest = await relay.join({ code: sloppy(code) }, { name: 'Alice', label: 'guest' });
  assert.equal(guest.joined.role, 'guest', JSON.stringify(guest.joined));
  assert.equal(guest.joined.session, host.desktop, JSON.stringify(guest.joined));
  assert.equal(guest.joined.name, 'Dana\'s desktop', JSON.stringify(guest.joined));
  assert.equal(guest.joined.control, false, JSON.stringify(guest.joined));
  const n = await host.next('notify', 15000, isNotify('collab_joined'));
  assert.equal(n.message, MESSAGES.collab_joined);
  assert.equal(n.name, 'Alice');
}));

test('a guest who gives no name is shown to the host by their user id', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const c = await relay.connect('/view', 'asp.view.v1', { label: 'guest' });
  c.send({ type: 'hello', client: 'web', client_version: '1.0', token: relay.token({ user: GUEST_USER }) });
  await c.next('welcome');
  c.send({ type: 'join', code });
  await c.next('joined');
  const n = await host.next('notify', 15000, isNotify('collab_joined'));
  assert.equal(n.name, GUEST_USER, JSON.stringify(n));
}));

test('with the tools: asp-host shares, asp-view joins with the spoken code, asp-host prints the join notice', () => withRelay(async (relay) => {
  const { host, code } = await relay.aspHostReady(['--share', '--seconds', '60', '--fps', '15']);
  assert.match(code, CODE_RE, host.describe());
  const view = relay.aspView(['--code', code.replace(/-/g, ' ').toLowerCase(), '--name', 'Bob', '--frames', '10', '--seconds', '30']);
  await view.waitForLine(/^joined: guest/);
  await host.waitForLine(/^notify: collab_joined Joined Shared Collaboration \(Bob\)/);
  await view.expectExit(0, 40000);
  await host.waitForLine(/^notify: collab_stopped Stopped Shared Collaboration/);
}));

test('owner and guest receive byte-identical media from the real host', () => withRelay(async (relay) => {
  const { host, key, code } = await relay.aspHostReady(['--share', '--source', 'pattern', '--fps', '30', '--keyint-frames', '30', '--seconds', '60']);
  const owner = await relay.join({ owner_key: key }, { label: 'owner' });
  assert.equal(owner.joined.role, 'owner', JSON.stringify(owner.joined));
  const guest = await relay.join({ code }, { label: 'guest', name: 'Alice' });
  // 60 messages the guest got after joining, and the owner got as well.
  for (let i = 0; i < 60; i++) await guest.nextBinary();
  const tail = guest.bin.items.at(-1).hdr;
  await owner.nextBinary((b) => b.hdr.kind === tail.kind && b.hdr.stream === tail.stream && b.hdr.seq === tail.seq);
  const id = (b) => `${b.hdr.kind}/${b.hdr.stream}/${b.hdr.seq}`;
  const ownerSha = new Map(owner.bin.items.map((b) => [id(b), b.sha]));
  let common = 0;
  for (const b of guest.bin.items) {
    assert.equal(patternCheck(b.data), null, `guest's message ${id(b)} is not what asp-host sent`);
    if (!ownerSha.has(id(b))) continue;
    common++;
    assert.equal(b.sha, ownerSha.get(id(b)), `message ${id(b)} differs between owner and guest`);
  }
  assert.ok(common >= 50, `only ${common} messages were seen by both owner and guest`);
}));

test('owner and guest receive exactly the bytes the host sent', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  const guest = await relay.join({ code }, { label: 'guest' });
  const sent = [];
  for (let seq = 0; seq < 50; seq++) {
    const m = controlMsg(seq, 100 + seq * 37);
    sent.push(m);
    host.sendBinary(m);
  }
  for (const [who, c] of [['owner', owner], ['guest', guest]]) {
    for (let seq = 0; seq < 50; seq++) {
      const got = await c.nextBinary((b) => b.hdr.kind === KIND.control);
      assert.ok(got.data.equals(sent[seq]), `${who}: control message ${seq} differs (got seq ${got.hdr.seq}, ${got.size} bytes)`);
    }
  }
}));

// Sends one WebSocket message as several frames (continuations).
async function sendFragmented(client, buf, pieces) {
  const step = Math.ceil(buf.length / pieces);
  for (let off = 0; off < buf.length; off += step) {
    const fin = off + step >= buf.length;
    await new Promise((resolve) => client.ws.send(buf.subarray(off, off + step), { binary: true, fin }, resolve));
  }
}

test('1 MiB messages, sent in WebSocket fragments and written out in pieces, reach owner and guest byte for byte', () => withRelay(async (relay) => {
  const { host, owner, guest } = await relay.collab();
  const sent = [];
  for (let seq = 0; seq < 4; seq++) {
    const m = media({ kind: KIND.video, flags: seq === 0 ? 3 : 0, seq, payload: crypto.randomBytes(1024 * 1024 - 32 * seq) });
    sent.push(m);
    await sendFragmented(host, m, 1 + seq * 3);
  }
  for (const [who, c] of [['owner', owner], ['guest', guest]]) {
    for (let seq = 0; seq < sent.length; seq++) {
      const got = await c.nextBinary((b) => b.hdr.kind === KIND.video);
      assert.equal(got.hdr.seq, seq, `${who}: video ${seq} came as seq ${got.hdr.seq}`);
      assert.ok(got.data.equals(sent[seq]), `${who}: video ${seq} differs (${got.size} bytes, sent ${sent[seq].length}; ` +
        `first difference at byte ${firstDiff(got.data, sent[seq])})`);
    }
  }
}));

function firstDiff(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return Math.min(a.length, b.length);
}

test('a second joiner is refused: busy (4004) with the product\'s exact message; the first guest stays', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const first = await relay.join({ code }, { label: 'first guest' });
  const err = await relay.joinRefused({ code }, 'busy', 4004, 'second guest');
  assert.equal(err.message, BUSY_MESSAGE);
  await first.echo();
  host.sendBinary(controlMsg(1));
  await first.nextBinary((b) => b.hdr.kind === KIND.control);
}));

test('asp-view as a second joiner exits 3 and prints the busy message verbatim', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay);
  await relay.join({ code }, { label: 'first guest' });
  const v = relay.aspView(['--code', code, '--seconds', '10']);
  await v.expectExit(3);
  assert.ok(v.stderr.includes(BUSY_MESSAGE), v.describe());
}));

// Both joins are on the wire before either is answered.
async function raceOnce(relay, host, code, round) {
  const a = await relay.viewer({ label: `round ${round} A`, name: 'A' });
  const b = await relay.viewer({ label: `round ${round} B`, name: 'B' });
  a.send({ type: 'join', code });
  b.send({ type: 'join', code });
  const answer = (c) => c.json.take((m) => m.type === 'joined' || m.type === 'error', 15000,
    () => `${c.label}: no answer to join\n${c.describe()}`);
  const [ra, rb] = await Promise.all([answer(a), answer(b)]);
  const winners = [ra, rb].filter((m) => m.type === 'joined').length;
  assert.equal(winners, 1, `round ${round}: ${winners} joiners won\nA: ${JSON.stringify(ra)}\nB: ${JSON.stringify(rb)}`);
  const [winner, loser, lost] = ra.type === 'joined' ? [a, b, rb] : [b, a, ra];
  assert.equal(lost.code, 'busy', JSON.stringify(lost));
  assert.equal((await loser.waitClose()).code, 4004, loser.describe());
  await host.next('notify', 15000, isNotify('collab_joined'));
  winner.send({ type: 'leave' });
  assert.equal((await winner.waitClose()).code, 1000, winner.describe());
  await host.next('notify', 15000, isNotify('collab_stopped'));
}

test('racing joins: of two guests joining at the same moment exactly one wins, 20 times over', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  for (let round = 1; round <= 20; round++) await raceOnce(relay, host, code, round);
}));

test('a guest who leaves is closed with 1000, the host is told "Stopped Shared Collaboration", and the same code works again', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const guest = await relay.join({ code }, { label: 'guest', name: 'Alice' });
  await host.next('notify', 15000, isNotify('collab_joined'));
  guest.send({ type: 'leave' });
  assert.equal((await guest.waitClose()).code, 1000, guest.describe());
  const n = await host.next('notify', 15000, isNotify('collab_stopped'));
  assert.equal(n.message, MESSAGES.collab_stopped);
  const again = await relay.join({ code }, { label: 'guest again', name: 'Alice' });
  assert.equal(again.joined.role, 'guest');
  await host.next('notify', 15000, isNotify('collab_joined'));
}));

test('a guest whose connection drops without a close frees the slot and the host is told "Stopped Shared Collaboration"', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const guest = await relay.join({ code }, { label: 'guest', name: 'Alice' });
  await host.next('notify', 15000, isNotify('collab_joined'));
  guest.terminate(); // TCP close, no WebSocket close frame
  const n = await host.next('notify', 20000, isNotify('collab_stopped'));
  assert.equal(n.message, MESSAGES.collab_stopped);
  await relay.join({ code }, { label: 'next guest' });
}));

test('discarding the code closes the guest with discarded (4006); the code is then refused with bad_code (4005)', () => withRelay(async (relay) => {
  const { host, code, owner, guest } = await relay.collab();
  host.send({ type: 'discard' });
  await guest.expectRefusal('discarded', 4006);
  await host.next('notify', 15000, isNotify('collab_stopped'));
  await relay.joinRefused({ code }, 'bad_code', 4005, 'late guest');
  host.sendBinary(controlMsg(7));
  await owner.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === 7);
}));

test('ending the collaboration closes the guest with ended (4007); the owner keeps receiving; the code is gone', () => withRelay(async (relay) => {
  const { host, code, owner, guest } = await relay.collab();
  host.send({ type: 'end' });
  await guest.expectRefusal('ended', 4007);
  await host.next('notify', 15000, isNotify('collab_stopped'));
  for (let seq = 0; seq < 10; seq++) host.sendBinary(controlMsg(seq));
  for (let seq = 0; seq < 10; seq++) {
    const b = await owner.nextBinary((m) => m.hdr.kind === KIND.control);
    assert.equal(b.hdr.seq, seq, owner.describe());
  }
  await relay.joinRefused({ code }, 'bad_code', 4005, 'late guest');
}));

test('ending with asp-host\'s "end" command closes asp-view with exit 3 and the ended message', () => withRelay(async (relay) => {
  const { host, code } = await relay.aspHostReady(['--share', '--seconds', '60', '--fps', '10']);
  const view = relay.aspView(['--code', code, '--seconds', '30']);
  await view.waitForLine(/^joined: guest/);
  host.send('end');
  await view.expectExit(3);
  assert.ok(view.stderr.includes('The host ended the collaboration.'), view.describe());
}));

for (const bad of ['2345-6789-ABCD', 'not a code', '']) {
  test(`joining with the wrong code "${bad}" is refused with bad_code (4005)`, () => withRelay(async (relay) => {
    await sharedHost(relay);
    await relay.joinRefused({ code: bad }, 'bad_code', 4005);
  }));
}

test('asp-view with a wrong code exits 3 with the bad_code message', () => withRelay(async (relay) => {
  await sharedHost(relay);
  const v = relay.aspView(['--code', '2345-6789-ABCD', '--seconds', '10']);
  await v.expectExit(3);
  assert.ok(v.stderr.includes('The collaboration code is not valid. Check it and try again.'), v.describe());
}));
