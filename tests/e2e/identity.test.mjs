// Identity and permissions (issue 5): every connection signs in with a
// token, the admin API wants an administrator's token, and the two
// permissions gate collaboration and help.

import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { withRelay, mintToken, httpRequest, HOST_USER, GUEST_USER, isNotify } from './lib.mjs';

// The admin API with a body sent as is (not JSON-encoded): { status, body }.
async function rawApi(relay, method, p, body, token) {
  const r = await httpRequest(`${relay.httpUrl}/api${p}`, {
    method, body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
  return { ...r, body: JSON.parse(r.body) };
}

const COLLAB_MSG = 'You need the permission "User Stream Collaboration".';
const past = () => Math.floor(Date.now() / 1000) - 10;

for (const [what, tokenOf, code, close] of [
  ['no token', () => null, 'unauthorized', 4013],
  ['an expired token', (r, d) => r.token({ user: HOST_USER, desktop: d, exp: past() }), 'token_expired', 4014],
  ['a token signed with another secret', (r, d) => mintToken(crypto.randomBytes(32), { user: HOST_USER, desktop: d }), 'unauthorized', 4013],
  ['a token for another desktop', (r) => r.token({ user: HOST_USER, desktop: 'someone-else' }), 'unauthorized', 4013],
  ['a token with a flipped signature byte', (r, d) => r.token({ user: HOST_USER, desktop: d }).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), 'unauthorized', 4013],
]) {
  test(`a host with ${what} is refused with ${code} (${close})`, () => withRelay(async (relay) => {
    const c = await relay.connect('/host', 'asp.host.v1');
    const desktop = 'desk-auth';
    const token = tokenOf(relay, desktop);
    c.send({ type: 'hello', os: 'windows', image: 'system', asp_version: '1.1.0', desktop, ...(token ? { token } : {}) });
    await c.expectRefusal(code, close);
  }));
}

test('a viewer without a token, or with an expired one, is refused', () => withRelay(async (relay) => {
  const a = await relay.connect('/view', 'asp.view.v1');
  a.send({ type: 'hello', client: 'web', client_version: '1' });
  await a.expectRefusal('unauthorized', 4013);
  const b = await relay.connect('/view', 'asp.view.v1');
  b.send({ type: 'hello', client: 'web', client_version: '1', token: relay.token({ user: GUEST_USER, exp: past() }) });
  await b.expectRefusal('token_expired', 4014);
}));

test('sharing needs "User Stream Collaboration" for the desktop\'s user, and the refusal names it', () => withRelay(async (relay) => {
  const host = await relay.host({ user: 'lee' });
  host.send({ type: 'share' });
  const e = await host.next('error');
  assert.equal(e.code, 'no_permission');
  assert.equal(e.message, COLLAB_MSG);
  await relay.policy('lee', { collab: true });
  host.send({ type: 'share' });
  assert.ok((await host.next('code')).code);
}));

test('every collaborator needs "User Stream Collaboration" too; granted, the same person joins', () => withRelay(async (relay) => {
  const host = await relay.host();
  host.send({ type: 'share' });
  const { code } = await host.next('code');
  const v = await relay.viewer({ user: 'mallory' });
  v.send({ type: 'join', code });
  const e = await v.expectRefusal('no_permission', 4009);
  assert.equal(e.message, COLLAB_MSG);
  await relay.policy('mallory', { collab: true });
  const ok = await relay.join({ code }, { user: 'mallory', name: 'Mallory' });
  assert.equal(ok.joined.role, 'guest');
  const n = await host.next('notify', 15000, isNotify('collab_joined'));
  assert.equal(n.name, 'Mallory');
}));

test('permissions are off until set, and read back as set', () => withRelay(async (relay) => {
  let r = await relay.api('GET', '/policy/newbie');
  assert.deepEqual(r.body, { user: 'newbie', help: false, collab: false });
  r = await relay.api('PUT', '/policy/newbie', { help: true });
  assert.deepEqual(r.body, { user: 'newbie', help: true, collab: false });
  r = await relay.api('PUT', '/policy/newbie', { collab: true });
  assert.deepEqual(r.body, { user: 'newbie', help: true, collab: true });
  r = await relay.api('GET', '/audit?limit=5');
  assert.ok(r.body.events.some((e) => e.event === 'policy-set' && e.detail === 'user=newbie help=on collab=on'),
    JSON.stringify(r.body.events));
}));

test('the admin API refuses what it should with 4xx JSON errors, never a 500', () => withRelay(async (relay) => {
  const cases = [
    ['a malformed token', 'GET', '/desktops', undefined, 'x.y', 401, 'unauthorized'],
    ['a user token', 'GET', '/desktops', undefined, relay.token({ user: GUEST_USER }), 403, 'no_permission'],
    ['an expired admin token', 'GET', '/desktops', undefined, relay.token({ user: 'root', role: 'admin', exp: past() }), 401, 'token_expired'],
    ['a forged admin token', 'GET', '/desktops', undefined, mintToken(crypto.randomBytes(32), { user: 'root', role: 'admin' }), 401, 'unauthorized'],
    ['bad JSON', 'PUT', '/policy/dana', 'not json', null, 400, 'malformed'],
    ['a mistyped field', 'PUT', '/policy/dana', { help: 'yes' }, null, 400, 'malformed'],
    ['an invalid user id', 'GET', '/policy/no%20such', undefined, null, 400, 'malformed'],
    ['an unknown request id', 'POST', '/assist/0123456789abcdef/accept', undefined, null, 404, 'not_found'],
    ['an unknown desktop', 'POST', '/assist', { desktop: 'nowhere' }, null, 404, 'offline'],
    ['a body without desktop', 'POST', '/assist', {}, null, 400, 'malformed'],
    ['an unknown endpoint', 'GET', '/nothing', undefined, null, 404, 'not_found'],
    ['a wrong method', 'DELETE', '/desktops', undefined, null, 404, 'not_found'],
    ['a bad limit', 'GET', '/audit?limit=0', undefined, null, 400, 'malformed'],
    ['the test clock without --test-clock', 'PUT', '/clock', { advance_s: 1 }, null, 404, 'not_found'],
  ];
  for (const [what, method, p, body, token, status, code] of cases) {
    const admin = relay.token({ user: 'root', role: 'admin' });
    const r = typeof body === 'string'
      ? await rawApi(relay, method, p, body, token ?? admin)
      : await relay.api(method, p, body, token ?? admin);
    assert.equal(r.status, status, `${what}: ${method} ${p} -> ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body?.error?.code, code, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(typeof r.body.error.message, 'string');
  }
  const big = await rawApi(relay, 'PUT', '/policy/dana', JSON.stringify({ help: true, pad: 'x'.repeat(70000) }), relay.token({ user: 'root', role: 'admin' }));
  assert.equal(big.status, 413, JSON.stringify(big.body));
  assert.equal(big.body.error.code, 'too_large');
}));
