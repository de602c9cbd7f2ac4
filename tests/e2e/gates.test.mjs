// Version and platform gates (docs/protocol.md, "Version rules"): which
// hosts may share their desktop and which clients may view it.  Each case
// is checked on the wire with a raw client, and the refusals also through
// the real tools, whose exit codes a user's scripts depend on.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GUEST_USER, HOST_USER, withRelay } from './lib.mjs';

// A raw host hello that must be refused with code/closeCode.
async function hostRefused(relay, hello, code, closeCode) {
  const c = await relay.connect('/host', 'asp.host.v1', { label: 'host' });
  c.send({ type: 'hello', os: 'windows', image: 'system', asp_version: '1.1.0', desktop: 'desk-gate',
    token: relay.token({ user: HOST_USER, desktop: 'desk-gate' }), ...hello });
  return c.expectRefusal(code, closeCode);
}

async function hostAccepted(relay, asp_version) {
  const h = await relay.host({ asp_version });
  assert.match(h.welcome.owner_key, /^[0-9a-f]{32}$/, `owner_key in ${JSON.stringify(h.welcome)}`);
  assert.equal(typeof h.welcome.max_message, 'number', `max_message in ${JSON.stringify(h.welcome)}`);
  assert.equal(h.welcome.session, h.desktop);
}

async function clientRefused(relay, client, client_version, code, closeCode) {
  const c = await relay.connect('/view', 'asp.view.v1', { label: `${client} ${client_version}` });
  c.send({ type: 'hello', client, client_version, name: 'Alice', token: relay.token({ user: GUEST_USER }) });
  return c.expectRefusal(code, closeCode);
}

const clientAccepted = (relay, client, client_version) =>
  relay.viewer({ client, client_version, label: `${client} "${client_version}"` });

test('a host with ASP 1.0.9 is refused with bad_version (4001), quoting both versions', () => withRelay(async (relay) => {
  const err = await hostRefused(relay, { asp_version: '1.0.9' }, 'bad_version', 4001);
  assert.match(err.message, /1\.0\.9/, `message should quote what was sent: ${err.message}`);
  assert.match(err.message, /1\.1(\.0)?/, `message should quote what is required: ${err.message}`);
}));

for (const v of ['1.1.0', '1.1', 'V1.1.0', '1.10.0']) {
  test(`a host with ASP ${v} is accepted`, () => withRelay((relay) => hostAccepted(relay, v)));
}

test('a Linux host is refused with unsupported_os (4002)', () => withRelay(async (relay) => {
  await hostRefused(relay, { os: 'linux' }, 'unsupported_os', 4002);
}));

test('a host on a "vm" image is refused with unsupported_os (4002)', () => withRelay(async (relay) => {
  await hostRefused(relay, { image: 'vm' }, 'unsupported_os', 4002);
}));

test('a host on a custom Windows image is accepted', () => withRelay(async (relay) => {
  const h = await relay.host({ image: 'custom' });
  assert.match(h.welcome.owner_key, /^[0-9a-f]{32}$/);
}));

test('os and image are matched in any case ("Windows", "SYSTEM", "Custom")', () => withRelay(async (relay) => {
  await relay.host({ os: 'Windows', image: 'SYSTEM', label: 'Windows/SYSTEM' });
  await relay.host({ os: 'WINDOWS', image: 'Custom', label: 'WINDOWS/Custom' });
}));

for (const v of ['1..2', 'abc', '', '1.2.3.4.5', '1.x']) {
  test(`a host with garbage ASP version "${v}" is refused as malformed (4000), quoting it`, () => withRelay(async (relay) => {
    const err = await hostRefused(relay, { asp_version: v }, 'malformed', 4000);
    if (v) assert.ok(err.message.includes(v), `message should quote "${v}": ${err.message}`);
  }));
}

test('asp-host with ASP 1.0.9 exits 4 and says why', () => withRelay(async (relay) => {
  const h = relay.aspHost(['--asp-version', '1.0.9', '--seconds', '5']);
  await h.expectExit(4);
  assert.match(h.stderr, /1\.0\.9/, h.describe());
}));

