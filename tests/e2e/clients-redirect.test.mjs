// The clients' side of a cluster (docs/cluster.md, "Clients"), against
// real relays in cluster mode and a real redis-server this file starts on
// a free port: asp-view, asp-host and the web page reached through a node
// that does not hold the desktop follow the redirect to the one that does;
// a redirect loop (a node's --node-url naming another node) is given up
// after 4 hops; when the node holding a desktop is killed, its host and
// guest come back through the other node with the same code and owner
// key; and while Redis is down, `unavailable` sends the clients round
// their lists (a host until Redis is back, a new viewer once round).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Proc, RestartableRelay, SECRET_LEN, freePort, parseKv } from './lib.mjs';
import { DETAIL, canvasStats, describePage, join, launchBrowser, openPage, waitFor } from './browser-lib.mjs';

const REDIS = '/usr/bin/redis-server';
const LEASE_MS = 1000;

// A redis-server with persistence on (the relay refuses one without), in
// a temp dir, on a free port; it can be stopped and started again there.
async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-e2e-redis-'));
  const port = await freePort();
  const redis = {
    url: `redis://127.0.0.1:${port}`,
    proc: null,
    async start() {
      this.proc = new Proc('redis-server', REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'yes', '--dir', dir]);
      await this.proc.waitForLine(/Ready to accept connections/, 15000);
    },
    async down() {
      const ex = await this.proc.stop();
      assert.equal(ex.code, 0, this.proc.describe());
    },
    async stop() {
      if (!this.proc.exit) await this.down();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await redis.start();
  return redis;
}

// Runs body({ redis, node }) where node(extra, opts) starts one more node
// of the cluster (a RestartableRelay sharing the first node's secret);
// every node and Redis are stopped after it.
async function withCluster(body) {
  const redis = await startRedis();
  const secret = crypto.randomBytes(SECRET_LEN);
  const nodes = [];
  const node = async (extra = []) => {
    const r = new RestartableRelay(['--redis', redis.url, '--lease-ms', String(LEASE_MS), ...extra], {}, { secret });
    nodes.push(r);
    return r.ready();
  };
  let err = null;
  try {
    await body({ redis, node });
  } catch (e) {
    err = e;
  }
  for (const r of nodes) {
    try {
      await r.closeAll();
      await r.stop();
    } catch (e) {
      err ??= e;
    }
  }
  await redis.stop().catch((e) => { err ??= e; });
  if (err) throw err;
}

const summary = (proc, what) => {
  const line = proc.lines.find((l) => l.startsWith(`${what}: `));
  assert.ok(line, `no ${what}: line\n${proc.describe()}`);
  return parseKv(line);
};

test('asp-view joining through a node that does not hold the desktop is redirected to the one that does and verifies the stream', () => withCluster(async ({ node }) => {
  const a = await node();
  const b = await node();
  const { code } = await a.aspHostReady(['--share', '--size', '320x240', '--fps', '15']);
  const view = b.aspView(['--code', code, '--frames', '20', '--seconds', '30']);
  await view.waitForLine(new RegExp(`^redirected: ${a.url}$`));
  await view.waitForLine(/^joined: guest$/);
  await view.expectExit(0);
  assert.equal(view.countLines(/^redirected: /), 1, view.describe());
  assert.equal(view.countLines(/^reconnecting/), 0, view.describe());
  assert.equal(summary(view, 'metrics').errors, 0, view.describe());
  assert.equal(summary(view, 'decode').errors, 0, view.describe());
  // The refusal is the cluster's business, not the person's: no message.
  assert.doesNotMatch(view.stderr, /served by another relay/, view.describe());
  view.assertNoSanitizerReport();
}));

test('asp-host for a desktop held on another node is redirected there and replaces the older host, which does not fight back', () => withCluster(async ({ node }) => {
  const a = await node();
  const b = await node();
  const { host: first, key } = await a.aspHostReady(['--desktop', 'desk-two', '--frame-bytes', '4096']);
  const second = b.aspHost(['--desktop', 'desk-two', '--frame-bytes', '4096']);
  await second.waitForLine(new RegExp(`^redirected: ${a.url}$`));
  const [, key2] = await second.waitForLine(/^welcome: owner_key=([0-9a-f]{32})$/);
  assert.equal(key2, key, second.describe());
  const [, link] = await second.waitForLine(/^owner-link: (\S+)$/);
  assert.equal(new URL(link).origin, a.httpUrl, `the owner link is the welcoming node's page\n${second.describe()}`);
  await first.expectExit(3);
  assert.match(first.stderr, /^This desktop connected again; this older connection was closed\.$/m, first.describe());
  assert.equal(first.countLines(/^reconnecting/), 0, first.describe());
}));

