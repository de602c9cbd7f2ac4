// Helpers for the cluster tests (docs/cluster.md): a real redis-server on a
// loopback port chosen at run time, and N asp-relay nodes joined to it, each
// with its own data directory holding a copy of one signing secret.
//
// withCluster() starts Redis (in a temp dir, AOF on and fsynced on every
// write, no RDB), then the nodes, runs the body, and tears everything down
// whatever happened: nodes still running must exit 0 on SIGTERM with no
// sanitizer report (as withRelay checks for one relay), Redis is stopped
// and its directory removed.  A test can kill -9 a node and start it again
// on its port, kill -9 or SIGSTOP Redis and start it again on the same
// directory, or cut one node off from Redis through a TCP proxy that stops
// forwarding (a network partition: the node's packets go nowhere, while
// the other nodes still reach Redis).
//
// Clients here follow `redirect` as docs/cluster.md tells clients to: the
// test sees each hop, and where it ended.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import {
  Client, HOST_USER, GUEST_USER, OWNER_USER, Proc, Relay, SECRET_LEN, bin, delay, freePort, httpRequest, mintToken, within,
} from './lib.mjs';

// Short enough that a failover test takes seconds, long enough that a
// sanitizer build on a loaded 2-core machine renews well inside it
// (renewal every third, fencing at 90 %).
export const LEASE_MS = 2000;
const TAIL = 40;
const tail = (text, n = TAIL) => text.split('\n').slice(-n).join('\n');

// Every redis-server this process started, killed if the test runner exits
// without its teardown (an uncaught error, a signal): none is left behind.
const liveRedis = new Set();
process.on('exit', () => { for (const p of liveRedis) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

// ---------------------------------------------------------------------------
// A minimal RESP2 client (the Redis protocol), for the tests' own reads of
// the cluster's keys: one connection, commands answered in order.

function parseResp(buf, off) {
  if (off >= buf.length) return null;
  const nl = buf.indexOf('\r\n', off);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[off]);
  const line = buf.toString('utf8', off + 1, nl);
  const next = nl + 2;
  switch (type) {
    case '+': return [line, next];
    case '-': return [new RedisError(line), next];
    case ':': return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parseResp(buf, at);
        if (!r) return null;
        out.push(r[0]);
        at = r[1];
      }
      return [out, at];
    }
    default: throw new Error(`RESP: unexpected type byte ${JSON.stringify(type)}`);
  }
}

export class RedisError extends Error {}

export class RedisClient {
  constructor(port) {
    this.port = port;
    this.sock = null;
    this.buf = Buffer.alloc(0);
    this.waiting = [];
  }

  open() {
    if (this.sock) return;
    this.sock = net.connect(this.port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const r = parseResp(this.buf, 0);
        if (!r) break;
        this.buf = this.buf.subarray(r[1]);
        const w = this.waiting.shift();
        if (w) (r[0] instanceof RedisError ? w.reject : w.resolve)(r[0]);
      }
    });
    const fail = (e) => {
      for (const w of this.waiting) w.reject(e || new Error('redis connection closed'));
      this.waiting = [];
      this.sock = null;
      this.buf = Buffer.alloc(0);
    };
    this.sock.on('error', fail);
    this.sock.on('close', () => fail());
  }

  // One command, e.g. cmd('GET', 'asp:lease:desk-1'); rejects on an error
  // reply, a lost connection or after ms.
  cmd(...args) {
    this.open();
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
      const s = String(a);
      parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
    }
    const p = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.sock.write(parts.join(''));
    return within(p, 5000, `redis ${args.join(' ')}`);
  }

  close() {
    if (this.sock) this.sock.destroy();
    this.sock = null;
  }
}

// INFO's "section" text as { key: value }.
export function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------
// redis-server.