test('asp-host on Linux exits 3 with the relay\'s message verbatim', () => withRelay(async (relay) => {
  const err = await hostRefused(relay, { os: 'linux' }, 'unsupported_os', 4002);
  assert.match(err.message, /only Windows images/i, err.message);
  const h = relay.aspHost(['--os', 'linux', '--seconds', '5']);
  await h.expectExit(3);
  assert.ok(h.stderr.includes(err.message), `want "${err.message}" on stderr\n${h.describe()}`);
}));

for (const client of ['windows', 'macos']) {
  test(`a ${client} client 6.1.9 is refused with bad_version (4001)`, () => withRelay(async (relay) => {
    const err = await clientRefused(relay, client, '6.1.9', 'bad_version', 4001);
    assert.match(err.message, /6\.1\.9/, `message should quote what was sent: ${err.message}`);
  }));
  test(`a ${client} client 6.2 is accepted`, () => withRelay((relay) => clientAccepted(relay, client, '6.2')));
}

test('a hardware terminal 6.2.9 is refused with bad_version (4001)', () => withRelay(async (relay) => {
  await clientRefused(relay, 'terminal', '6.2.9', 'bad_version', 4001);
}));

test('a hardware terminal 6.3 is accepted', () => withRelay((relay) => clientAccepted(relay, 'terminal', '6.3')));

for (const v of ['0.0.1', '', 'not a version']) {
  test(`the web client with version "${v}" is accepted`, () => withRelay((relay) => clientAccepted(relay, 'web', v)));
}

test('an android client is refused with unsupported_client (4003)', () => withRelay(async (relay) => {
  await clientRefused(relay, 'android', '6.3', 'unsupported_client', 4003);
}));

test('client names are lower case: "Windows" is refused with unsupported_client (4003)', () => withRelay(async (relay) => {
  await clientRefused(relay, 'Windows', '6.2', 'unsupported_client', 4003);
}));

test('a client with a garbage version is refused as malformed (4000)', () => withRelay(async (relay) => {
  await clientRefused(relay, 'windows', '6..2', 'malformed', 4000);
}));

// The tools: refusals map to exit codes and the relay's message verbatim.

async function withOwnerKey(relay, body) {
  const { key } = await relay.aspHostReady(['--seconds', '60', '--fps', '10']);
  await body(key);
}

test('asp-view as a macOS 6.1.9 client exits 4 (version refused)', () => withRelay(async (relay) => {
  await withOwnerKey(relay, async (key) => {
    const v = relay.aspView(['--owner-key', key, '--client', 'macos', '--client-version', '6.1.9', '--seconds', '10']);
    await v.expectExit(4);
    assert.match(v.stderr, /6\.1\.9/, v.describe());
  });
}));

test('asp-view as a terminal 6.2.9 client exits 4, as 6.3 it views the desktop', () => withRelay(async (relay) => {
  await withOwnerKey(relay, async (key) => {
    const old = relay.aspView(['--owner-key', key, '--client', 'terminal', '--client-version', '6.2.9', '--seconds', '10']);
    await old.expectExit(4);
    const ok = relay.aspView(['--owner-key', key, '--client', 'terminal', '--client-version', '6.3', '--frames', '5', '--seconds', '20']);
    await ok.waitForLine(/^joined: owner/);
    await ok.expectExit(0, 30000);
  });
}));

test('asp-view as a windows 6.2 client views the desktop', () => withRelay(async (relay) => {
  await withOwnerKey(relay, async (key) => {
    const v = relay.aspView(['--owner-key', key, '--client', 'windows', '--client-version', '6.2', '--frames', '5', '--seconds', '20']);
    await v.expectExit(0, 30000);
  });
}));

test('asp-view as an android client exits 3 with the relay\'s message verbatim', () => withRelay(async (relay) => {
  await withOwnerKey(relay, async (key) => {
    const err = await clientRefused(relay, 'android', '6.3', 'unsupported_client', 4003);
    const v = relay.aspView(['--owner-key', key, '--client', 'android', '--client-version', '6.3', '--seconds', '10']);
    await v.expectExit(3);
    assert.ok(v.stderr.includes(err.message), `want "${err.message}" on stderr\n${v.describe()}`);
  });
}));
