// Churn and soak (issue 13): one real asp-relay, for a set time, under a
// steady churn of hosts, owners and guests (Node WebSocket clients, plus
// the real asp-host and asp-view tools): connecting, sharing, joining,
// being refused as a second guest, going slow and coming back, dropping
// in the middle of a message, discarding and re-sharing codes, asking for
// assistance and ending it.  Every product rule the churn touches is
// asserted as it goes.  Every SAMPLE_S the relay's RSS, open descriptors
// and relay.db / relay.db-wal sizes are sampled; after the warm-up they
// must stay within the bounds below, and the relay must exit cleanly
// with no sanitizer report.
//
//   node tests/soak/soak.mjs --seconds N [--build build/san]
//
// `make soak` runs it for SOAK_MINUTES (default 30); a 75-second run is
// part of `make test` (tests/e2e/soak.test.mjs).  Prints one line per
// sample and a summary; exits non-zero on any failure.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Bounds, after the warm-up (the first quarter of the run, at least 15 s):
export const BOUNDS = {
  rssGrowthMB: 40,     // RSS above the warm-up's peak (ASan's quarantine is capped below)
  fdSlack: 8,          // descriptors at the end above those at the start
  walMB: 5,            // relay.db-wal: 1000 pages auto-checkpoint, 4 KiB each
  dbBytesPerRow: 512,  // relay.db growth per audit or assistance row kept
};
const SAMPLE_S = 5;
const WORKERS = 3;
const ROUND_MS = 1500; // each worker's round takes at least this: a steady rate
const BUSY_MESSAGE = 'The user is in a collaboration and cannot establish a session with you. Please connect later.';

function rss(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) / 1024;
}
const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const size = (f) => { try { return fs.statSync(f).size; } catch { return 0; } };

// One desktop's life, again and again until `until`.
async function worker(lib, relay, id, until, stats) {
  const { isNotify, controlMsg, KIND, HOST_USER, delay } = lib;
  const admin = relay.token({ user: 'root', role: 'admin' });
  for (let round = 0; Date.now() < until; round++) {
    const began = Date.now();
    const desktop = `soak-${id}-${round % 4}`;
    const host = await relay.host({ desktop, label: `host ${desktop}` });
    const code = await lib.Relay.share(host);
    const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner', user: HOST_USER, keepPayload: false });
    const guest = await relay.join({ code }, { label: 'guest', name: `Guest ${round}`, keepPayload: false });
    const joined = await host.next('notify', 15000, isNotify('collab_joined'));
    assert.equal(joined.message, 'Joined Shared Collaboration');

    // One guest at a time: the second is refused, with the message verbatim.
    const second = await relay.viewer({ label: 'second guest' });
    second.send({ type: 'join', code });
    const busy = await second.expectRefusal('busy', 4004);
    assert.equal(busy.message, BUSY_MESSAGE);

    // Media flows to both; then the owner stops reading and comes back.
    let seq = 0;
    const burst = async (n, bytes) => {
      for (let i = 0; i < n; i++) await host.sendBinary(controlMsg(++seq, bytes));
      return seq;
    };
    const last = await burst(20, 8192);
    for (const v of [owner, guest]) await v.nextBinary((m) => m.hdr && m.hdr.kind === KIND.control && m.hdr.seq === last);
    owner.pauseReading();
    await burst(64, 32 * 1024);
    await delay(500);
    owner.resumeReading();
    await owner.echo();

    // The guest drops in the middle of a message, or leaves cleanly.
    if (round % 2 === 0) {
      guest.ws._socket.write(Buffer.from([0x02, 0xfe, 0x10, 0x00, 0, 0, 0, 0, 1, 2])); // 2 of 4096 bytes
      guest.terminate();
    } else {
      await guest.closeGracefully();
    }
    const stopped = await host.next('notify', 15000, isNotify('collab_stopped'));
    assert.equal(stopped.message, 'Stopped Shared Collaboration');

    // The code is discarded: it no longer works; a new one does.
    host.send({ type: 'discard' });
    await delay(50);
    const stale = await relay.viewer({ label: 'stale guest' });
    stale.send({ type: 'join', code });
    const err = await stale.next('error');
    assert.ok(['bad_code', 'discarded'].includes(err.code), `stale code: ${err.code}`);
    await stale.waitClose();
    const code2 = await lib.Relay.share(host);
    assert.notEqual(code2, code);
    const guest2 = await relay.join({ code: code2 }, { label: 'guest 2', keepPayload: false });
    await host.next('notify', 15000, isNotify('collab_joined'));
    await guest2.closeGracefully();
    await host.next('notify', 15000, isNotify('collab_stopped'));
    host.send({ type: 'end' });

    // Assistance asked for, seen by an administrator, ended.
    host.send({ type: 'assist_request' });
    const req = await host.next('notify', 15000, isNotify('assist_requested'));
    const list = await relay.api('GET', '/assist', undefined, admin);
    assert.equal(list.status, 200);
    assert.ok(list.body.requests.some((r) => r.id === req.id), 'the request is listed');
    const end = await relay.api('POST', `/assist/${req.id}/end`, undefined, admin);
    assert.equal(end.status, 200, JSON.stringify(end.body));
    await host.next('notify', 15000, isNotify('assist_ended'));

    // The host leaves: cleanly, or dropping mid-message.
    if (round % 3 === 0) {
      host.ws._socket.write(Buffer.from([0x82, 0xfe, 0x40, 0x00, 0, 0, 0, 0, 0xa5, 1])); // 2 of 16384
      host.terminate();
    } else {
      await host.closeGracefully();
    }
    await owner.next('notify', 15000, isNotify('host_offline'));
    await owner.closeGracefully();
    relay.clients = [];
    stats.rounds++;
    await delay(Math.max(0, ROUND_MS - (Date.now() - began)));
  }
}