export class RedisServer {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-redis-'));
    this.port = null;
    this.proc = null;
    this.paused = false;
    this.client = null;
  }

  get url() { return `redis://127.0.0.1:${this.port}`; }

  // Starts it (again, on the same directory and port after a stop or kill).
  async start() {
    this.port ??= await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
      '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'notice'];
    this.proc = new Proc('redis-server', '/usr/bin/redis-server', args);
    const { child } = this.proc;
    liveRedis.add(child);
    this.proc.exited.then(() => liveRedis.delete(child));
    await this.proc.waitForLine(/Ready to accept connections/, 20000);
    this.client = new RedisClient(this.port);
    return this;
  }

  cmd(...args) { return this.client.cmd(...args); }

  async info(section) { return parseInfo(await this.cmd('INFO', section)); }

  // SIGKILL: what the last fsync of the AOF holds is all that survives.
  async kill9() {
    this.client?.close();
    this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }

  // SIGSTOP: the process is there, its socket accepts nothing and answers
  // nothing (a hung server), until resume().
  pause() { this.proc.child.kill('SIGSTOP'); this.paused = true; }

  resume() { if (this.paused) { this.proc.child.kill('SIGCONT'); this.paused = false; } }

  describe() { return this.proc ? `--- redis-server (port ${this.port}) ---\n${tail(this.proc.lines.join('\n'), 15)}` : ''; }

  async stop() {
    this.resume();
    this.client?.close();
    if (this.proc && !this.proc.exit) await this.proc.stop(10000).catch(() => {});
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// A TCP proxy between one node and Redis.  block() stops forwarding in both
// directions and holds new connections unanswered (the node's packets go
// nowhere, as in a network partition; nothing is closed); unblock()
// forwards again, including what waited.

export class RedisProxy {
  constructor(targetPort) {
    this.target = targetPort;
    this.blocked = false;
    this.pairs = new Set();
    this.held = [];
    this.server = net.createServer((s) => this.accept(s));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  get url() { return `redis://127.0.0.1:${this.port}`; }

  accept(down) {
    down.on('error', () => {});
    if (this.blocked) {
      down.pause();
      this.held.push(down);
      down.on('close', () => { this.held = this.held.filter((x) => x !== down); });
      return;
    }
    this.join(down);
  }

  join(down) {
    const up = net.connect(this.target, '127.0.0.1');
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    const pair = { up, down };
    this.pairs.add(pair);
    up.on('close', () => this.pairs.delete(pair));
    down.pipe(up);
    up.pipe(down);
    if (this.blocked) this.pausePair(pair);
  }

  pausePair({ up, down }) { up.pause(); down.pause(); }

  block() {
    this.blocked = true;
    for (const p of this.pairs) this.pausePair(p);
  }

  unblock() {
    this.blocked = false;
    for (const { up, down } of this.pairs) { up.resume(); down.resume(); }
    const held = this.held;
    this.held = [];
    for (const s of held) { s.resume(); this.join(s); }
  }

  async stop() {
    for (const { up, down } of this.pairs) { up.destroy(); down.destroy(); }
    for (const s of this.held) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

// ---------------------------------------------------------------------------
// A relay node.

export class ClusterNode extends Relay {
  // id: --node-id; port: where it listens (and its --node-url);
  // redisUrl: Redis or the node's proxy; secret: the cluster's one secret.
  constructor({ id, port, redisUrl, secret, lease = LEASE_MS, args = [] }) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), `asp-node-${id}-`));
    const data = path.join(home, 'data');
    fs.mkdirSync(data);
    const argv = ['--listen', `127.0.0.1:${port}`, '--data', data, '--redis', redisUrl,
      '--node-url', `ws://127.0.0.1:${port}`, '--node-id', id, '--lease-ms', String(lease), ...args];
    super(argv, {}, { bare: true, data, secret });
    this.proc.name = `asp-relay ${id}`;
    this.home = home;
    this.id = id;
    this.argv = argv;
    this.nodeUrl = `ws://127.0.0.1:${port}`;
    this.killed = false;
  }

  // SIGKILL: no goodbye to Redis, its leases run out by themselves.
  async kill9() {
    this.proc.child.kill('SIGKILL');
    await this.proc.exited;
    this.killed = true;
    this.clients = [];
  }

  // Starts the node again on its port and data directory.
  async restart() {
    this.proc = new Proc(`asp-relay ${this.id}`, bin('asp-relay'), this.argv);
    this.killed = false;
    this.clients = [];
    await this.ready();
  }

  // /metrics as { 'name{labels}': number }.
  async metrics() {
    const r = await this.get('/metrics');
    assert.equal(r.status, 200, `${this.id} /metrics: ${r.status} ${r.body}`);
    return parseMetrics(r.body);
  }

  async stop() {
    try {
      if (this.killed) {
        this.stopped = true;
        this.proc.assertNoSanitizerReport();
      } else {
        await super.stop();
      }
    } finally {
      fs.rmSync(this.home, { recursive: true, force: true });
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// Prometheus text as { 'name{labels}': value } (labels as written).
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^(\S+?(?:\{[^}]*\})?)\s+(\S+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// The value of series name (any labels) whose labels include all of want.
export function metric(ms, name, want = {}) {
  for (const [k, v] of Object.entries(ms)) {
    const m = k.match(/^([^{]+)(?:\{(.*)\})?$/);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(want).every(([lk, lv]) => labels[lk] === lv)) return v;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// The cluster.

export class Cluster {
  // nodes: how many; lease: --lease-ms; args: extra arguments for every
  // node; proxied: ids of nodes that reach Redis through a RedisProxy.
  constructor({ nodes = 2, lease = LEASE_MS, args = [], proxied = [] } = {}) {
    this.count = nodes;
    this.leaseMs = lease;
    this.args = args;
    this.proxiedIds = proxied;
    this.secret = crypto.randomBytes(SECRET_LEN);
    this.redis = new RedisServer();
    this.proxies = {};
    this.nodes = [];
    this.clients = [];
    this.tools = [];
    this.streams = [];
  }

  async start() {
    await this.redis.start();
    const ids = 'abcdefgh'.slice(0, this.count).split('');
    for (const id of ids) {
      let redisUrl = this.redis.url;
      if (this.proxiedIds.includes(id)) {
        this.proxies[id] = await new RedisProxy(this.redis.port).start();
        redisUrl = this.proxies[id].url;
      }
      this.nodes.push(new ClusterNode({ id, port: await freePort(), redisUrl, secret: this.secret,
        lease: this.leaseMs, args: this.args }));
    }
    await Promise.all(this.nodes.map((n) => n.ready()));
    return this;
  }

  node(id) { return this.nodes.find((n) => n.id === id); }

  byUrl(url) { return this.nodes.find((n) => n.nodeUrl === url); }

  token(claims) { return mintToken(this.secret, claims); }

  adminToken(user = 'root', ttl = 3600) { return this.token({ user, role: 'admin', ttl }); }

  // Restarts Redis on its directory and port after a kill9.
  async restartRedis() { await this.redis.start(); }

  // Who holds DESKTOP's lease in Redis, and for how many more ms.
  async lease(desktop) {
    const [holder, pttl] = await Promise.all([this.redis.cmd('GET', `asp:lease:${desktop}`),
      this.redis.cmd('PTTL', `asp:lease:${desktop}`)]);
    return { holder, pttl };
  }

  async desktopEntry(desktop) {
    const v = await this.redis.cmd('HGET', 'asp:desktops', desktop);
    return v === null ? null : JSON.parse(v);
  }

  // A raw WebSocket to url+pathName; resolves once open.
  async connect(url, pathName, protocol, label) {
    const ws = new WebSocket(`${url}${pathName}`, protocol, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    const c = new Client(ws, label, true);
    c.url = url;
    this.clients.push(c);
    await within(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode} on upgrade`)));
    }), 15000, `${label}: WebSocket handshake to ${url}`);
    return c;
  }

  // Says hello (and join, for a viewer) through node, following redirects
  // as a client does (at most 4 hops).  Resolves with the last client and
  // how it ended: { c, hops: [url...], ok, msg } where msg is the welcome
  // (hosts) or joined (viewers) when ok, else the error.
  async attempt(node, { side, hello, join, label }) {
    const hops = [];
    let url = node.nodeUrl;
    for (;;) {
      const c = await this.connect(url, side === 'host' ? '/host' : '/view',
        side === 'host' ? 'asp.host.v1' : 'asp.view.v1', `${label}@${this.byUrl(url)?.id ?? url}`);
      c.send({ type: 'hello', ...hello });
      let answer = await this.firstOf(c, side === 'host' ? ['welcome', 'error'] : ['welcome', 'error']);
      if (answer.type === 'welcome' && join) {
        c.send({ type: 'join', ...join });
        answer = await this.firstOf(c, ['joined', 'error']);
      }
      if (answer.type === 'error' && answer.code === 'redirect') {
        const close = await c.waitClose();
        assert.equal(close.code, 4024, `${c.label}: redirect closed with ${close.code}, want 4024\n${c.describe()}`);
        assert.ok(this.byUrl(answer.url), `${c.label}: redirected to ${answer.url}, which is no node of this cluster ` +
          `(${this.nodes.map((n) => n.nodeUrl).join(', ')})`);
        hops.push(answer.url);
        assert.ok(hops.length <= 4, `${label}: more than 4 redirects: ${hops.join(' -> ')}`);
        url = answer.url;
        continue;
      }
      c.node = this.byUrl(url);
      return { c, hops, ok: answer.type !== 'error', msg: answer };
    }
  }

  // The first JSON message of one of these types.
  firstOf(c, types, ms = 15000) {
    return c.json.take((m) => types.includes(m.type), ms, () => `${c.label}: none of ${types.join(', ')}\n${c.describe()}`);
  }

  // A raw host welcomed through node (redirects followed): c.welcome,
  // c.desktop, c.node, c.hops.
  async host(node, { desktop = `desk-${crypto.randomBytes(4).toString('hex')}`, name = 'Dana\'s desktop',
    user = HOST_USER, label = 'host', ttl = 3600 } = {}) {
    const r = await this.attempt(node, { side: 'host', label,
      hello: { os: 'windows', image: 'system', asp_version: '1.1.0', desktop, name, token: this.token({ user, desktop, ttl }) } });
    assert.ok(r.ok, `${label}: refused: ${JSON.stringify(r.msg)}\n${r.c.describe()}`);
    Object.assign(r.c, { welcome: r.msg, desktop, hops: r.hops });
    return r.c;
  }

  // A raw viewer joined through node (redirects followed): c.joined, c.node,
  // c.hops.  An owner signs in as the desktop's user.
  async join(node, how, { user, name = 'Alice', label = 'viewer', token, ttl = 3600, role } = {}) {
    const r = await this.tryJoin(node, how, { user, name, label, token, ttl, role });
    assert.ok(r.ok, `${label}: join refused: ${JSON.stringify(r.msg)}\n${r.c.describe()}`);
    Object.assign(r.c, { joined: r.msg, hops: r.hops });
    return r.c;
  }

  tryJoin(node, how, { user, name = 'Alice', label = 'viewer', token, ttl = 3600, role = 'user' } = {}) {
    user ??= how.owner_key ? OWNER_USER : GUEST_USER;
    return this.attempt(node, { side: 'view', label, join: how,
      hello: { client: 'web', client_version: '1.0', name, token: token ?? this.token({ user, role, ttl }) } });
  }

  // The admin API of node, as root unless a token is given.
  api(node, method, pathName, body, token = this.adminToken()) { return node.api(method, pathName, body, token); }

  // Runs a tool with a --relay list of these nodes' URLs (in this order);
  // stopped at teardown, where a sanitizer report fails the test.
  tool(name, nodes, args) {
    const p = new Proc(name, bin(name), ['--relay', nodes.map((n) => n.nodeUrl).join(','), ...args]);
    this.tools.push(p);
    return p;
  }

  // asp-host for desktop, signed in as its user, through nodes.
  aspHost(nodes, desktop, args = [], user = HOST_USER) {
    return this.tool('asp-host', nodes, ['--desktop', desktop, '--token', this.token({ user, desktop }), ...args]);
  }

  // asp-view signed in as user (the desktop's user for --owner-key).
  aspView(nodes, args, user = args.includes('--owner-key') ? OWNER_USER : GUEST_USER) {
    return this.tool('asp-view', nodes, ['--token', this.token({ user }), ...args]);
  }

  // The admin API's event stream (GET /api/events) of node: { events,
  // close }, events growing as `change` events arrive (parsed data).
  async events(node, token = this.adminToken()) {
    const events = [];
    const req = http.get(`${node.httpUrl}/api/events`, { headers: { authorization: `Bearer ${token}` } });
    const res = await within(new Promise((resolve, reject) => { req.on('response', resolve); req.on('error', reject); }),
      15000, `${node.id}: GET /api/events`);
    assert.equal(res.statusCode, 200, `${node.id}: GET /api/events answered ${res.statusCode}`);
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (d) => {
      buf += d;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const ev = block.match(/^event: (.*)$/m)?.[1];
        const data = block.match(/^data: (.*)$/m)?.[1];
        if (ev === 'change' && data) events.push(JSON.parse(data));
      }
    });
    res.on('error', () => {});
    const stream = { events, close: () => req.destroy() };
    this.streams.push(stream);
    return stream;
  }

  describe() {
    return [...this.tools.map((t) => t.describe()), ...this.nodes.map((n) => `--- asp-relay ${n.id} (${n.nodeUrl}) stderr, last ${TAIL} lines ---\n${tail(n.proc.stderr)}`),
      this.redis.describe()].join('\n');
  }

  async stop() {
    const errors = [];
    this.redis.resume();
    for (const p of Object.values(this.proxies)) p.unblock();
    for (const s of this.streams) s.close();
    await Promise.all(this.clients.map((c) => c.closeGracefully()));
    for (const t of this.tools) {
      try { await t.stop(); t.assertNoSanitizerReport(); } catch (e) { errors.push(e.message); }
    }
    for (const n of this.nodes) {
      try { await n.closeAll(); } catch (e) { errors.push(e.message); }
    }
    // The nodes leave while Redis still runs, so none waits on it.
    await Promise.all(this.nodes.map((n) => n.stop().catch((e) => errors.push(e.message))));
    for (const p of Object.values(this.proxies)) await p.stop();
    await this.redis.stop();
    if (errors.length) throw new Error(errors.join('\n'));
  }
}

// Runs body with a fresh cluster (opts as Cluster's), then tears it all
// down; a failure carries every node's log and Redis's.
export async function withCluster(opts, body) {
  if (typeof opts === 'function') { body = opts; opts = {}; }
  const cl = new Cluster(opts);
  let err = null;
  try {
    await cl.start();
    await body(cl);
  } catch (e) {
    err = e;
  }
  const logs = cl.describe();
  try {
    await cl.stop();
  } catch (e) {
    if (err) err.message += `\n\nand at teardown: ${e.message}`;
    else err = e;
  }
  if (err) {
    err.message += `\n${logs}`;
    throw err;
  }
}

// Polls fn until it returns something truthy; resolves with it.
export async function until(fn, ms, what, every = 50) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    await delay(every);
  }
}

export { HOST_USER, GUEST_USER, OWNER_USER, delay, freePort, httpRequest };
