// make bench's cluster part never rots: bench/cluster.mjs --smoke runs each
// of its measurements for a few seconds against the sanitizer build (its
// own redis-server and two nodes): a failover of 1 and of 10 desktops, joins
// direct and through a redirect, and the Redis commands per session event.
// What it measured must say the cluster worked: every desktop back after
// the kill with its guest decoding (ffmpeg found no error), every join
// done, and media adding no Redis command.  How fast is bench/'s business,
// not this test's.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { BUILD, ROOT, within } from './lib.mjs';

const PEERS = path.join(ROOT, 'bench', 'peers');
before(() => {
  if (!fs.existsSync(path.join(PEERS, 'node_modules', 'ws'))) {
    execFileSync('npm', ['ci', '--prefix', PEERS, '--no-audit', '--no-fund'], { stdio: 'pipe', timeout: 300000 });
  }
});

test('bench/cluster.mjs --smoke: failover brings every desktop back decoding, redirected joins land on the desktop\'s node, media issues no Redis command', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-bench-cluster-'));
  try {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'cluster.mjs'), '--build', BUILD, '--out', out, '--smoke',
      '--parts', 'failover,join,redis'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.stderr.on('data', (d) => { text += d; });
    const code = await within(new Promise((r) => child.on('exit', r)), 150000, () => `bench/cluster.mjs --smoke did not finish:\n${text}`)
      .catch((e) => { child.kill('SIGKILL'); throw e; });
    assert.equal(code, 0, `bench/cluster.mjs --smoke exited ${code}:\n${text}`);
    const rows = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const logs = fs.readdirSync(out).filter((f) => /^cluster-node-.*\.log$/.test(f))
      .map((f) => fs.readFileSync(path.join(out, f), 'utf8')).join('\n');
    assert.ok(!/AddressSanitizer|LeakSanitizer|runtime error/.test(logs), `a node printed a sanitizer report:\n${logs.slice(-4000)}`);

    const fo = rows.filter((r) => r.mode === 'cluster-failover');
    assert.deepEqual(fo.map((r) => r.desktops), [1, 10], `failover rows: ${JSON.stringify(fo)}\n${text}`);
    for (const r of fo) {
      assert.equal(r.back, r.desktops, `${r.back} of ${r.desktops} desktops came back after the kill of ${r.killed}\n${text}`);
      assert.ok(r.all_back_ms > 0, JSON.stringify(r));
      assert.ok(r.decoded_frames > 0, `guest 0 decoded no frame after the kill: ${JSON.stringify(r)}`);
      assert.equal(r.decode_errors, 0, `ffmpeg reported errors in guest 0's stream after the kill: ${JSON.stringify(r)}`);
    }

    const joins = Object.fromEntries(rows.filter((r) => r.mode === 'cluster-join').map((r) => [r.path, r]));
    for (const how of ['direct', 'redirect']) {
      assert.equal(joins[how]?.joins, 10, `${how} joins: ${JSON.stringify(joins[how])}`);
      assert.ok(joins[how].joined_ms.p50 > 0 && joins[how].first_keyframe_ms.p50 >= joins[how].joined_ms.p50, JSON.stringify(joins[how]));
    }

    const phases = Object.fromEntries(rows.filter((r) => r.mode === 'cluster-redis').map((r) => [r.phase, r]));
    for (const p of ['host_hello', 'owner_join', 'share', 'guest_join_redirected', 'idle', 'media', 'leave']) {
      assert.ok(phases[p], `no Redis row for ${p}: ${JSON.stringify(Object.keys(phases))}`);
    }
    // A host's hello takes its lease and lists its desktop; leaving gives
    // both back: each writes to Redis.
    assert.ok(phases.host_hello.per_event >= 1, JSON.stringify(phases.host_hello));
    assert.ok(phases.leave.per_event >= 1, JSON.stringify(phases.leave));
    assert.ok(phases.idle.renewals > 0, `no lease renewal while idle: ${JSON.stringify(phases.idle)}`);
    const media = rows.find((r) => r.mode === 'cluster-redis-media');
    assert.ok(media?.media_msgs_forwarded > 0, JSON.stringify(media));
    assert.ok(media.extra_calls_per_1000_msgs <= 1, `media added Redis commands: ${JSON.stringify(media)}`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
