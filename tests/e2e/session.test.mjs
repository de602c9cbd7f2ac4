// A desktop's session outlives its host connection: a host that reconnects
// gets the same owner key and code back and replaces its older connection,
// and viewers are told when the desktop goes away and comes back
// (docs/protocol.md, "Host" step 2, "Notifications").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KIND, Relay, controlMsg, isNotify, withRelay } from './lib.mjs';

test('a host that connects again for the same desktop gets the same owner key and code; the older connection is closed with replaced (4016)', () => withRelay(async (relay) => {
  const first = await relay.host({ desktop: 'desk-again', label: 'first host' });
  const code = await Relay.share(first);
  const second = await relay.host({ desktop: 'desk-again', label: 'second host' });
  await first.expectRefusal('replaced', 4016);
  assert.equal(second.welcome.owner_key, first.welcome.owner_key, 'owner key');
  assert.equal(await Relay.share(second), code, 'collaboration code');
  const guest = await relay.join({ code }, { label: 'guest' });
  second.sendBinary(controlMsg(1));
  await guest.nextBinary((b) => b.hdr.kind === KIND.control);
}));

test('a second owner viewer replaces the first, which is closed with replaced (4016)', () => withRelay(async (relay) => {
  const host = await relay.host();
  const first = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'first owner' });
  const second = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'second owner' });
  await first.expectRefusal('replaced', 4016);
  host.sendBinary(controlMsg(3));
  await second.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === 3);
}));

test('joining with a standing code while the desktop is disconnected is refused with offline (4015)', () => withRelay(async (relay) => {
  const host = await relay.host({ desktop: 'desk-away' });
  const code = await Relay.share(host);
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  host.terminate();
  await owner.next('notify', 20000, isNotify('host_offline'));
  const err = await relay.joinRefused({ code }, 'offline', 4015, 'guest');
  assert.equal(err.message, 'The desktop is not connected.');
}));

test('viewers are told when the desktop disconnects and when it is back, and keep watching', () => withRelay(async (relay) => {
  const host = await relay.host({ desktop: 'desk-flaky' });
  const code = await Relay.share(host);
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  const guest = await relay.join({ code }, { label: 'guest' });
  host.terminate();
  for (const v of [owner, guest]) {
    const n = await v.next('notify', 20000, isNotify('host_offline'));
    assert.equal(n.message, 'The desktop disconnected; waiting for it to come back.');
  }
  const back = await relay.host({ desktop: 'desk-flaky', label: 'host again' });
  for (const v of [owner, guest]) {
    const n = await v.next('notify', 20000, isNotify('host_online'));
    assert.equal(n.message, 'The desktop is back.');
  }
  back.sendBinary(controlMsg(42));
  for (const v of [owner, guest]) await v.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === 42);
}));
