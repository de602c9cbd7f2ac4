// Sign-in and permissions through the real tools and the owner key.  Token
// refusals and the permission rules on the wire are in identity.test.mjs;
// this file covers what a person does with asp-admin, asp-host and asp-view,
// and who may watch a desktop as its owner.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOST_USER, Proc, Relay, bin, withRelay } from './lib.mjs';

test('an owner key that is not the desktop\'s is refused', () => withRelay(async (relay) => {
  await relay.host();
  const v = await relay.viewer({ label: 'owner' });
  v.send({ type: 'join', owner_key: '0'.repeat(32) });
  const err = await v.next('error');
  assert.equal(err.code, 'unauthorized', JSON.stringify(err));
  assert.equal((await v.waitClose()).code, 4013, v.describe());
}));

test('the owner needs no permission to watch their own desktop', () => withRelay(async (relay) => {
  const host = await relay.host({ user: 'mallory', desktop: 'desk-mallory' });
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { user: 'mallory', label: 'owner' });
  assert.equal(owner.joined.role, 'owner');
}));

// asp-admin against this relay, signing its own admin token from the data dir.
function aspAdmin(relay, args) {
  const p = new Proc('asp-admin', bin('asp-admin'),
    ['--relay', relay.httpUrl, '--data', relay.data, ...(relay.tls ? ['--insecure'] : []), ...args]);
  relay.tools.push(p);
  return p;
}

test('asp-admin turns collaboration on for a user, and its tokens sign a host and a guest in', () => withRelay(async (relay) => {
  const policy = aspAdmin(relay, ['policy', 'set', 'carol', 'collab=on']);
  await policy.expectExit(0);
  assert.ok(policy.lines.some((l) => /^carol help=(on|off) collab=on$/.test(l)), policy.describe());
  const mint = async (args) => {
    const p = aspAdmin(relay, ['token', ...args]);
    await p.expectExit(0);
    return p.lines.at(-1);
  };
  const hostToken = await mint(['--user', 'carol', '--role', 'user', '--desktop', 'desk-carol']);
  const guestToken = await mint(['--user', 'carol', '--role', 'user']);
  const host = await relay.host({ desktop: 'desk-carol', token: hostToken });
  const code = await Relay.share(host);
  const guest = await relay.join({ code }, { token: guestToken, label: 'carol' });
  assert.equal(guest.joined.role, 'guest');
}));

test('asp-admin policy set collab=off stops the next share', () => withRelay(async (relay) => {
  await aspAdmin(relay, ['policy', 'set', HOST_USER, 'collab=off']).expectExit(0);
  const host = await relay.host();
  host.send({ type: 'share' });
  assert.equal((await host.next('error')).code, 'no_permission');
}));

test('asp-host and asp-view with a bad token exit 3 with the relay\'s message', () => withRelay(async (relay) => {
  const h = relay.aspHost(['--token', 'bogus', '--seconds', '5']);
  await h.expectExit(3);
  assert.match(h.stderr, /Sign-in failed/, h.describe());
  const v = relay.aspView(['--token', 'bogus', '--code', '2345-6789-ABCD', '--seconds', '5']);
  await v.expectExit(3);
  assert.match(v.stderr, /Sign-in failed/, v.describe());
}));
