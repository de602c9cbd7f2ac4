// report.mjs DIR: turns asp-bench's JSON lines (DIR/results.jsonl) into
// DIR/summary.json (the headline numbers and the targets they meet or miss)
// and DIR/report.md (tables, ratios, PNG plots drawn by gnuplot).
//
// Every number is the median over the runs of one configuration (label,
// target, TLS, size, sessions, viewers); the report says how many runs
// each median is of.  Nothing is estimated: a missing measurement is
// reported as missing (null), never filled in.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] || 'build/bench';
const rows = fs.existsSync(path.join(dir, 'results.jsonl'))
  ? fs.readFileSync(path.join(dir, 'results.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
  : [];
const env = fs.existsSync(path.join(dir, 'env.json')) ? JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8')) : {};

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const pick = (filter) => rows.filter((r) => Object.entries(filter).every(([k, v]) => r[k] === v));
const med = (filter, get) => {
  const rs = pick(filter);
  return { v: median(rs.map(get)), n: rs.length };
};
const fmt = (x, d = 1) => (x === null || x === undefined ? 'n/a' : Number(x).toFixed(d));
const ratio = (a, b) => (a !== null && b ? a / b : null);
const ms = (us) => (us === null ? null : us / 1000);

const SIZES = [1024, 16384, 262144, 1048576];
const TARGETS = ['relay', 'node', 'pipe', 'direct'];
const sizeName = (s) => (s >= 1048576 ? `${s / 1048576} MiB` : `${s / 1024} KiB`);

// ---------------------------------------------------------------------------
// Throughput.

function throughputTable(md) {
  md.push('## Throughput (1 session, 1 viewer, unpaced, bounded in flight)\n');
  md.push('Median MB/s (msg/s) over the runs; `n` runs each. TLS is the relay over wss://.\n');
  md.push('| size | relay | relay TLS | node | pipe | direct | relay/pipe | relay/node msg/s | relay CPU % | gen CPU % |');
  md.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const size of SIZES) {
    const cell = (label, target, tls = false) => {
      const b = med({ mode: 'throughput', label, target, tls, size }, (r) => r.bytes_per_s);
      const m = med({ mode: 'throughput', label, target, tls, size }, (r) => r.msgs_per_s);
      return { b: b.v, m: m.v, n: b.n };
    };
    const rl = cell('tp', 'relay'), tl = cell('tp-tls', 'relay', true), nd = cell('tp', 'node');
    const pp = cell('tp', 'pipe'), dr = cell('tp', 'direct');
    const show = (c) => (c.b === null ? 'n/a' : `${fmt(c.b / 1e6)} (${fmt(c.m, 0)}) n=${c.n}`);
    const cpu = med({ mode: 'throughput', label: 'tp', target: 'relay', size }, (r) => r.peer_cpu_pct).v;
    const gen = med({ mode: 'throughput', label: 'tp', target: 'relay', size }, (r) => r.gen_cpu_pct).v;
    md.push(`| ${sizeName(size)} | ${show(rl)} | ${show(tl)} | ${show(nd)} | ${show(pp)} | ${show(dr)} | ` +
      `${fmt(ratio(rl.b, pp.b), 2)} | ${fmt(ratio(rl.m, nd.m), 2)} | ${fmt(cpu)} | ${fmt(gen)} |`);
  }
  md.push('');
}

// ---------------------------------------------------------------------------
// Latency.

function latCells(filter) {
  const g = (k) => med(filter, (r) => r.lat_us?.[k]).v;
  return { p50: g('p50'), p99: g('p99'), p999: g('p999'), max: g('max'), n: pick(filter).length,
    cpu: med(filter, (r) => r.peer_cpu_pct).v, gen: med(filter, (r) => r.gen_cpu_pct).v,
    input99: med(filter, (r) => r.input_lat_us?.p99).v, mbs: med(filter, (r) => r.bytes_per_s).v };
}

function latencyTable(md) {
  md.push('## Latency: 100 sessions x 30 fps x 40 KiB deltas (about 1 Gbit/s), keyframes 4x every 2 s, input 20/s upstream\n');
  md.push('One-way, host send to viewer receive of the last byte, all samples; medians of the per-run percentiles, in ms.\n');
  md.push('| target | runs | MB/s | p50 | p99 | p99.9 | max | input p99 | peer CPU % | gen CPU % |');
  md.push('|---|---|---|---|---|---|---|---|---|---|');
  const add = (name, filter) => {
    const c = latCells(filter);
    md.push(`| ${name} | ${c.n} | ${fmt(c.mbs / 1e6)} | ${fmt(ms(c.p50), 3)} | ${fmt(ms(c.p99), 3)} | ${fmt(ms(c.p999), 3)} | ` +
      `${fmt(ms(c.max), 3)} | ${fmt(ms(c.input99), 3)} | ${fmt(c.cpu)} | ${fmt(c.gen)} |`);
  };
  add('relay', { mode: 'latency', label: 'lat', target: 'relay' });
  add('relay TLS', { mode: 'latency', label: 'lat-tls', target: 'relay' });
  add('node', { mode: 'latency', label: 'lat', target: 'node' });
  add('pipe', { mode: 'latency', label: 'lat', target: 'pipe' });
  add('direct', { mode: 'latency', label: 'lat', target: 'direct' });
  md.push('');
}

function loadTable(md, dat) {
  md.push('## Latency vs load (30 fps x 40 KiB per session)\n');
  md.push('![latency vs load](latency_vs_load.png)\n');
  md.push('| sessions | relay p50 | relay p99 | relay p99.9 | direct p50 | direct p99 | direct p99.9 | relay CPU % |');
  md.push('|---|---|---|---|---|---|---|---|');
  const ns = [...new Set(pick({ label: 'lat-load' }).map((r) => r.sessions))].sort((a, b) => a - b);
  for (const n of ns) {
    const r = latCells({ label: 'lat-load', target: 'relay', sessions: n });
    const d = latCells({ label: 'lat-load', target: 'direct', sessions: n });
    md.push(`| ${n} | ${fmt(ms(r.p50), 3)} | ${fmt(ms(r.p99), 3)} | ${fmt(ms(r.p999), 3)} | ${fmt(ms(d.p50), 3)} | ` +
      `${fmt(ms(d.p99), 3)} | ${fmt(ms(d.p999), 3)} | ${fmt(r.cpu)} |`);
    dat.push([n, ms(r.p50), ms(r.p99), ms(r.p999), ms(d.p50), ms(d.p99), ms(d.p999)].map((x) => x ?? 'NaN').join(' '));
  }
  md.push('');
}

// ---------------------------------------------------------------------------
// Copies, join, slow viewer, scale.

function copies() {
  const one = med({ mode: 'throughput', label: 'tp', target: 'relay', tls: false, size: 262144 }, (r) => r.copies_per_byte);
  const two = med({ mode: 'throughput', label: 'copies', target: 'relay' }, (r) => r.copies_per_byte);
  return { one_viewer: one.v, two_viewers: two.v };
}

function joinTable(md) {
  const rs = pick({ mode: 'join' });
  md.push('## Join: join request to first keyframe received (20 sessions per run, 30 fps, 4 KiB deltas, 64 KiB keyframes)\n');
  md.push('Cached: the host sent a keyframe before the viewer joined (the relay replays its cache). ' +
    'Uncached: the host never sent one, the relay asks for it on join and the host answers at once.\n');
  md.push('| case | runs | joins | p50 ms | p99 ms | max ms |');
  md.push('|---|---|---|---|---|---|');
  for (const [name, key] of [['cached', 'join_cached_us'], ['uncached', 'join_uncached_us']]) {
    md.push(`| ${name} | ${rs.length} | ${rs.reduce((a, r) => a + (r[key]?.count || 0), 0)} | ` +
      `${fmt(ms(median(rs.map((r) => r[key]?.p50))), 3)} | ${fmt(ms(median(rs.map((r) => r[key]?.p99))), 3)} | ` +
      `${fmt(ms(median(rs.map((r) => r[key]?.max))), 3)} |`);
  }
  md.push('');
}

function slowTable(md) {
  const base = pick({ mode: 'slow-viewer', phase: 'baseline' })[0];
  const st = pick({ mode: 'slow-viewer', phase: 'stalled' })[0];
  md.push('## Slow viewer: 10 sessions x 30 fps x 40 KiB; session 0 has a guest that stops reading\n');
  if (!base || !st) {
    md.push('Not measured.\n');
    return null;
  }
  const tl = st.rss_timeline || [];
  const peak = Math.max(...tl.map((x) => x[1]), st.peer_rss_kib);
  md.push('| phase | seconds | others p99 ms | others p99.9 ms | owner of session 0 p99 ms | relay RSS KiB | dropped |');
  md.push('|---|---|---|---|---|---|---|');
  for (const r of [base, st]) {
    md.push(`| ${r.phase} | ${fmt(r.seconds)} | ${fmt(ms(r.lat_us.p99), 3)} | ${fmt(ms(r.lat_us.p999), 3)} | ` +
      `${fmt(ms(r.lat_special_us?.p99 ?? null), 3)} | ${r.peer_rss_kib} | ${r.dropped ?? 'n/a'} |`);
  }
  md.push(`\nRelay RSS while the guest was stalled (ms since the stall: KiB): ${tl.map((x) => `${x[0]}: ${x[1]}`).join(', ')}; ` +
    `peak ${peak} KiB, ${fmt((peak - base.peer_rss_kib) / 1024)} MiB above the baseline.\n`);
  return { peak_rss_kib: peak, baseline_rss_kib: base.peer_rss_kib, others_p99_ms_baseline: ms(base.lat_us.p99),
    others_p99_ms_stalled: ms(st.lat_us.p99), dropped: st.dropped ?? null };
}

function scaleTable(md, dat) {
  const steps = pick({ mode: 'scale' });
  md.push('## Scale: half the sessions idle, half at 5 fps x 4 KiB, 1 input/s\n');
  md.push('![relay CPU and RSS vs sessions](scale.png)\n');
  md.push('| sessions | ok | idle RSS KiB | KiB per idle session | relay CPU % | RSS KiB | HWM KiB | p50 ms | p99 ms | p99.9 ms | why |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|');
  let max = 0, perIdle = null, failed = null;
  for (const r of steps) {
    const per = r.idle_rss_kib ? (r.idle_rss_kib - r.base_rss_kib) / r.sessions : null;
    md.push(`| ${r.sessions} | ${r.ok ? 'yes' : 'NO'} | ${r.idle_rss_kib ?? 'n/a'} | ${fmt(per)} | ${fmt(r.peer_cpu_pct)} | ` +
      `${r.peer_rss_kib} | ${r.peer_hwm_kib} | ${fmt(ms(r.lat_us.p50), 3)} | ${fmt(ms(r.lat_us.p99), 3)} | ` +
      `${fmt(ms(r.lat_us.p999), 3)} | ${r.ok ? '' : r.why} |`);
    if (r.peer_rss_kib > 0) {
      dat.push([r.sessions, r.peer_cpu_pct, r.peer_rss_kib / 1024, r.peer_hwm_kib / 1024, (r.idle_rss_kib || 0) / 1024].join(' '));
    }
    if (r.ok && r.sessions > max) {
      max = r.sessions;
      perIdle = per;
    }
    if (!r.ok && !failed) failed = { sessions: r.sessions, why: r.why };
  }
  md.push('');
  return { max, perIdle, failed };
}

// ---------------------------------------------------------------------------
// Plots.

function plot(name, script) {
  try {
    execFileSync('gnuplot', ['-e', `set terminal pngcairo size 900,540; set output '${path.join(dir, name)}'; ${script}`]);
  } catch (e) {
    console.error(`report: gnuplot failed for ${name}: ${e.message}`);
  }
}

function plots(loadDat, scaleDat, tpDat) {
  const f = (n) => path.join(dir, n);
  fs.writeFileSync(f('latency_vs_load.dat'), loadDat.join('\n') + '\n');
  fs.writeFileSync(f('scale.dat'), scaleDat.join('\n') + '\n');
  fs.writeFileSync(f('throughput.dat'), tpDat.join('\n') + '\n');
  plot('latency_vs_load.png', `set title 'One-way latency vs load (30 fps x 40 KiB per session)'; set xlabel 'sessions'; ` +
    `set ylabel 'ms'; set logscale y; set key left top; set grid; ` +
    `plot '${f('latency_vs_load.dat')}' u 1:2 w lp t 'relay p50', '' u 1:3 w lp t 'relay p99', '' u 1:4 w lp t 'relay p99.9', ` +
    `'' u 1:5 w lp dt 2 t 'direct p50', '' u 1:6 w lp dt 2 t 'direct p99', '' u 1:7 w lp dt 2 t 'direct p99.9'`);
  plot('scale.png', `set title 'Relay CPU and memory vs sessions (half idle)'; set xlabel 'sessions'; set logscale x; ` +
    `set ylabel 'CPU %'; set y2label 'MiB'; set y2tics; set ytics nomirror; set key left top; set grid; ` +
    `plot '${f('scale.dat')}' u 1:2 w lp t 'CPU %', '' u 1:3 axes x1y2 w lp t 'RSS MiB', '' u 1:4 axes x1y2 w lp dt 2 t 'HWM MiB', '' u 1:5 axes x1y2 w lp t 'RSS all idle MiB'`);
  plot('throughput.png', `set title 'Throughput, 1 session'; set xlabel 'message size (KiB)'; set logscale xy; ` +
    `set ylabel 'MB/s'; set key left top; set grid; ` +
    `plot '${f('throughput.dat')}' u 1:2 w lp t 'relay', '' u 1:3 w lp t 'relay TLS', '' u 1:4 w lp t 'node', ` +
    `'' u 1:5 w lp t 'pipe', '' u 1:6 w lp t 'direct'`);
}

function tpDat() {
  return SIZES.map((size) => {
    const b = (label, target, tls = false) => med({ mode: 'throughput', label, target, tls, size }, (r) => r.bytes_per_s).v;
    return [size / 1024, b('tp', 'relay'), b('tp-tls', 'relay', true), b('tp', 'node'), b('tp', 'pipe'), b('tp', 'direct')]
      .map((x, i) => (i === 0 ? x : x === null ? 'NaN' : x / 1e6)).join(' ');
  });
}

// ---------------------------------------------------------------------------
// Targets: what each headline number must be, and by how much it misses.

function check(value, target, better) {
  if (value === null) return { value, target, met: null, note: 'not measured' };
  const met = better === 'higher' ? value >= target : value <= target;
  const by = better === 'higher' ? target - value : value - target;
  return { value, target, met, note: met ? 'met' : `missed by ${Number(by.toPrecision(3))}` };
}

function main() {
  const md = ['# asp-relay benchmark report\n'];
  md.push(`Machine: ${env.nproc ?? '?'} cores; load average at start ${env.load_start ?? '?'}, at end ${env.load_end ?? '?'} ` +
    `(${env.started ?? '?'} to ${env.ended ?? '?'}). The generator (one thread), the relay (one thread) and the peers share these cores, ` +
    'so absolute numbers are of this machine; the ratios between targets, measured in alternation, are the point.\n');
  md.push('Targets: **relay** = asp-relay with the real protocol; **node** = bench/peers/node-ws-relay.mjs (ws, forwards ' +
    'whole messages); **pipe** = socat copying bytes between host and viewer sockets (a relay that does no work); ' +
    '**direct** = host connected straight to the viewer (no relay: the floor).\n');
  throughputTable(md);
  md.push('![throughput](throughput.png)\n');
  latencyTable(md);
  const loadDat = [];
  loadTable(md, loadDat);
  const cp = copies();
  md.push('## Copies per forwarded byte (relay /metrics: asp_copied_bytes_total / asp_forwarded_bytes_total, 256 KiB throughput runs)\n');
  md.push(`One viewer: ${fmt(cp.one_viewer, 4)}; owner + guest: ${fmt(cp.two_viewers, 4)}.\n`);
  joinTable(md);
  const slow = slowTable(md);
  const scaleDat = [];
  const sc = scaleTable(md, scaleDat);
  plots(loadDat, scaleDat, tpDat());

  const tp = (label, target, size, get) => med({ mode: 'throughput', label, target, tls: false, size }, get).v;
  const lr = latCells({ mode: 'latency', label: 'lat', target: 'relay' });
  const ld = latCells({ mode: 'latency', label: 'lat', target: 'direct' });
  const sub = (a, b) => (a === null || b === null ? null : (a - b) / 1000);
  const summary = {
    throughput_256k_vs_pipe: ratio(tp('tp', 'relay', 262144, (r) => r.bytes_per_s), tp('tp', 'pipe', 262144, (r) => r.bytes_per_s)),
    throughput_256k_vs_direct: ratio(tp('tp', 'relay', 262144, (r) => r.bytes_per_s), tp('tp', 'direct', 262144, (r) => r.bytes_per_s)),
    msgrate_16k_vs_node: ratio(tp('tp', 'relay', 16384, (r) => r.msgs_per_s), tp('tp', 'node', 16384, (r) => r.msgs_per_s)),
    msgrate_1k_vs_node: ratio(tp('tp', 'relay', 1024, (r) => r.msgs_per_s), tp('tp', 'node', 1024, (r) => r.msgs_per_s)),
    p99_added_latency_ms: sub(lr.p99, ld.p99),
    p999_added_latency_ms: sub(lr.p999, ld.p999),
    copies_per_byte: cp,
    rss_per_idle_session_kib: sc.perIdle,
    max_sessions: sc.max || null,
    scale_failed_step: sc.failed,
    slow_viewer: slow,
    runs: rows.length,
    machine: env,
  };
  summary.targets = {
    throughput_256k_vs_pipe: check(summary.throughput_256k_vs_pipe, 0.9, 'higher'),
    msgrate_16k_vs_node: check(summary.msgrate_16k_vs_node, 2, 'higher'),
    msgrate_1k_vs_node: check(summary.msgrate_1k_vs_node, 2, 'higher'),
    p99_added_latency_ms: check(summary.p99_added_latency_ms, 1, 'lower'),
    p999_added_latency_ms: check(summary.p999_added_latency_ms, 5, 'lower'),
    copies_per_byte_one_viewer: check(cp.one_viewer, 1, 'lower'),
    copies_per_byte_two_viewers: check(cp.two_viewers, 1, 'lower'),
    rss_per_idle_session_kib: check(summary.rss_per_idle_session_kib, 64, 'lower'),
    max_sessions: check(summary.max_sessions, 10000, 'higher'),
  };
  md.splice(3, 0, '## Headline numbers against the targets\n', '| number | value | target | verdict |', '|---|---|---|---|',
    ...Object.entries(summary.targets).map(([k, t]) =>
      `| ${k} | ${t.value === null ? 'n/a' : Number(t.value.toPrecision(4))} | ${k.startsWith('max') || k.startsWith('msg') || k.startsWith('through') ? '>=' : '<='} ${t.target} | ${t.note} |`), '');
  md.push(...profileSection(dir));
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'report.md'), md.join('\n') + '\n');
  console.log(md.slice(3, 6 + Object.keys(summary.targets).length).join('\n'));
  console.log(`\nreport: ${path.join(dir, 'report.md')}, ${path.join(dir, 'summary.json')}`);
}

// The perf profiles run.sh took of the relay during this run, as they
// came out of `perf report` (self time, by library and symbol).
function profileSection(dir) {
  const files = fs.readdirSync(dir).filter((f) => /^profile-.*\.txt$/.test(f)).sort();
  if (!files.length) return [];
  const out = ['## Where the relay\'s time goes (perf, this run)\n',
    'Self time by library and symbol while the relay served each load (perf record -g, 499 Hz, 3 s); ' +
    '`[kernel.kallsyms]` is the kernel working for the relay (poll, send, recv, TCP).\n'];
  for (const f of files) {
    out.push(`### ${f.replace(/^profile-|\.txt$/g, '')}\n`, '```', fs.readFileSync(path.join(dir, f), 'utf8').trimEnd(), '```', '');
  }
  return out;
}

main();
