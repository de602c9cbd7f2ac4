// bench/cluster.mjs: the cluster part of `make bench` (issue 11,
// docs/cluster.md, bench/README.md "Cluster").
//
//   node bench/cluster.mjs --build build --out build/bench [--quick | --smoke]
//                          [--parts failover,join,redis,scale]
//
// --quick is make bench's QUICK=1; --smoke is the few seconds
// tests/e2e/bench-cluster.test.mjs runs so that this never rots.
//
// Starts its own redis-server (AOF fsynced on every write, as
// `make cluster` and the tests run it) and relay nodes of the optimised
// build, then measures:
//
//   failover  SIGKILL of the node holding N desktops (N = 1, then 100):
//             the time until each desktop's host is welcomed again and
//             its guest has received a keyframe again (a decoder's first
//             picture), over repeated kills, the nodes taking turns;
//   join      an owner joining through the desktop's node vs through the
//             other node (redirect, then the desktop's node): the time
//             added by the redirect;
//   redis     Redis commands (INFO commandstats) per session event at
//             1,000 sessions, per second idle and while media flows (the
//             media path must issue none);
//   scale     two nodes vs one on this machine: asp-bench's latency mix
//             on one node, then split over two, the generator in two
//             processes either way.
//
// Its clients behave as docs/cluster.md says the tools do: a --relay list
// tried in turn, a redirect followed at once (at most 4 hops), and the
// tools' reconnect backoff (0.25 s, doubling up to 5 s, each delay drawn
// from its upper half; tools/common/client_relays.h) after a lost
// connection or a refusal to come back.  Each measurement is one JSON
// line appended to OUT/results.jsonl (mode "cluster-..."), which
// bench/report.mjs turns into the report and summary.json.  Every process
// started here is stopped on exit.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WebSocket = createRequire(path.join(HERE, 'peers', 'package.json'))('ws');

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const QUICK = argv.includes('--quick');
const SMOKE = argv.includes('--smoke');
// How much of each part: the full run, QUICK=1, and the smoke test's.
const SIZE = SMOKE ? { failover: [[1, 1], [10, 1]], joins: 10, sessions: 20, phaseMs: 2000, loads: [] }
  : QUICK ? { failover: [[1, 2], [100, 2]], joins: 40, sessions: 200, phaseMs: 3000, loads: [100, 200] }
    : { failover: [[1, 5], [100, 5]], joins: 200, sessions: 1000, phaseMs: 10000, loads: [100, 200, 300, 400] };
const BUILD = path.resolve(opt('build', 'build'));
const OUT = path.resolve(opt('out', 'build/bench'));
const PARTS = opt('parts', 'failover,join,redis,scale').split(',');
const RESULTS = path.join(OUT, 'results.jsonl');
const LEASE_MS = 3000; // the relay's default
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;
const FPS = 15;

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const say = (s) => console.log(`== cluster: ${s}`);

function pct(xs, p) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}
const stats = (xs) => ({ count: xs.length, p50: pct(xs, 50), p90: pct(xs, 90), p99: pct(xs, 99), max: pct(xs, 100) });
const round = (x, d = 3) => (x === null ? null : Number(x.toFixed(d)));

function record(row) {
  fs.appendFileSync(RESULTS, JSON.stringify({ time: Math.floor(Date.now() / 1000), ...row }) + '\n');
}