// The real tools: asp-host sharing, asp-view joining with its code, both
// run to their end; again and again.
async function tools(relay, until, stats) {
  for (let round = 0; Date.now() < until; round++) {
    const desktop = `soak-tool-${round % 2}`;
    const { host, code } = await relay.aspHostReady(['--desktop', desktop, '--share', '--source', 'pattern', '--seconds', '8']);
    const view = relay.aspView(['--code', code, '--seconds', '5', '--name', 'Tool guest']);
    const ex = await view.wait(30000);
    assert.ok(ex.code === 0 || ex.code === 6, `asp-view exit ${ex.code}\n${view.describe()}`);
    await host.wait(30000);
    for (const p of [host, view]) p.assertNoSanitizerReport();
    relay.tools = relay.tools.filter((p) => p !== host && p !== view);
    stats.toolRounds++;
  }
}

export async function soak({ seconds, log = console.log }) {
  const lib = await import('../e2e/lib.mjs');
  // ASan holds freed memory in a quarantine (256 MiB by default): capped
  // so that RSS shows the relay's own growth.
  const env = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=16:thread_local_quarantine_size_kb=256` };
  // Every round tries a discarded code once, from one address, as one
  // user: the failed-join limits (their own test is gates/limits) would
  // cool the churn down within seconds, so the soak turns them off.
  const relay = new lib.Relay(['--join-failures', '0', '--join-failures-addr', '0'], env);
  await relay.ready();
  await relay.policy(lib.HOST_USER, { help: true });
  const pid = relay.pid;
  const db = path.join(relay.data, 'relay.db');
  const start = Date.now();
  const until = start + seconds * 1000;
  const warm = start + Math.max(15, seconds / 4) * 1000;
  const stats = { rounds: 0, toolRounds: 0 };
  const samples = [];
  const fd0 = fds(pid);
  const db0 = size(db);
  let failure = null;
  const sample = () => {
    const s = { t: (Date.now() - start) / 1000, rss: rss(pid), fds: fds(pid), db: size(db), wal: size(`${db}-wal`), rounds: stats.rounds };
    samples.push(s);
    log(`soak t=${s.t.toFixed(0)}s rss=${s.rss.toFixed(1)}MB fds=${s.fds} db=${s.db} wal=${s.wal} rounds=${s.rounds} tool_rounds=${stats.toolRounds}`);
  };
  sample();
  const timer = setInterval(sample, SAMPLE_S * 1000);
  const fail = (e) => { failure ??= e; };
  await Promise.all([
    ...Array.from({ length: WORKERS }, (_, i) => worker(lib, relay, i, until, stats).catch(fail)),
    tools(relay, until, stats).catch(fail),
  ]);
  clearInterval(timer);
  await relay.closeAll().catch(fail);
  await lib.delay(1500);
  sample();
  const end = samples.at(-1);
  const after = samples.filter((s) => s.t * 1000 >= warm - start);
  const before = samples.filter((s) => s.t * 1000 < warm - start);
  const warmPeak = Math.max(...before.map((s) => s.rss));
  const peak = Math.max(...after.map((s) => s.rss));
  const walPeak = Math.max(...samples.map((s) => s.wal));
  const kept = await relay.api('GET', '/assist?state=all&limit=1000').then((r) => r.body.requests.length);
  const summary = {
    seconds, rounds: stats.rounds, tool_rounds: stats.toolRounds,
    rss_start: samples[0].rss.toFixed(1), rss_warm_peak: warmPeak.toFixed(1), rss_peak: peak.toFixed(1), rss_end: end.rss.toFixed(1),
    fds_start: fd0, fds_end: end.fds, wal_peak: walPeak, db_start: db0, db_end: end.db,
  };
  log(`soak summary ${Object.entries(summary).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  try {
    if (failure) throw failure;
    assert.ok(stats.rounds >= WORKERS, `only ${stats.rounds} rounds ran`);
    assert.ok(peak - warmPeak <= BOUNDS.rssGrowthMB, `RSS grew ${(peak - warmPeak).toFixed(1)} MB after warm-up (bound ${BOUNDS.rssGrowthMB})`);
    assert.ok(end.fds <= fd0 + BOUNDS.fdSlack, `descriptors: ${fd0} at start, ${end.fds} at the end`);
    assert.ok(walPeak <= BOUNDS.walMB * 1024 * 1024, `relay.db-wal reached ${walPeak} bytes`);
    // Each round keeps about a dozen audit events and one request.
    const keptRows = (stats.rounds + stats.toolRounds) * 16 + kept;
    assert.ok(end.db - db0 <= keptRows * BOUNDS.dbBytesPerRow + 65536,
      `relay.db grew ${end.db - db0} bytes for about ${keptRows} kept rows`);
  } finally {
    await relay.stop().catch((e) => { failure ??= e; });
  }
  if (failure) throw failure;
  return { summary, samples };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--seconds');
  const b = process.argv.indexOf('--build');
  if (b > 0) process.env.ASP_BUILD = process.argv[b + 1];
  const seconds = at > 0 ? Number(process.argv[at + 1]) : 1800;
  soak({ seconds }).then(() => process.exit(0), (e) => {
    console.error(`soak failed: ${e.stack || e.message}`);
    process.exit(1);
  });
}
