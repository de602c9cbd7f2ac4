// Secure transport: with --tls-cert/--tls-key the same port serves HTTPS and
// secure WebSocket (docs/protocol.md, "Endpoints").  The certificate is a
// fresh self-signed one, so the tools run with --insecure.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { KIND, Proc, bin, media, parseKv, selfSignedCert, withRelay } from './lib.mjs';

const cert = selfSignedCert();
after(() => fs.rmSync(cert.dir, { recursive: true, force: true }));
const TLS = { args: ['--tls-cert', cert.cert, '--tls-key', cert.key] };

test('over wss:// asp-host shares and asp-view joins and verifies the stream', () => withRelay(TLS, async (relay) => {
  assert.equal(relay.scheme, 'wss', `the relay should announce wss://\n${relay.describe()}`);
  const { host, code } = await relay.aspHostReady(['--share', '--fps', '30', '--seconds', '60']);
  const view = relay.aspView(['--code', code, '--name', 'Alice', '--frames', '30', '--seconds', '30']);
  await view.waitForLine(/^joined: guest/);
  await host.waitForLine(/^notify: collab_joined .*\(Alice\)/);
  await view.expectExit(0, 40000);
  const kv = parseKv((await view.waitForLine(/^metrics: (.*)$/))[1]);
  assert.ok(kv.frames >= 30, view.describe());
  assert.equal(kv.errors, 0, view.describe());
}));

test('over wss:// a raw client gets the same protocol', () => withRelay(TLS, async (relay) => {
  const host = await relay.host();
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  await owner.echo();
  const payload = Buffer.alloc(200000, 7);
  const m = media({ kind: KIND.control, seq: 5, payload });
  host.sendBinary(m);
  const got = await owner.nextBinary();
  assert.ok(got.data.equals(m), `owner got ${got.size} bytes`);
}));

test('GET https://…/healthz answers 200', () => withRelay(TLS, async (relay) => {
  const r = await relay.get('/healthz');
  assert.equal(r.status, 200, JSON.stringify(r));
}));

test('a plain ws:// client cannot talk to a TLS relay, and the relay keeps serving', () => withRelay(TLS, async (relay) => {
  const plain = relay.url.replace('wss://', 'ws://');
  const v = new Proc('asp-view', bin('asp-view'), ['--relay', plain, '--code', '2345-6789-ABCD', '--seconds', '5']);
  relay.tools.push(v);
  const ex = await v.wait(20000);
  assert.notEqual(ex.code, 0, v.describe());
  assert.equal((await relay.get('/healthz')).status, 200);
}));