async function until(fn, ms, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    await delay(50);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------
// Processes.

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

// Spawns file with args, stdout and stderr appended to OUT/name.log;
// resolves once a line of its output matches ready.
async function startProc(name, file, args, ready) {
  const log = fs.openSync(path.join(OUT, `${name}.log`), 'a');
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', log] });
  children.add(child);
  let out = '';
  const exited = new Promise((r) => child.on('exit', (code, signal) => { children.delete(child); r({ code, signal }); }));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${out.slice(-500)}`)), 20000);
    child.stdout.on('data', (d) => {
      fs.writeSync(log, d);
      out += d;
      if (ready.test(out)) { clearTimeout(timer); resolve(); }
    });
    exited.then((ex) => { clearTimeout(timer); reject(new Error(`${name} exited (${ex.code}, ${ex.signal}): ${out.slice(-500)}`)); });
  });
  child.stdout.removeAllListeners('data');
  child.stdout.on('data', (d) => fs.writeSync(log, d));
  return { child, exited, pid: child.pid };
}

class Redis {
  async start() {
    this.dir = path.join(OUT, 'cluster-redis');
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true });
    this.port = await freePort();
    this.p = await startProc('cluster-redis', '/usr/bin/redis-server', ['--port', String(this.port), '--bind', '127.0.0.1',
      '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'],
    /Ready to accept connections/);
    this.url = `redis://127.0.0.1:${this.port}`;
    return this;
  }

  cli(...args) { return execFileSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }); }

  // INFO commandstats as { command: calls }, without what this script
  // itself asks (INFO, CONFIG).
  calls() {
    const out = {};
    for (const m of this.cli('INFO', 'commandstats').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (m[1] !== 'info' && m[1] !== 'config') out[m[1]] = Number(m[2]);
    }
    return out;
  }

  async stop() {
    this.p.child.kill('SIGTERM');
    await this.p.exited;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// { command: calls } after - before, and the total.
function callsDelta(before, after) {
  const d = {};
  let total = 0;
  for (const [k, v] of Object.entries(after)) {
    const x = v - (before[k] || 0);
    if (x) { d[k] = x; total += x; }
  }
  return { total, by_command: d };
}

// Requests the relays send Redis, counted from MONITOR: a line per command,
// "[DB ADDR]" for one a client sent, "[DB lua]" for one a script ran.  A
// request is what costs a round trip (pipelined or not); commandstats
// counts both kinds.  This script's own INFO and CONFIG are left out.
class RedisMonitor {
  constructor(port) {
    this.requests = 0;
    this.buf = '';
    this.sock = net.connect(port, '127.0.0.1', () => this.sock.write('MONITOR\r\n'));
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const m = line.match(/^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]*)"/);
        if (m && m[1] !== 'lua' && !/^(info|config|monitor)$/i.test(m[2])) this.requests++;
      }
    });
    this.sock.on('error', () => {});
  }

  ready() { return until(() => this.buf !== '' || this.requests > 0 || this.sock.readyState === 'open', 5000, 'MONITOR'); }

  close() { this.sock.destroy(); }
}

class Node {
  constructor(id, redis, secret) {
    this.id = id;
    this.redis = redis;
    this.data = path.join(OUT, `cluster-var-${id}`);
    fs.rmSync(this.data, { recursive: true, force: true });
    fs.mkdirSync(this.data, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(this.data, 'secret'), secret, { mode: 0o600 });
  }

  async start() {
    this.port ??= await freePort();
    this.url = `ws://127.0.0.1:${this.port}`;
    this.http = `http://127.0.0.1:${this.port}`;
    this.p = await startProc(`cluster-node-${this.id}`, path.join(BUILD, 'asp-relay'), ['--listen', `127.0.0.1:${this.port}`,
      '--data', this.data, '--redis', this.redis.url, '--node-url', this.url, '--node-id', this.id,
      '--lease-ms', String(LEASE_MS), '--max-user-conns', '0', '--max-token-desktops', '0',
      '--max-prehello-per-addr', '0'], /listening on/);
    this.pid = this.p.pid;
    return this;
  }

  async kill9() {
    this.p.child.kill('SIGKILL');
    await this.p.exited;
  }

  async stop() {
    if (this.p && this.p.child.exitCode === null && this.p.child.signalCode === null) {
      this.p.child.kill('SIGTERM');
      await this.p.exited;
    }
    fs.rmSync(this.data, { recursive: true, force: true });
  }

  async metrics() {
    const r = await fetch(`${this.http}/metrics`);
    const out = {};
    for (const line of (await r.text()).split('\n')) {
      const m = line.match(/^([a-z_]+)(?:\{[^}]*\})?\s+(\S+)$/);
      if (m) out[m[1]] = (out[m[1]] || 0) + Number(m[2]);
    }
    return out;
  }
}

class Cluster {
  constructor(n) {
    this.secret = crypto.randomBytes(32);
    this.n = n;
  }

