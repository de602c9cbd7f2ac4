// The client tools' relay lists and reconnects, against real relays and
// no cluster (docs/cluster.md, "Clients"): asp-host and asp-view skip a
// relay of their --relay list that cannot be reached, give up after one
// round when none can, fail over between two relays that share a signing
// secret and come back round the list; and asp-view, once joined, joins
// again by itself after its relay is killed and restarted, waiting out
// `offline` until its desktop is back.  Redirects, which need a cluster,
// are in clients-redirect.test.mjs.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Proc, Relay, bin, freePort, parseKv, withRelay, withRestartable } from './lib.mjs';

const summary = (proc, what) => {
  const line = proc.lines.find((l) => l.startsWith(`${what}: `));
  assert.ok(line, `no ${what}: line\n${proc.describe()}`);
  return parseKv(line);
};

test('asp-host --relay DEAD,LIVE skips the dead relay after the backoff, is welcomed by the second and hands the list to its owner link', () => withRelay(async (relay) => {
  const dead = `ws://127.0.0.1:${await freePort()}`;
  const list = `${dead},${relay.url}`;
  const { host } = await relay.aspHostReady(['--relay', list, '--desktop', 'desk-list', '--frame-bytes', '4096']);
  const [, ms] = await host.waitForLine(new RegExp(`^reconnecting in (\\d+) ms: cannot connect to ${dead}: `));
  assert.ok(Number(ms) >= 124 && Number(ms) <= 250, `first retry after ${ms} ms, want 125-250\n${host.describe()}`);
  await host.waitForLine(new RegExp(`^next-relay: ${relay.url}$`));
  // The page is the welcoming relay's; the list rides along for it.
  const [, link] = await host.waitForLine(/^owner-link: (\S+)$/);
  assert.equal(new URL(link).origin, relay.httpUrl, host.describe());
  assert.equal(new URL(link).searchParams.get('relay'), list, host.describe());
  assert.equal(host.countLines(/^reconnected$/), 0, `nothing was lost yet\n${host.describe()}`);
}));

test('asp-view --relay DEAD,LIVE joins through the second relay and verifies the stream', () => withRelay(async (relay) => {
  const { code } = await relay.aspHostReady(['--share', '--size', '320x240', '--fps', '15']);
  const dead = `ws://127.0.0.1:${await freePort()}`;
  const view = relay.aspView(['--relay', `${dead},${relay.url}`, '--code', code, '--frames', '20', '--seconds', '30']);
  await view.waitForLine(new RegExp(`^reconnecting in \\d+ ms: cannot connect to ${dead}: `));
  await view.waitForLine(/^joined: guest$/);
  await view.expectExit(0);
  assert.equal(summary(view, 'metrics').errors, 0, view.describe());
  assert.equal(summary(view, 'decode').errors, 0, view.describe());
}));

test('with no relay of the list reachable, asp-host and asp-view try each once and exit 5', async () => {
  const urls = [`ws://127.0.0.1:${await freePort()}`, `ws://127.0.0.1:${await freePort()}`, `ws://127.0.0.1:${await freePort()}`];
  const host = new Proc('asp-host', bin('asp-host'), ['--relay', urls.join(','), '--frame-bytes', '4096']);
  const view = new Proc('asp-view', bin('asp-view'), ['--relay', urls.join(','), '--code', '2345-6789-ABCD']);
  for (const p of [host, view]) {
    await p.expectExit(5);
    // One attempt per relay: two retries after the first.
    assert.equal(p.countLines(/^reconnecting in \d+ ms: cannot connect to /), 2, p.describe());
    assert.deepEqual(p.lines.filter((l) => l.startsWith('next-relay: ')), [`next-relay: ${urls[1]}`, `next-relay: ${urls[2]}`], p.describe());
    assert.match(p.stderr, /^cannot connect: /m, p.describe());
    p.assertNoSanitizerReport();
  }
});

