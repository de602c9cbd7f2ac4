// Durable state (issue 5): the relay is killed with SIGKILL mid-session and
// started again on the same data directory.  Collaboration codes, pending
// assistance requests (with their original expiry), permissions and the
// audit log must all come back.

import test from 'node:test';
import assert from 'node:assert/strict';
import { Relay, Proc, bin, isNotify, HOST_USER } from './lib.mjs';

// A relay that can be SIGKILLed and started again on its data directory
// (and, with samePort, on its port, so a tool's reconnect finds it).
class RestartableRelay extends Relay {
  constructor(args = []) {
    super(args);
    this.args = args;
  }

  async killAndRestart({ samePort = false } = {}) {
    this.proc.child.kill('SIGKILL');
    await this.proc.exited;
    const listen = samePort ? `127.0.0.1:${this.port}` : '127.0.0.1:0';
    this.proc = new Proc('asp-relay', bin('asp-relay'), ['--listen', listen, '--data', this.data, ...this.args]);
    this.clients = [];
    await this.ready();
  }
}

async function withRestartable(body) {
  const relay = new RestartableRelay();
  try {
    await relay.ready();
    await body(relay);
  } finally {
    await relay.closeAll().catch(() => {});
    await relay.stop();
  }
}

test('after SIGKILL and a restart: the code still works when the host reconnects, requests keep their expiry, permissions and the audit log are intact', () => withRestartable(async (relay) => {
  await relay.policy(HOST_USER, { help: true });
  await relay.policy('lee', { help: true, collab: false });
  const host = await relay.host({ desktop: 'desk-durable' });
  host.send({ type: 'share' });
  const { code } = await host.next('code');
  host.send({ type: 'assist_request' });
  const req = await host.next('notify', 15000, isNotify('assist_requested'));
  const before = await relay.api('GET', '/assist');
  const asked = before.body.requests.find((r) => r.id === req.id);
  const auditBefore = (await relay.api('GET', '/audit?limit=1000')).body.events;
  assert.ok(auditBefore.some((e) => e.event === 'collab-start' && e.desktop === 'desk-durable'));

  await relay.killAndRestart();

  // The host comes back with the same identity: same code, same owner key.
  const again = await relay.host({ desktop: 'desk-durable' });
  assert.equal(again.welcome.owner_key, host.welcome.owner_key);
  assert.equal((await again.next('code')).code, code);
  const guest = await relay.join({ code }, { name: 'Alice' });
  assert.equal(guest.joined.role, 'guest');
  await again.next('notify', 15000, isNotify('collab_joined'));

  // The same request, expiry included; expires_in is counted from now, so
  // it is left out of the comparison.
  const after = await relay.api('GET', '/assist');
  const { expires_in: leftBefore, ...askedFixed } = asked;
  const { expires_in: leftAfter, ...afterFixed } = after.body.requests.find((r) => r.id === req.id);
  assert.deepEqual(afterFixed, askedFixed);
  assert.ok(leftAfter <= leftBefore, `expires_in went from ${leftBefore} to ${leftAfter}`);
  assert.deepEqual((await relay.api('GET', '/policy/lee')).body, { user: 'lee', help: true, collab: false });
  const auditAfter = (await relay.api('GET', '/audit?limit=1000')).body.events;
  assert.deepEqual(auditAfter.slice(0, auditBefore.length), auditBefore);
}));

test('a discarded code stays discarded after a restart', () => withRestartable(async (relay) => {
  const host = await relay.host({ desktop: 'desk-gone' });
  host.send({ type: 'share' });
  const { code } = await host.next('code');
  host.send({ type: 'discard' });
  await host.echo(); // on the same connection: the discard was handled
  await relay.killAndRestart();
  await relay.joinRefused({ code }, 'bad_code', 4005);
}));

test('regression: a code revoked with "User Stream Collaboration" stays revoked after a restart, even when the permission comes back', () => withRestartable(async (relay) => {
  await relay.policy(HOST_USER, { help: true, collab: true });
  const host = await relay.host({ desktop: 'desk-revoked' });
  const code = await Relay.share(host);
  await relay.policy(HOST_USER, { help: true, collab: false });
  await host.next('notify', 15000, isNotify('collab_revoked'));
  await relay.killAndRestart();
  // The guest holds the permission; the code is gone from the store, so
  // nothing brings it back.
  await relay.joinRefused({ code }, 'bad_code', 4005);
  await relay.policy(HOST_USER, { help: true, collab: true });
  await relay.joinRefused({ code }, 'bad_code', 4005);
}));