test('a redirect loop (a node\'s --node-url naming another node) is given up after 4 hops: exit 5, saying so', () => withCluster(async ({ node }) => {
  // b listens everywhere; a's node URL names b through another address,
  // so b sends the viewer to itself, round and round.
  const b = await node(['--listen', '0.0.0.0:0']);
  const a = await node(['--node-url', `ws://127.0.0.2:${b.port}`]);
  const { code } = await a.aspHostReady(['--share', '--frame-bytes', '4096']);
  const view = b.aspView(['--relay', `ws://127.0.0.1:${b.port}`, '--code', code, '--seconds', '30']);
  await view.expectExit(5);
  assert.equal(view.countLines(new RegExp(`^redirected: ws://127\\.0\\.0\\.2:${b.port}$`)), 4, view.describe());
  assert.match(view.stderr, /^asp-view: redirect loop: 5 redirects in a row without reaching a session; the last to ws:\/\/127\.0\.0\.2:\d+$/m, view.describe());
  assert.match(view.stderr, /^cannot connect: redirect loop: /m, view.describe());
  assert.equal(view.countLines(/^joined/), 0, view.describe());
  view.assertNoSanitizerReport();
}));

test('kill -9 of the node holding a desktop: its host and guest come back through the other node, same code and owner key', () => withCluster(async ({ node }) => {
  const a = await node();
  const b = await node();
  const { host, key, code } = await a.aspHostReady(['--relay', `${a.url},${b.url}`, '--desktop', 'desk-fail', '--share',
    '--size', '320x240', '--fps', '10']);
  // The guest reaches the desktop through b; at 10 fps it cannot see 80
  // video messages before the kill, so it must finish on b.
  const view = b.aspView(['--relay', `${b.url},${a.url}`, '--code', code, '--frames', '80', '--seconds', '60']);
  await view.waitForLine(new RegExp(`^redirected: ${a.url}$`));
  await view.waitForLine(/^joined: guest$/);
  await a.kill();

  await host.waitForLine(/^reconnecting in \d+ ms: the connection was lost \(1006\)$/);
  await host.waitForLine(new RegExp(`^next-relay: ${b.url}$`));
  await host.waitForLine(/^reconnected$/, 20000);
  const [, key2] = await host.waitForLine(/^welcome: owner_key=([0-9a-f]{32})$/);
  assert.equal(key2, key, host.describe());
  const [, code2] = await host.waitForLine(/^code: (\S+)$/);
  assert.equal(code2, code, host.describe());

  await view.waitForLine(/^reconnected$/, 30000);
  await view.expectExit(0, 40000);
  assert.equal(view.countLines(/^joined: guest$/), 2, view.describe());
  assert.equal(summary(view, 'metrics').errors, 0, view.describe());
  assert.equal(summary(view, 'decode').errors, 0, view.describe());
  view.assertNoSanitizerReport();
  await a.restart(); // so that its teardown sees a clean exit
}));

test('Redis down: the host is dropped with unavailable and keeps trying round its list, a new viewer tries each relay once and exits 3; Redis back: the host is welcomed again', () => withCluster(async ({ redis, node }) => {
  const a = await node();
  const b = await node();
  const { host, key, code } = await a.aspHostReady(['--relay', `${a.url},${b.url}`, '--desktop', 'desk-redis', '--share',
    '--frame-bytes', '4096', '--fps', '10']);
  await redis.down();
  // Fencing: once its lease can no longer be renewed, the node drops the
  // desktop with unavailable; both nodes then refuse the host's hello.
  await host.waitForLine(/^reconnecting in \d+ ms: .*unavailable/, 20000);
  await host.waitForLine(new RegExp(`^next-relay: ${b.url}$`));
  await host.waitForLine(new RegExp(`^next-relay: ${a.url}$`), 20000);
  assert.match(host.stderr, /^The relay cannot reach its cluster right now; try another relay or again shortly\.$/m, host.describe());

  const view = a.aspView(['--relay', `${a.url},${b.url}`, '--code', code, '--seconds', '30']);
  await view.expectExit(3);
  assert.equal(view.countLines(/^reconnecting in \d+ ms: /), 1, view.describe());
  assert.equal(view.countLines(new RegExp(`^next-relay: ${b.url}$`)), 1, view.describe());
  assert.equal(view.stderr.match(/^The relay cannot reach its cluster right now; try another relay or again shortly\.$/mg)?.length, 2,
    view.describe());
  view.assertNoSanitizerReport();

  await redis.start();
  await host.waitForLine(/^reconnected$/, 30000);
  const [, key2] = await host.waitForLine(/^welcome: owner_key=([0-9a-f]{32})$/);
  assert.equal(key2, key, host.describe());
  assert.equal(host.exit, null, host.describe());
}));

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('the web page served by a node that does not hold the desktop follows the redirect and decodes the desktop', () => withCluster(async ({ node }) => {
  const a = await node();
  const b = await node();
  const { code } = await a.aspHostReady(['--share', '--source', 'synthetic', '--size', '640x360', '--fps', '15']);
  const token = b.token({ user: 'alice' });
  const page = await openPage(browser, `${b.httpUrl}/#code=${code}&token=${token}`);
  await join(page, code, 'Alice');
  await waitFor(page, 'the decoded desktop', async (p) => {
    const s = await canvasStats(p);
    return s.frames > 5 && s.variance > DETAIL && s;
  }, 30000);
  const s = await page.evaluate(() => window.asp.stats());
  assert.equal(s.relay, a.url, await describePage(page));
  assert.equal(s.redirects, 1, await describePage(page));
  await page.context().close();
}));
