// Remote control: only a viewer that holds control may send input; the host
// grants and revokes it for the guest, the owner always has it, and input
// reaches the host byte for byte and in order (docs/protocol.md, "Viewer").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INPUT, KIND, MESSAGES, controlMsg, inputMsg, isNotify, withRelay } from './lib.mjs';

async function grant(host, guest, on) {
  const event = on ? 'control_granted' : 'control_revoked';
  host.send({ type: 'control', guest: on });
  const g = await guest.next('notify', 15000, isNotify(event));
  assert.equal(g.message, MESSAGES[event]);
  const h = await host.next('notify', 15000, isNotify(event));
  assert.equal(h.message, MESSAGES[event]);
}

// Sends input the relay must refuse with no_control, and checks the guest
// is still connected and still receives media.
async function expectNoControl(host, guest, seq) {
  guest.sendBinary(inputMsg(seq, { type: INPUT.pointerMove, x: 10, y: 20 }));
  const err = await guest.next('error');
  assert.equal(err.code, 'no_control', JSON.stringify(err));
  host.sendBinary(controlMsg(1000 + seq));
  await guest.nextBinary((b) => b.hdr.kind === KIND.control && b.hdr.seq === 1000 + seq);
  assert.equal(guest.close, null, guest.describe());
}

// Every input message the host received, in order.
const hostInputs = (host) => host.bin.items.filter((b) => b.hdr && b.hdr.kind === KIND.input);

test('a guest without control who sends input gets no_control, stays connected and keeps receiving media; the host gets nothing', () => withRelay(async (relay) => {
  const { host, guest } = await relay.collab();
  await expectNoControl(host, guest, 1);
  await host.echo(); // the input, had it been forwarded, would be here by now
  assert.equal(hostInputs(host).length, 0, host.describe());
}));

test('granting control notifies guest and host; the guest\'s 200 input events reach the host in order, byte for byte', () => withRelay(async (relay) => {
  const { host, guest } = await relay.collab();
  await grant(host, guest, true);
  const sent = [];
  for (let i = 0; i < 200; i++) {
    const m = inputMsg(i, { type: 1 + (i % 6), mods: i % 16, x: i * 7 - 300, y: -i, code: 65 + (i % 26) });
    sent.push(m);
    guest.sendBinary(m);
  }
  for (let i = 0; i < 200; i++) {
    const got = await host.nextBinary((b) => b.hdr.kind === KIND.input);
    assert.ok(got.data.equals(sent[i]), `input ${i}: host got seq ${got.hdr.seq}, ${got.data.toString('hex')}; sent ${sent[i].toString('hex')}`);
  }
}));

test('after the host revokes control the guest gets no_control again', () => withRelay(async (relay) => {
  const { host, guest } = await relay.collab();
  await grant(host, guest, true);
  guest.sendBinary(inputMsg(1, { type: INPUT.keyDown, code: 13 }));
  await host.nextBinary((b) => b.hdr.kind === KIND.input);
  await grant(host, guest, false);
  await expectNoControl(host, guest, 2);
  await host.echo();
  assert.equal(hostInputs(host).length, 1, host.describe());
}));

test('the owner may always send input, with or without a guest holding control', () => withRelay(async (relay) => {
  const { host, owner, guest } = await relay.collab();
  assert.equal(owner.joined.control, true, `the owner's joined should say control: ${JSON.stringify(owner.joined)}`);
  assert.equal(guest.joined.control, false, `a new guest's joined should say no control: ${JSON.stringify(guest.joined)}`);
  owner.sendBinary(inputMsg(1, { type: INPUT.pointerDown, x: 5, y: 6, code: 0 }));
  assert.equal((await host.nextBinary((b) => b.hdr.kind === KIND.input)).hdr.seq, 1);
  await grant(host, guest, true);
  owner.sendBinary(inputMsg(2, { type: INPUT.pointerUp, x: 5, y: 6, code: 0 }));
  assert.equal((await host.nextBinary((b) => b.hdr.kind === KIND.input)).hdr.seq, 2);
  await owner.echo();
  assert.equal(owner.json.items.filter((m) => m.type === 'error').length, 0, owner.describe());
}));

test('with the tools: asp-host grants control and prints the input asp-view sends', () => withRelay(async (relay) => {
  const { host, code } = await relay.aspHostReady(['--share', '--seconds', '60', '--fps', '10']);
  const view = relay.aspView(['--code', code, '--send-input', '--seconds', '40']);
  await view.waitForLine(/^joined: guest/);
  await host.waitForLine(/^notify: collab_joined/);
  host.send('grant');
  await host.waitForLine(/^notify: control_granted/);
  await view.waitForLine(/control_granted/);
  await host.waitForLine(/^input: \S+ x=-?\d+ y=-?\d+ code=\d+ mods=\d+/);
  host.send('revoke');
  await host.waitForLine(/^notify: control_revoked/);
  await view.waitForLine(/control_revoked/);
}));
