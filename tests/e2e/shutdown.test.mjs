// Shutdown: SIGTERM closes every connection with 1001 (going away), then the
// relay exits 0 without a leak (docs/protocol.md, "Errors"; sanitizer
// cleanliness is checked by withRelay's teardown for every test).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlMsg, withRelay } from './lib.mjs';

test('SIGTERM with a host, owner and guest connected closes all three with 1001 and exits 0 without leaks', () => withRelay(async (relay) => {
  const { host, owner, guest } = await relay.collab();
  for (let seq = 0; seq < 20; seq++) host.sendBinary(controlMsg(seq, 50000));
  await owner.nextBinary();
  const stopping = relay.stop(); // asserts exit 0 and no sanitizer report
  for (const c of [host, owner, guest]) {
    const close = await c.waitClose(20000);
    assert.equal(close.code, 1001, c.describe());
  }
  await stopping;
}));

test('SIGTERM with the real tools connected: host and viewer wait to reconnect and leave cleanly on SIGTERM', () => withRelay(async (relay) => {
  const { host, code } = await relay.aspHostReady(['--share', '--fps', '30', '--seconds', '60']);
  const view = relay.aspView(['--code', code, '--seconds', '60']);
  await view.waitForLine(/^joined: guest/);
  await relay.stop();
  // A desktop and its viewer both wait for their relay to return, and
  // leave cleanly when told to.
  await host.waitForLine(/^reconnecting in \d+ ms: .*1001/);
  await view.waitForLine(/^reconnecting in \d+ ms: .*1001/);
  for (const p of [host, view]) {
    const ex = await p.stop();
    assert.equal(ex.code, 0, p.describe());
    p.assertNoSanitizerReport();
  }
}));

test('SIGTERM with asp-view --no-reconnect connected: the viewer exits 1 (connection lost)', () => withRelay(async (relay) => {
  const { code } = await relay.aspHostReady(['--share', '--fps', '30', '--seconds', '60']);
  const view = relay.aspView(['--code', code, '--seconds', '60', '--no-reconnect']);
  await view.waitForLine(/^joined: guest/);
  await relay.stop();
  await view.expectExit(1);
  assert.match(view.stderr, /connection closed by the relay \(1001/, view.describe());
  assert.equal(view.countLines(/^reconnecting/), 0, view.describe());
  view.assertNoSanitizerReport();
}));

test('SIGTERM on an idle relay exits 0', () => withRelay(async (relay) => {
  await relay.stop();
}));

test('SIGTERM under load: 8 hosts streaming 16 KiB messages flat out, every host, owner and guest gets 1001 and the relay exits 0', () => withRelay(async (relay) => {
  const sessions = [];
  for (let i = 0; i < 8; i++) sessions.push(await relay.collab({ keepPayload: false }));
  let streaming = true;
  const pump = async (host) => {
    for (let seq = 0; streaming && host.ws.readyState === 1; seq++) {
      host.sendBinary(controlMsg(seq, 16 * 1024));
      // Keep about 256 KiB in the host's socket so the relay is busy, not
      // the test's own buffers; yield to the event loop every message.
      do await new Promise((r) => setImmediate(r));
      while (streaming && host.ws.readyState === 1 && host.ws.bufferedAmount > (256 << 10));
    }
  };
  const pumps = sessions.map((s) => pump(s.host));
  await Promise.all(sessions.map((s) => s.owner.nextBinary()));
  await new Promise((r) => setTimeout(r, 500));
  const stopping = relay.stop(); // asserts exit 0 and no sanitizer report
  for (const s of sessions) {
    for (const c of [s.host, s.owner, s.guest]) {
      const close = await c.waitClose(20000);
      assert.equal(close.code, 1001, c.describe());
    }
  }
  streaming = false;
  await Promise.all(pumps);
  await stopping;
}));