test('a --relay list that is not valid is refused before connecting (exit 1, the reason on stderr)', async () => {
  for (const [list, why] of [
    ['ws://127.0.0.1:1,', /a relay URL is empty/],
    ['ws://127.0.0.1:1,ftp://x', /'ftp:\/\/x' does not start with ws:\/\/ or wss:\/\//],
    ['ws://127.0.0.1:70000', /the port in 'ws:\/\/127\.0\.0\.1:70000' is not a number from 1 to 65535/],
  ]) {
    for (const tool of ['asp-host', 'asp-view']) {
      const p = new Proc(tool, bin(tool), ['--relay', list, ...(tool === 'asp-view' ? ['--code', 'x'] : [])]);
      await p.expectExit(1);
      assert.match(p.stderr, why, p.describe());
      assert.equal(p.lines.length, 0, p.describe());
    }
  }
});

test('asp-host fails over between two relays sharing a secret, and comes back round its list to the first', () => withRestartable(async (a) => {
  const b = await new Relay([], {}, { secret: a.secret }).ready();
  try {
    const { host, key } = await a.aspHostReady(['--relay', `${a.url},${b.url}`, '--desktop', 'desk-ff', '--frame-bytes', '4096']);
    await a.kill();
    await host.waitForLine(/^reconnecting in \d+ ms: the connection was lost \(1006\)$/);
    await host.waitForLine(new RegExp(`^next-relay: ${b.url}$`));
    await host.waitForLine(/^reconnected$/);
    // Each plain relay keeps its own state: the second one's owner key.
    const [, keyB] = await host.waitForLine(/^welcome: owner_key=([0-9a-f]{32})$/);
    assert.notEqual(keyB, key, host.describe());
    const owner = b.aspView(['--owner-key', keyB, '--frames', '5', '--seconds', '20']);
    await owner.expectExit(0);
    owner.assertNoSanitizerReport();

    // The second relay shuts down (1001): round the list to the first.
    await a.restart();
    await b.stop();
    await host.waitForLine(/^reconnecting in \d+ ms: the relay closed the connection \(1001/);
    await host.waitForLine(new RegExp(`^next-relay: ${a.url}$`));
    await host.waitForLine(/^welcome: owner_key=[0-9a-f]{32}$/, 20000);
    for (let i = 0; i < 3; i++) await host.waitForLine(/^owner-link: /);
    const links = host.lines.filter((l) => l.startsWith('owner-link: ')).map((l) => new URL(l.slice(12)).origin);
    assert.deepEqual(links, [a.httpUrl, b.httpUrl, a.httpUrl], host.describe());
    assert.equal(host.countLines(/^reconnected$/), 2, host.describe());
    assert.equal(host.exit, null, host.describe());
  } finally {
    if (!b.stopped) await b.stop();
  }
}));

test('asp-view joined as the guest rejoins by itself after its relay is killed and restarted, waiting out offline until the host is back', () => withRestartable(async (relay) => {
  const { host, code } = await relay.aspHostReady(['--share', '--size', '320x240', '--fps', '10']);
  // At 10 fps the first connection cannot see 60 video messages before
  // the kill: the run can only finish on the second.
  const view = relay.aspView(['--code', code, '--frames', '60', '--seconds', '60']);
  await view.waitForLine(/^joined: guest$/);
  // The host is held still while the relay is away, so the viewer is
  // back before its desktop and must be told offline.
  host.child.kill('SIGSTOP');
  await relay.kill();
  await view.waitForLine(/^reconnecting in \d+ ms: the connection was lost \(1006\)$/);
  await relay.restart();
  await view.waitForLine(/^reconnecting in \d+ ms: the relay closed the connection \(4015 offline\)$/, 20000);
  host.child.kill('SIGCONT');
  await host.waitForLine(/^reconnected$/, 20000);
  await view.waitForLine(/^reconnected$/, 20000);
  await view.waitForLine(/^joined: guest$/);
  await view.expectExit(0, 40000);
  const m = summary(view, 'metrics');
  assert.ok(m.frames >= 60, view.describe());
  assert.equal(m.errors, 0, view.describe());
  assert.equal(summary(view, 'decode').errors, 0, view.describe());
  assert.match(view.stderr, /^The desktop is not connected\.$/m, view.describe());
  view.assertNoSanitizerReport();
}));
