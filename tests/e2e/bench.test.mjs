// The benchmark never rots: a few seconds of the real generator
// (asp-bench) against a real relay and against itself, asserting it ran,
// moved media, and wrote one well-formed JSON line per measurement
// (bench/README.md, "Output").

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { bin, withRelay, within } from './lib.mjs';

const HIST_KEYS = ['count', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'];

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
