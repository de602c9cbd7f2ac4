// The benchmark never rots: a few seconds of the real generator
// (asp-bench) against a real relay, against the uWebSockets.js peer
// (bench/peers/uws-relay.mjs, plain and over TLS) and against itself,
// asserting it ran, moved media, and wrote one well-formed JSON line per
// measurement (bench/README.md, "Output").

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bin, Proc, ROOT, selfSignedCert, withRelay, within } from './lib.mjs';

const HIST_KEYS = ['count', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'];
const PEERS = path.join(ROOT, 'bench', 'peers');
const cert = selfSignedCert();
after(() => fs.rmSync(cert.dir, { recursive: true, force: true }));

// The peers' npm packages (pinned by bench/peers/package-lock.json), as
// `make bench` installs them.
before(() => {
  if (!fs.existsSync(path.join(PEERS, 'node_modules', '@trufflesuite', 'uws-js-unofficial'))) {
    execFileSync('npm', ['ci', '--prefix', PEERS, '--no-audit', '--no-fund'], { stdio: 'pipe', timeout: 300000 });
  }
});

// Runs body(peer, port) with the uWebSockets.js relay peer started with
// args, and stops it after.
async function withUws(args, body) {
  const peer = new Proc('uws-relay', process.execPath, [path.join(PEERS, 'uws-relay.mjs'), ...args]);
  try {
    const [, port] = await peer.waitForLine(/^listening on wss?:\/\/127\.0\.0\.1:(\d+)$/);
    await body(peer, port);
  } finally {
    await peer.stop();
  }
}

// Runs asp-bench with args plus --out FILE; resolves with { code, stdout,
// stderr, lines } where lines are the parsed JSON lines.
async function runBench(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-bench-'));
  const out = path.join(dir, 'results.jsonl');
  const child = spawn(bin('asp-bench'), [...args, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await within(new Promise((r) => child.on('exit', r)), 30000,
    () => `asp-bench ${args.join(' ')} did not exit\n${stdout}\n${stderr}`);
  const text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  fs.rmSync(dir, { recursive: true, force: true });
  const shown = `asp-bench ${args.join(' ')}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}\n--- json ---\n${text}`;
  const lines = text.split('\n').filter(Boolean).map((l, i) => {
    try { return JSON.parse(l); } catch (e) { assert.fail(`line ${i + 1} is not JSON (${e.message})\n${shown}`); }
    return null;
  });
  return { code, stdout, stderr, lines, shown };
}

function assertHist(h, what, shown) {
  assert.ok(h && typeof h === 'object', `${what} missing\n${shown}`);
  for (const k of HIST_KEYS) assert.equal(typeof h[k], 'number', `${what}.${k} should be a number\n${shown}`);
  assert.ok(h.count > 0, `${what} has no samples\n${shown}`);
  assert.ok(h.p50 <= h.p99 && h.p99 <= h.p999 && h.p999 <= h.max, `${what} percentiles out of order\n${shown}`);
}

function assertMeasurement(r, { mode, target }) {
  assert.equal(r.code, 0, `exit code ${r.code}\n${r.shown}`);
  assert.equal(r.lines.length, 1, `want one JSON line\n${r.shown}`);
  const m = r.lines[0];
  assert.equal(m.mode, mode, r.shown);
  assert.equal(m.target, target, r.shown);
  assert.equal(m.ok, true, `measurement not ok: ${m.why}\n${r.shown}`);
  assert.equal(m.failed, 0, r.shown);
  assert.ok(m.received > 0 && m.msgs_per_s > 0 && m.bytes_per_s > 0, `no media moved\n${r.shown}`);
  assertHist(m.lat_us, 'lat_us', r.shown);
  // The human table: a header and the measurement's row.
  assert.match(r.stdout, /^mode\s+phase\s+target/m, r.shown);
  assert.match(r.stdout, new RegExp(`^${mode}\\s+\\S+\\s+${target}\\s`, 'm'), r.shown);
  return m;
}

test('asp-bench throughput through the relay moves media, counts copies from /metrics and samples the relay', () => withRelay(async (relay) => {
  const r = await runBench(['--mode', 'throughput', '--target', 'relay', '--port', String(relay.port),
    '--data', relay.data, '--pid', String(relay.pid), '--size', '16K', '--seconds', '1', '--warmup', '0.2']);
  const m = assertMeasurement(r, { mode: 'throughput', target: 'relay' });
  assert.equal(m.missing, 0, `every message sent should arrive\n${r.shown}`);
  assert.ok(m.forwarded_bytes > 0 && m.copies_per_byte > 0, `copies from /metrics\n${r.shown}`);
  assert.ok(m.peer_rss_kib > 0, `relay RSS from /proc\n${r.shown}`);
}));

test('asp-bench latency mode with owner and guest on the relay records media and input latency', () => withRelay(async (relay) => {
  const r = await runBench(['--mode', 'latency', '--target', 'relay', '--port', String(relay.port), '--data', relay.data,
    '--sessions', '4', '--viewers', '2', '--fps', '30', '--size', '8K', '--seconds', '1', '--warmup', '0.3']);
  const m = assertMeasurement(r, { mode: 'latency', target: 'relay' });
  assert.equal(m.sessions, 4, r.shown);
  assertHist(m.input_lat_us, 'input_lat_us', r.shown);
}));

test('asp-bench join mode measures joins with and without a cached keyframe', () => withRelay(async (relay) => {
  const r = await runBench(['--mode', 'join', '--target', 'relay', '--port', String(relay.port), '--data', relay.data,
    '--sessions', '4', '--warmup', '0.5']);
  assert.equal(r.code, 0, r.shown);
  const m = r.lines[0];
  assert.equal(m?.ok, true, r.shown);
  assert.equal(m.join_cached_us.count, 2, r.shown);
  assert.equal(m.join_uncached_us.count, 2, r.shown);
}));

test('asp-bench against the uWebSockets.js peer: throughput, and latency with the generator split over two processes', () => withUws([], async (peer, port) => {
  const tp = await runBench(['--mode', 'throughput', '--target', 'uws', '--port', port, '--pid', String(peer.pid),
    '--size', '64K', '--seconds', '0.5', '--warmup', '0.2']);
  const t = assertMeasurement(tp, { mode: 'throughput', target: 'uws' });
  assert.equal(t.missing, 0, `every message sent should arrive\n${tp.shown}`);
  assert.ok(t.peer_rss_kib > 0 && t.peer_cpu_us_per_msg > 0, `the peer sampled from /proc\n${tp.shown}`);

  const lat = await runBench(['--mode', 'latency', '--target', 'uws', '--port', port, '--pid', String(peer.pid),
    '--sessions', '6', '--viewers', '2', '--procs', '2', '--size', '8K', '--seconds', '1', '--warmup', '0.3']);
  const l = assertMeasurement(lat, { mode: 'latency', target: 'uws' });
  assert.equal(l.procs, 2, lat.shown);
  assert.equal(l.sessions, 6, lat.shown);
  // Both processes' sessions count: 6 sessions x 2 viewers x 30 fps.
  assert.ok(l.received > 6 * 2 * 30 * 0.5, `both generators' viewers received\n${lat.shown}`);
  assert.equal(l.gaps, 0, lat.shown);
  assertHist(l.input_lat_us, 'input_lat_us', lat.shown);
}));

test('asp-bench against the uWebSockets.js SSLApp peer carries back-to-back large messages over TLS', () =>
  withUws(['--tls-cert', cert.cert, '--tls-key', cert.key], async (peer, port) => {
    const r = await runBench(['--mode', 'throughput', '--target', 'uws', '--tls', '--port', port, '--pid', String(peer.pid),
      '--size', '256K', '--seconds', '0.5', '--warmup', '0.2']);
    const m = assertMeasurement(r, { mode: 'throughput', target: 'uws' });
    assert.equal(m.tls, true, r.shown);
    assert.equal(m.missing, 0, `every message sent should arrive\n${r.shown}`);
  }));

test('asp-bench direct target: the generator is its own viewer, no relay', async () => {
  const r = await runBench(['--mode', 'throughput', '--target', 'direct', '--size', '1K', '--seconds', '0.5', '--warmup', '0.1']);
  assertMeasurement(r, { mode: 'throughput', target: 'direct' });
});

test('asp-bench refuses a relay target without a port, with usage on stderr', async () => {
  const r = await runBench(['--mode', 'latency', '--target', 'relay']);
  assert.equal(r.code, 1, r.shown);
  assert.match(r.stderr, /--port is needed/, r.shown);
  assert.equal(r.lines.length, 0, r.shown);
});

test('asp-bench refuses --procs for a mode it cannot split', async () => {
  const r = await runBench(['--mode', 'join', '--target', 'direct', '--procs', '2']);
  assert.equal(r.code, 1, r.shown);
  assert.match(r.stderr, /--procs splits throughput, latency and scale runs only/, r.shown);
});