  async start() {
    this.redis = await new Redis().start();
    this.nodes = 'ab'.slice(0, this.n).split('').map((id) => new Node(id, this.redis, this.secret));
    for (const n of this.nodes) await n.start();
    await this.api(this.nodes[0], 'PUT', '/policy/bench', { help: true, collab: true });
    return this;
  }

  byUrl(url) { return this.nodes.find((n) => n.url === url); }

  token(claims) {
    const t = Math.floor(Date.now() / 1000);
    const first = Buffer.from(JSON.stringify({ r: 'user', ...claims, exp: t + 3600, iat: t })).toString('base64url');
    return `${first}.${crypto.createHmac('sha256', this.secret).update(first).digest('base64url')}`;
  }

  async api(node, method, p, body) {
    const r = await fetch(`${node.http}/api${p}`, { method, body: body && JSON.stringify(body),
      headers: { authorization: `Bearer ${this.token({ u: 'bench-admin', r: 'admin' })}`, 'content-type': 'application/json' } });
    if (r.status >= 300) throw new Error(`${method} ${p} on ${node.id}: ${r.status} ${await r.text()}`);
    return r.json();
  }

  async stop() {
    for (const n of this.nodes) await n.stop();
    await this.redis.stop();
  }
}

// ---------------------------------------------------------------------------
// Media: real H.264 access units (libx264 through ffmpeg, a keyframe with
// its SPS/PPS every second), sent as the protocol's video messages.

function encodeClip() {
  const file = path.join(OUT, 'cluster-clip.h264');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=320x180:rate=${FPS}`, '-t', '2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(FPS), '-keyint_min', String(FPS),
    '-bf', '0', '-x264-params', 'aud=1:repeat-headers=1', '-f', 'h264', file]);
  const b = fs.readFileSync(file);
  const starts = [];
  for (let i = 0; i + 4 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 0 && b[i + 3] === 1 && (b[i + 4] & 0x1f) === 9) starts.push(i);
  }
  return starts.map((s, k) => {
    const au = b.subarray(s, starts[k + 1] ?? b.length);
    let idr = false;
    for (let i = 0; i + 3 < au.length; i++) if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && (au[i + 3] & 0x1f) === 5) idr = true;
    return { au, idr };
  });
}

// A media message (docs/protocol.md): 32-byte header, then the payload.
function videoMsg(seq, { au, idr }) {
  const h = Buffer.alloc(32);
  h[0] = 0xa5; h[1] = 1; h[2] = 1; h[3] = idr ? 3 : 0; h[4] = 1;
  h.writeUInt32BE(seq >>> 0, 8);
  h.writeUInt32BE(au.length, 12);
  h.writeBigUInt64BE(BigInt(seq) * 66666n, 16);
  h.writeBigUInt64BE(BigInt(Date.now()) * 1000n, 24);
  return Buffer.concat([h, au]);
}

// ---------------------------------------------------------------------------
// Clients as the tools behave in a cluster.

class Peer {
  // side: 'host' or 'view'; list: relay URLs; hello: the hello's fields;
  // join: the join's (viewers).
  constructor(cl, { side, list, hello, join, label }) {
    Object.assign(this, { cl, side, list, hello, join, label });
    this.at = 0;
    this.backoff = BACKOFF_FIRST_MS;
    this.ws = null;
    this.ready = false;       // welcomed (host) or joined (viewer)
    this.readyAt = null;      // performance.now() of that
    this.keyAt = null;        // a viewer: first keyframe on this connection
    this.stopped = false;
    this.onReady = null;
    this.onMessage = null;
    this.hops = 0;
    this.events = [];
  }

  start() { this.connect(this.list[this.at]); }

  connect(url) {
    if (this.stopped) return;
    this.trace?.push([Math.round(now()), this.cl.byUrl(url)?.id ?? url]);
    this.url = url;
    this.ready = false;
    this.keyAt = null;
    const ws = new WebSocket(`${url}/${this.side}`, this.side === 'host' ? 'asp.host.v1' : 'asp.view.v1', { perMessageDeflate: false });
    this.ws = ws;
    let redirected = null;
    let opened = false;
    ws.on('open', () => { opened = true; ws.send(JSON.stringify({ type: 'hello', ...this.hello })); });
    ws.on('message', (data, binary) => {
      if (binary) {
        if (this.keyAt === null && data[2] === 1 && (data[3] & 1)) this.keyAt = now();
        this.onMessage?.(data);
        return;
      }
      const m = JSON.parse(data.toString());
      if (m.type === 'welcome' && this.side === 'view') ws.send(JSON.stringify({ type: 'join', ...this.join }));
      else if ((m.type === 'welcome' && this.side === 'host') || m.type === 'joined') this.welcomed(m);
      else if (m.type === 'error' && m.code === 'redirect') redirected = m.url;
      else if (m.type === 'error') this.events.push(`${m.code}@${this.cl.byUrl(url)?.id}`);
      if (m.type === 'error') this.trace?.push([Math.round(now()), m.code]);
      else if (m.type === 'code') this.code = m.code;
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.ws !== ws || this.stopped) return;
      this.ready = false;
      if (redirected && this.hops < 4) {
        this.hops++;
        this.connect(redirected);
        return;
      }
      // Lost, refused or too many hops: the next relay of the list, after
      // the backoff.  A node a redirect named that cannot be reached (one
      // that just died) costs only the first delay, as in the tools.
      const deadTarget = this.hops > 0 && !opened;
      this.hops = 0;
      this.at = (this.at + 1) % this.list.length;
      // The tools draw each delay from the upper half of the backoff, so
      // that clients lost together do not come back in lockstep.
      const span = deadTarget ? BACKOFF_FIRST_MS : this.backoff;
      const wait = span / 2 + Math.random() * (span / 2);
      if (!deadTarget) this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      setTimeout(() => this.connect(this.list[this.at]), wait);
    });
  }

  welcomed(m) {
    this.ready = true;
    this.readyAt = now();
    this.backoff = BACKOFF_FIRST_MS;
    this.hops = 0;
    this.node = this.cl.byUrl(this.url);
    if (m.owner_key) this.ownerKey = m.owner_key;
    this.onReady?.(m);
  }

  send(buf) { if (this.ready && this.ws.readyState === 1) this.ws.send(buf); }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.terminate();
  }
}

function hostPeer(cl, desktop, list) {
  return new Peer(cl, { side: 'host', list, label: desktop,
    hello: { os: 'windows', image: 'system', asp_version: '1.1.0', desktop, token: cl.token({ u: 'bench', d: desktop }) } });
}

function viewPeer(cl, list, join, label) {
  return new Peer(cl, { side: 'view', list, join, label,
    hello: { client: 'web', client_version: '1.0', token: cl.token({ u: 'bench' }) } });
}

// Sends the clip on every ready host at FPS, each from its own place in
// it; returns a stop function and the count sent.
function pump(hosts, clip, fps = FPS) {
  const state = { sent: 0 };
  let seq = 0;
  const timer = setInterval(() => {
    seq++;
    for (const [i, h] of hosts.entries()) {
      if (!h.ready) continue;
      // A host back from a failover starts at a keyframe, as an encoder
      // asked for one would.
      if (h.restart !== h.readyAt) { h.restart = h.readyAt; h.pos = 0; h.seq ??= i; }
      h.send(videoMsg(h.seq++, clip[h.pos++ % clip.length]));
      state.sent++;
    }
  }, 1000 / fps);
  state.stop = () => clearInterval(timer);
  return state;
}

// Connects many peers, at most `width` handshakes at once.
async function startAll(peers, width, ms, what) {
  let next = 0;
  const waitOne = async () => {
    while (next < peers.length) {
      const p = peers[next++];
      p.start();
      await until(() => p.ready, ms, `${what}: ${p.label} not ready (${p.events.join(' ')})`);
    }
  };
  await Promise.all(Array.from({ length: width }, waitOne));
}

// ---------------------------------------------------------------------------
// Failover.

async function failover(n, kills, clip) {
  say(`failover: ${n} desktop(s), ${kills} kills of the node holding them`);
  const cl = await new Cluster(2).start();
  const [a, b] = cl.nodes;
  try {
    const hosts = Array.from({ length: n }, (_, i) => hostPeer(cl, `fo${n}-${i}`, [a.url, b.url]));
    const media = pump(hosts, clip);
    await startAll(hosts, 32, 20000, 'hosts');
    for (const h of hosts) h.ws.send(JSON.stringify({ type: 'share' }));
    await until(() => hosts.every((h) => h.code), 20000, 'codes');
    const guests = hosts.map((h) => viewPeer(cl, [b.url, a.url], { code: h.code }, `guest ${h.label}`));
    await startAll(guests, 32, 20000, 'guests');
    await until(() => guests.every((g) => g.keyAt !== null), 20000, 'guests decoding');
    // Guest 0 keeps what it receives after each kill, for ffmpeg to decode.
    let keep = null;
    guests[0].onMessage = (d) => { if (keep && d[2] === 1 && (keep.length || (d[3] & 1))) keep.push(d.subarray(32)); };

    for (let k = 0; k < kills; k++) {
      const holder = hosts[0].node;
      const other = cl.nodes.find((x) => x !== holder);
      await delay(LEASE_MS / 2); // leases freshly renewed or not: kills land anywhere in the period
      keep = [];
      for (const p of [...hosts, ...guests]) p.trace = [];
      const t0 = now();
      await holder.kill9();
      const done = () => hosts.every((h) => h.readyAt > t0 && h.node === other) &&
        guests.every((g) => g.readyAt > t0 && g.keyAt !== null && g.keyAt > t0);
      let timedOut = false;
      await until(done, 30000, 'failover').catch(() => { timedOut = true; });
      await delay(1000); // a second of guest 0's stream for ffmpeg
      const hostMs = hosts.map((h) => (h.readyAt > t0 ? h.readyAt - t0 : null));
      const guestMs = guests.map((g) => (g.keyAt !== null && g.keyAt > t0 ? g.keyAt - t0 : null));
      const per = hosts.map((_, i) => (hostMs[i] === null || guestMs[i] === null ? null : Math.max(hostMs[i], guestMs[i])));
      const decoded = decodes(keep, `failover-${n}-${k}`);
      // What the slowest desktop's clients did after the kill (ms since
      // the kill: the node tried, or the refusal it gave).
      const worst = per.indexOf(Math.max(...per.filter((x) => x !== null)));
      const rel = (tr) => tr.map(([t, what]) => `${t - Math.round(t0)}:${what}`).join(' ');
      const slowest = worst < 0 ? null : { desktop: hosts[worst].label, host: rel(hosts[worst].trace), guest: rel(guests[worst].trace) };
      keep = null;
      const row = { mode: 'cluster-failover', desktops: n, kill: k, killed: holder.id, lease_ms: LEASE_MS,
        back: per.filter((x) => x !== null).length, timed_out: timedOut,
        all_back_ms: per.includes(null) ? null : round(Math.max(...per), 1),
        failover_ms: stats(per.filter((x) => x !== null)), host_ms: stats(hostMs.filter((x) => x !== null)),
        guest_ms: stats(guestMs.filter((x) => x !== null)), samples_ms: per.map((x) => (x === null ? null : round(x, 1))),
        decoded_frames: decoded.frames, decode_errors: decoded.errors, slowest };
      record(row);
      say(`  kill ${k + 1}: node ${holder.id}, ${row.back}/${n} back, all in ${row.all_back_ms} ms ` +
        `(p50 ${round(row.failover_ms.p50, 0)}, p99 ${round(row.failover_ms.p99, 0)}); guest 0 decoded ${decoded.frames} frames, ${decoded.errors} errors`);
      await holder.start();
      await until(async () => (await holder.metrics()).asp_cluster_redis_up === 1, 10000, `${holder.id} back in the cluster`);
    }
    media.stop();
    for (const p of [...guests, ...hosts]) p.stop();
  } finally {
    await cl.stop();
  }
}

// ffmpeg decodes what a guest received from its first keyframe on: the
// frames it decoded and the errors it reported.
function decodes(payloads, name) {
  if (!payloads?.length) return { frames: 0, errors: null };
  const file = path.join(OUT, `cluster-${name}.h264`);
  fs.writeFileSync(file, Buffer.concat(payloads));
  try {
    const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'h264', '-i', file, '-f', 'framemd5', '-'], { encoding: 'utf8' });
    const errors = r.status === 0 ? r.stderr.split('\n').filter(Boolean).length : Math.max(1, r.stderr.split('\n').filter(Boolean).length);
    return { frames: r.stdout.split('\n').filter((l) => /^\d/.test(l)).length, errors };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------------------
// Join through a redirect vs direct.

async function joinTimes(rounds, clip) {
  say(`join: ${rounds} owner joins direct and ${rounds} through a redirect, alternating`);
  const cl = await new Cluster(2).start();
  const [a, b] = cl.nodes;
  try {
    const host = hostPeer(cl, 'join-0', [a.url]);
    const media = pump([host], clip);
    await startAll([host], 1, 10000, 'host');
    const times = { direct: [], redirect: [] };
    const toKey = { direct: [], redirect: [] };
    for (let r = 0; r < rounds * 2; r++) {
      const how = r % 2 ? 'redirect' : 'direct';
      const v = viewPeer(cl, [how === 'direct' ? a.url : b.url], { owner_key: host.ownerKey }, `owner ${r}`);
      const t0 = now();
      v.start();
      await until(() => v.ready, 10000, `${how} join`);
      if (v.node !== a) throw new Error(`${how} join ended on ${v.node?.id}`);
      times[how].push(v.readyAt - t0);
      await until(() => v.keyAt !== null, 10000, `${how} join: no keyframe`);
      toKey[how].push(v.keyAt - t0);
      await new Promise((res) => { v.ws.once('close', res); v.stopped = true; v.ws.close(1000); });
    }
    media.stop();
    host.stop();
    for (const how of ['direct', 'redirect']) {
      record({ mode: 'cluster-join', path: how, joins: times[how].length,
        joined_ms: stats(times[how]), first_keyframe_ms: stats(toKey[how]) });
    }
    const d = stats(times.direct), rd = stats(times.redirect);
    say(`  joined: direct p50 ${round(d.p50)} p99 ${round(d.p99)} ms; redirect p50 ${round(rd.p50)} p99 ${round(rd.p99)} ms`);
  } finally {
    await cl.stop();
  }
}

// ---------------------------------------------------------------------------
// Redis operations at 1,000 sessions.

async function redisOps(n, clip) {
  say(`redis: commands per session event and per second at ${n} sessions`);
  const cl = await new Cluster(2).start();
  const [a, b] = cl.nodes;
  const rows = [];
  try {
    // One window per phase: commands (INFO commandstats, which counts the
    // commands a script runs too), requests (MONITOR) and node a's lease
    // renewals, all read at its start and at its end.
    const mon = new RedisMonitor(cl.redis.port);
    await mon.ready();
    await delay(200);
    const phase = async (name, events, fn) => {
      const before = cl.redis.calls();
      const r0 = mon.requests;
      const m0 = await a.metrics();
      const t0 = now();
      await fn();
      const secs = (now() - t0) / 1000;
      const m1 = await a.metrics();
      const after = cl.redis.calls();
      const d = callsDelta(before, after);
      const row = { mode: 'cluster-redis', phase: name, sessions: n, events, seconds: round(secs, 2), calls: d.total,
        requests: mon.requests - r0, per_event: events ? round(d.total / events, 2) : null, per_s: round(d.total / secs, 1),
        requests_per_s: round((mon.requests - r0) / secs, 1), by_command: d.by_command,
        renewals: (m1.asp_cluster_lease_renewals_total ?? 0) - (m0.asp_cluster_lease_renewals_total ?? 0) };
      rows.push(row);
      say(`  ${name}: ${d.total} commands, ${row.requests} requests, ${row.per_s} commands/s, ${row.renewals} lease renewals`);
      return row;
    };
    const hosts = Array.from({ length: n }, (_, i) => hostPeer(cl, `ops-${i}`, [a.url]));
    await phase('host_hello', n, () => startAll(hosts, 64, 30000, 'hosts'));
    const owners = hosts.map((h) => viewPeer(cl, [a.url], { owner_key: h.ownerKey }, `owner ${h.label}`));
    await phase('owner_join', n, () => startAll(owners, 64, 30000, 'owners'));
    await phase('share', n, async () => {
      for (const h of hosts) h.ws.send(JSON.stringify({ type: 'share' }));
      await until(() => hosts.every((h) => h.code), 30000,
        () => `codes: ${hosts.filter((h) => !h.code).length} hosts without one, e.g. ${hosts.find((h) => !h.code)?.events.join(' ')}`);
    });
    const guests = hosts.map((h) => viewPeer(cl, [b.url], { code: h.code }, `guest ${h.label}`));
    await phase('guest_join_redirected', n, () => startAll(guests, 64, 30000, 'guests'));
    const idle = await phase('idle', 0, () => delay(SIZE.phaseMs));
    let received = 0;
    for (const v of [...owners, ...guests]) v.onMessage = () => { received++; };
    // Media at 5 fps per session: the relay forwards 2 x 5 x n messages a
    // second while the renewals go on as before.
    const media = pump(hosts, clip, 5);
    await delay(1000);
    received = 0;
    const sentBefore = media.sent;
    const flowing = await phase('media', 0, () => delay(SIZE.phaseMs));
    const forwarded = received;
    const sent = media.sent - sentBefore;
    media.stop();
    await phase('leave', n, async () => {
      for (const p of [...guests, ...owners, ...hosts]) p.stop();
      await until(async () => (await a.metrics()).asp_cluster_desktops === 0, 30000, 'desktops released');
    });
    // What media added.  Renewals come in rounds (every third of the
    // lease), so two windows of the same length hold a round more or less:
    // a renewal's commands (the idle window's per renewal) are taken out of
    // both, and what is left (pings, the node key, the store's timers)
    // compared per second.  A command per message would leave about
    // 1,000 per 1,000 messages; nothing on the media path leaves about 0.
    const perRenewal = idle.renewals ? Math.round(['eval', 'evalsha', 'get', 'pexpire']
      .reduce((x, k) => x + (idle.by_command[k] || 0), 0) / idle.renewals) : 0;
    const rest = (r) => r.calls - perRenewal * r.renewals;
    const extra = rest(flowing) - (rest(idle) * flowing.seconds) / idle.seconds;
    record({ mode: 'cluster-redis-media', sessions: n, media_msgs_sent: sent, media_msgs_forwarded: forwarded,
      idle_calls_per_s: idle.per_s, media_calls_per_s: flowing.per_s, commands_per_renewal: perRenewal,
      idle_other_per_s: round(rest(idle) / idle.seconds, 1), media_other_per_s: round(rest(flowing) / flowing.seconds, 1),
      calls: flowing.calls, extra_calls: round(extra, 1),
      extra_calls_per_1000_msgs: forwarded ? round((1000 * Math.max(0, extra)) / forwarded, 4) : null });
    say(`  media: ${forwarded} messages forwarded; besides renewals (${perRenewal} commands each) ` +
      `${round(rest(flowing) / flowing.seconds, 1)} commands/s flowing vs ${round(rest(idle) / idle.seconds, 1)}/s idle`);
    // Per event, net of what went on meanwhile anyway: the lease renewals
    // the window saw (each costs what one costs idle) and the rest of the
    // idle background per second.
    const reqPerRenewal = idle.renewals ? Math.round(idle.requests / idle.renewals) : 0;
    const reqRest = idle.requests - reqPerRenewal * idle.renewals;
    for (const r of rows) {
      if (r.events) {
        r.commands_per_event = round((r.calls - perRenewal * r.renewals - (rest(idle) * r.seconds) / idle.seconds) / r.events, 2);
        r.requests_per_event = round((r.requests - reqPerRenewal * r.renewals - (reqRest * r.seconds) / idle.seconds) / r.events, 2);
        say(`  ${r.phase}: ${r.commands_per_event} commands and ${r.requests_per_event} requests per event, net`);
      }
      record(r);
    }
    mon.close();
  } finally {
    await cl.stop();
  }
}

// ---------------------------------------------------------------------------
// Two nodes vs one, with asp-bench's latency mix.

function aspBench(node, label, sessions, procs, out) {
  return new Promise((resolve) => {
    const args = ['--target', 'relay', '--port', String(node.port), '--pid', String(node.pid), '--data', node.data,
      '--mode', 'latency', '--sessions', String(sessions), '--fps', '30', '--size', '40K',
      '--seconds', QUICK ? '1' : '3', '--warmup', '1', '--procs', String(procs), '--label', label, '--out', out];
    const child = spawn(path.join(BUILD, 'asp-bench'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      fs.appendFileSync(path.join(OUT, 'cluster-asp-bench.log'), `== ${label} ${sessions} on ${node.id}: exit ${code ?? signal}\n${err}`);
      resolve({ code, err });
    });
  });
}

async function scale(loads) {
  say(`scale: one node vs two at ${loads.join(', ')} sessions x 30 fps x 40 KiB, the generator in 2 processes`);
  const cl = await new Cluster(2).start();
  const [a, b] = cl.nodes;
  const tmp = path.join(OUT, 'cluster-scale.jsonl');
  fs.rmSync(tmp, { force: true });
  const last = () => fs.readFileSync(tmp, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  try {
    for (const s of loads) {
      let n0 = fs.existsSync(tmp) ? last().length : 0;
      const e1 = [await aspBench(a, 'cluster-one', s, 2, tmp)];
      const one = last().slice(n0);
      n0 += one.length;
      const e2 = await Promise.all([aspBench(a, 'cluster-two', s / 2, 1, tmp), aspBench(b, 'cluster-two', s / 2, 1, tmp)]);
      const two = last().slice(n0);
      // asp-bench's last words when a run wrote no line.
      const why = (es) => es.filter((e) => e.code !== 0).map((e) => `exit ${e.code}: ${e.err.trim().split('\n').slice(-2).join(' / ')}`).join('; ');
      const row = (nodes, rs, es) => {
        const offered = s * 30 * (rs[0]?.seconds ?? 0);
        const received = rs.reduce((x, r) => x + r.received, 0);
        return { mode: 'cluster-scale', nodes, sessions: s, runs: rs.length, ok: rs.length === nodes && rs.every((r) => r.ok),
          delivered: offered ? round(received / offered, 4) : null,
          p50_ms: rs.length ? round(Math.max(...rs.map((r) => r.lat_us.p50)) / 1000) : null,
          p99_ms: rs.length ? round(Math.max(...rs.map((r) => r.lat_us.p99)) / 1000) : null,
          node_cpu_pct: rs.map((r) => r.peer_cpu_pct), gen_cpu_pct: round(rs.reduce((x, r) => x + r.gen_cpu_pct, 0), 1),
          msgs_per_s: round(rs.reduce((x, r) => x + r.msgs_per_s, 0), 1), why: why(es) || rs.map((r) => r.why).filter(Boolean).join('; ') };
      };
      const r1 = row(1, one, e1), r2 = row(2, two, e2);
      record(r1);
      record(r2);
      say(`  ${s} sessions: one node delivered ${r1.delivered} p99 ${r1.p99_ms} ms CPU ${r1.node_cpu_pct}; ` +
        `two nodes delivered ${r2.delivered} p99 ${r2.p99_ms} ms CPU ${r2.node_cpu_pct}`);
    }
  } finally {
    await cl.stop();
  }
}

// ---------------------------------------------------------------------------

// A part that fails is recorded (mode cluster-error, with its error) and
// the next part runs anyway; the exit status says something failed.
async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const clip = encodeClip();
  const parts = [];
  if (PARTS.includes('failover')) for (const [n, kills] of SIZE.failover) parts.push([`failover-${n}`, () => failover(n, kills, clip)]);
  if (PARTS.includes('join')) parts.push(['join', () => joinTimes(SIZE.joins, clip)]);
  if (PARTS.includes('redis')) parts.push(['redis', () => redisOps(SIZE.sessions, clip)]);
  if (PARTS.includes('scale') && SIZE.loads.length) parts.push(['scale', () => scale(SIZE.loads)]);
  let failed = 0;
  for (const [name, run] of parts) {
    try {
      await run();
    } catch (e) {
      failed++;
      record({ mode: 'cluster-error', part: name, error: String(e.message).slice(0, 1000) });
      console.error(`bench/cluster.mjs: ${name}: ${e.stack || e.message}`);
      say(`  ${name} failed: ${String(e.message).split('\n')[0]}`);
    }
  }
  return failed;
}

main().then((failed) => process.exit(failed ? 1 : 0), (e) => {
  console.error(`bench/cluster.mjs: ${e.stack || e.message}`);
  process.exit(1);
});
