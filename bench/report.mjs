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
const sizeName = (s) => (s >= 1048576 ? `${s / 1048576} MiB` : `${s / 1024} KiB`);

// ---------------------------------------------------------------------------
// Throughput.

function throughputTable(md) {
  md.push('## Throughput (1 session, 1 viewer, unpaced, bounded in flight)\n');
  md.push('Median MB/s (msg/s) over the runs; `n` runs each. TLS: relay over wss:// against uWS `SSLApp`, at 256 KiB.\n');
  md.push('| size | relay | uws | relay/uws | relay TLS | uws TLS | TLS relay/uws | node | pipe | direct | relay/pipe | relay/node msg/s | relay CPU % | uws CPU % | gen CPU % |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const size of SIZES) {
    const cell = (label, target, tls = false) => {
      const b = med({ mode: 'throughput', label, target, tls, size }, (r) => r.bytes_per_s);
      const m = med({ mode: 'throughput', label, target, tls, size }, (r) => r.msgs_per_s);
      return { b: b.v, m: m.v, n: b.n };
    };
    const rl = cell('tp', 'relay'), ul = cell('tp', 'uws'), nd = cell('tp', 'node');
    const tl = cell('tp-tls', 'relay', true), vl = cell('tp-tls', 'uws', true);
    const pp = cell('tp', 'pipe'), dr = cell('tp', 'direct');
    const show = (c) => (c.b === null ? 'n/a' : `${fmt(c.b / 1e6)} (${fmt(c.m, 0)}) n=${c.n}`);
    const cpu = (target) => med({ mode: 'throughput', label: 'tp', target, size }, (r) => r.peer_cpu_pct).v;
    const gen = med({ mode: 'throughput', label: 'tp', target: 'relay', size }, (r) => r.gen_cpu_pct).v;
    md.push(`| ${sizeName(size)} | ${show(rl)} | ${show(ul)} | ${fmt(ratio(rl.b, ul.b), 2)} | ${show(tl)} | ${show(vl)} | ` +
      `${fmt(ratio(tl.b, vl.b), 2)} | ${show(nd)} | ${show(pp)} | ${show(dr)} | ` +
      `${fmt(ratio(rl.b, pp.b), 2)} | ${fmt(ratio(rl.m, nd.m), 2)} | ${fmt(cpu('relay'))} | ${fmt(cpu('uws'))} | ${fmt(gen)} |`);
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
  add('uws', { mode: 'latency', label: 'lat', target: 'uws' });
  add('relay TLS', { mode: 'latency', label: 'lat-tls', target: 'relay' });
  add('uws SSLApp', { mode: 'latency', label: 'lat-tls', target: 'uws' });
  add('node', { mode: 'latency', label: 'lat', target: 'node' });
  add('pipe', { mode: 'latency', label: 'lat', target: 'pipe' });
  add('direct', { mode: 'latency', label: 'lat', target: 'direct' });
  md.push('');
}

// The sweep: a load is carried whole when at least 99 % of the messages
// offered (sessions x fps x seconds) arrived and p99 stayed within 50 ms.
const WHOLE_DELIVERED = 0.99;
const WHOLE_P99_US = 50000;

function sweepCell(target, n) {
  const f = { mode: 'latency', label: 'lat-load', target, sessions: n };
  const c = latCells(f);
  const delivered = median(pick(f).map((r) => r.received / (r.sessions * r.fps * r.seconds)));
  const whole = delivered !== null && c.p99 !== null && delivered >= WHOLE_DELIVERED && c.p99 <= WHOLE_P99_US;
  return { ...c, delivered, whole };
}

function sweepTable(md, dat) {
  md.push('## Load sweep: sessions x 30 fps x 40 KiB (the latency mix), generator split over processes\n');
  md.push(`A load is **carried whole** when >= ${WHOLE_DELIVERED * 100} % of the offered messages (sessions x 30 fps x seconds) ` +
    `arrived and p99 <= ${WHOLE_P99_US / 1000} ms. Direct (no relay) shows what the generator itself carries at each load.\n`);
  md.push('![latency vs load](latency_vs_load.png) ![delivered vs load](delivered_vs_load.png)\n');
  md.push('| sessions | offered msg/s | relay delivered % | relay p50 | relay p99 | relay CPU % | relay whole | ' +
    'uws delivered % | uws p50 | uws p99 | uws CPU % | uws whole | direct delivered % | direct p99 | gen CPU % |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const ns = [...new Set(pick({ label: 'lat-load' }).map((r) => r.sessions))].sort((a, b) => a - b);
  const largest = { relay: 0, uws: 0 }, going = { relay: true, uws: true };
  for (const n of ns) {
    const r = sweepCell('relay', n), u = sweepCell('uws', n), d = sweepCell('direct', n);
    const pct = (x) => fmt(x === null ? null : 100 * x, 1);
    md.push(`| ${n} | ${n * 30} | ${pct(r.delivered)} | ${fmt(ms(r.p50), 3)} | ${fmt(ms(r.p99), 3)} | ${fmt(r.cpu)} | ${r.whole ? 'yes' : 'NO'} | ` +
      `${pct(u.delivered)} | ${fmt(ms(u.p50), 3)} | ${fmt(ms(u.p99), 3)} | ${fmt(u.cpu)} | ${u.whole ? 'yes' : 'NO'} | ` +
      `${pct(d.delivered)} | ${fmt(ms(d.p99), 3)} | ${fmt(r.gen)} |`);
    // Carried whole up to the first load that is not: a load above a
    // failed one does not count.
    for (const [t, c] of [['relay', r], ['uws', u]]) {
      if (c.whole && going[t]) largest[t] = n;
      else going[t] = false;
    }
    dat.push([n, ms(r.p50), ms(r.p99), ms(u.p50), ms(u.p99), ms(d.p99),
      r.delivered === null ? null : 100 * r.delivered, u.delivered === null ? null : 100 * u.delivered]
      .map((x) => x ?? 'NaN').join(' '));
  }
  md.push('');
  md.push(`Largest load carried whole: relay ${largest.relay || 'none'}, uws ${largest.uws || 'none'} sessions.\n`);
  // 0: no load was carried whole; null: there was no sweep.
  return ns.length ? largest : { relay: null, uws: null };
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

// The relay's and the uws peer's scale steps side by side; per target the
// largest passing step, RSS per idle session there, the first failure and
// CPU microseconds per delivered message at each step.
function scaleTable(md, dat) {
  md.push('## Scale: half the sessions idle, half at 5 fps x 4 KiB, 1 input/s; generator split over processes\n');
  md.push('A step fails when not every session connects, one fails, > 1 % of messages are lost or p99 > 50 ms. ' +
    '`us/msg` is the target\'s CPU time over the window / messages delivered (media to viewers + input to hosts).\n');
  md.push('![CPU per message and RSS vs sessions](scale.png)\n');
  md.push('| target | sessions | ok | idle RSS KiB | KiB per idle session | CPU % | us/msg | RSS KiB | HWM KiB | p50 ms | p99 ms | p99.9 ms | gen CPU % | why |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const out = {};
  for (const target of ['relay', 'uws']) {
    let max = 0, perIdle = null, failed = null;
    const usPerMsg = {};
    for (const r of pick({ mode: 'scale', target })) {
      const per = r.idle_rss_kib ? (r.idle_rss_kib - r.base_rss_kib) / r.sessions : null;
      usPerMsg[r.sessions] = r.peer_cpu_us_per_msg ?? null; // measured even where the step failed
      md.push(`| ${target} | ${r.sessions} | ${r.ok ? 'yes' : 'NO'} | ${r.idle_rss_kib ?? 'n/a'} | ${fmt(per)} | ${fmt(r.peer_cpu_pct)} | ` +
        `${fmt(r.peer_cpu_us_per_msg ?? null)} | ${r.peer_rss_kib} | ${r.peer_hwm_kib} | ${fmt(ms(r.lat_us.p50), 3)} | ` +
        `${fmt(ms(r.lat_us.p99), 3)} | ${fmt(ms(r.lat_us.p999), 3)} | ${fmt(r.gen_cpu_pct)} | ${r.ok ? '' : r.why} |`);
      if (target === 'relay' && r.peer_rss_kib > 0) {
        const u = pick({ mode: 'scale', target: 'uws', sessions: r.sessions })[0];
        dat.push([r.sessions, r.peer_cpu_us_per_msg ?? 'NaN', u?.peer_cpu_us_per_msg ?? 'NaN', r.peer_rss_kib / 1024,
          u ? u.peer_rss_kib / 1024 : 'NaN', (r.idle_rss_kib || 0) / 1024].join(' '));
      }
      if (r.ok && r.sessions > max) {
        max = r.sessions;
        perIdle = per;
      }
      if (!r.ok && !failed) failed = { sessions: r.sessions, why: r.why };
    }
    out[target] = { max, perIdle, failed, usPerMsg };
  }
  md.push('');
  return out;
}

// ---------------------------------------------------------------------------
// The cluster (bench/cluster.mjs): failover, redirects, Redis load, two
// nodes vs one.

const pctOf = (xs, p) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)] : null;
};
const sec = (msv) => (msv === null ? null : msv / 1000);

function clusterSection(md) {
  const out = { failover: {}, join: null, redis: null, two_vs_one: null,
    errors: pick({ mode: 'cluster-error' }).map((r) => ({ part: r.part, error: r.error })) };
  md.push('## Cluster (bench/cluster.mjs): two nodes through one Redis, lease 3 s\n');
  for (const e of out.errors) md.push(`**${e.part} failed:** ${e.error.split('\n')[0]}\n`);
  const fo = pick({ mode: 'cluster-failover' });
  md.push('### Failover: SIGKILL of the node holding N desktops\n');
  md.push('Per desktop: from the kill until its host is welcomed by the other node and its guest has received a keyframe ' +
    'there (clients as the tools: the next relay of the list, redirects followed, backoff 0.25 s doubling to 5 s). ' +
    'p50/p99/max pool the desktops of every kill; "all back" is the slowest desktop of each kill. ' +
    'Guest 0\'s stream after each kill is decoded by ffmpeg.\n');
  md.push('| desktops | kills | back / expected | p50 s | p99 s | max s | host p99 s | guest p99 s | all back per kill (s) | ffmpeg frames / errors |');
  md.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const n of [...new Set(fo.map((r) => r.desktops))].sort((a, b) => a - b)) {
    const rs = pick({ mode: 'cluster-failover', desktops: n });
    const all = rs.flatMap((r) => r.samples_ms);
    const hostP99 = median(rs.map((r) => r.host_ms?.p99));
    const guestP99 = median(rs.map((r) => r.guest_ms?.p99));
    const lost = all.filter((x) => x === null).length;
    const f = { kills: rs.length, desktops_back: all.length - lost, expected: all.length, lost,
      p50_s: sec(pctOf(all, 50)), p99_s: sec(pctOf(all, 99)), max_s: sec(pctOf(all, 100)),
      all_back_s: rs.map((r) => sec(r.all_back_ms)), decode_errors: rs.reduce((a, r) => a + (r.decode_errors ?? 1), 0) };
    out.failover[n] = f;
    md.push(`| ${n} | ${rs.length} | ${f.desktops_back} / ${f.expected} | ${fmt(f.p50_s, 2)} | ${fmt(f.p99_s, 2)} | ${fmt(f.max_s, 2)} | ` +
      `${fmt(sec(hostP99), 2)} | ${fmt(sec(guestP99), 2)} | ${f.all_back_s.map((x) => fmt(x, 2)).join(', ')} | ` +
      `${rs.map((r) => `${r.decoded_frames}/${r.decode_errors ?? '?'}`).join(', ')} |`);
  }
  md.push('');

  const jd = pick({ mode: 'cluster-join', path: 'direct' })[0];
  const jr = pick({ mode: 'cluster-join', path: 'redirect' })[0];
  md.push('### Join through a redirect vs direct (an owner, loopback; WebSocket open to `joined`)\n');
  if (jd && jr) {
    out.join = { direct_ms: jd.joined_ms, redirect_ms: jr.joined_ms,
      added_p50_ms: jr.joined_ms.p50 - jd.joined_ms.p50, added_p99_ms: jr.joined_ms.p99 - jd.joined_ms.p99 };
    md.push('| path | joins | p50 ms | p99 ms | max ms | first keyframe p50 ms | first keyframe p99 ms |');
    md.push('|---|---|---|---|---|---|---|');
    for (const r of [jd, jr]) {
      md.push(`| ${r.path} | ${r.joins} | ${fmt(r.joined_ms.p50, 3)} | ${fmt(r.joined_ms.p99, 3)} | ${fmt(r.joined_ms.max, 3)} | ` +
        `${fmt(r.first_keyframe_ms.p50, 3)} | ${fmt(r.first_keyframe_ms.p99, 3)} |`);
    }
    md.push(`\nAdded by the redirect: p50 ${fmt(out.join.added_p50_ms, 3)} ms, p99 ${fmt(out.join.added_p99_ms, 3)} ms.\n`);
  } else {
    md.push('Not measured.\n');
  }

  const ops = pick({ mode: 'cluster-redis' });
  const media = pick({ mode: 'cluster-redis-media' })[0];
  md.push('### Redis commands (INFO commandstats) per session event and per second\n');
  if (ops.length) {
    md.push(`${ops[0].sessions} sessions on node a; guests join through node b (redirected). **Commands** are INFO ` +
      'commandstats (a script\'s own commands included); **requests** are what the relays sent (MONITOR, script-run ' +
      'commands left out: each is a round trip, pipelined or not). Per event, net of the lease renewals the window saw ' +
      'and of the idle background; per second with every session idle and with media flowing (5 fps per session, to ' +
      'owner and guest).\n');
    md.push('| phase | events | commands | requests | commands / event | requests / event | commands/s | requests/s | lease renewals | commands by name |');
    md.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of ops) {
      md.push(`| ${r.phase} | ${r.events || ''} | ${r.calls} | ${r.requests ?? 'n/a'} | ${r.commands_per_event ?? ''} | ` +
        `${r.requests_per_event ?? ''} | ${fmt(r.per_s)} | ${fmt(r.requests_per_s ?? null)} | ${r.renewals} | ` +
        `${Object.entries(r.by_command).map(([k, v]) => `${k} ${v}`).join(', ')} |`);
    }
    const per = Object.fromEntries(ops.filter((r) => r.events).map((r) => [r.phase,
      { commands: r.commands_per_event ?? null, requests: r.requests_per_event ?? null }]));
    const idleRow = pick({ mode: 'cluster-redis', phase: 'idle' })[0];
    out.redis = { sessions: ops[0].sessions, per_event: per, idle_requests_per_s: idleRow?.requests_per_s ?? null,
      idle_per_s: pick({ mode: 'cluster-redis', phase: 'idle' })[0]?.per_s ?? null,
      media_per_s: pick({ mode: 'cluster-redis', phase: 'media' })[0]?.per_s ?? null,
      media_msgs_forwarded: media?.media_msgs_forwarded ?? null,
      extra_calls_per_1000_msgs: media?.extra_calls_per_1000_msgs ?? null };
    if (media) {
      md.push(`\nWhile media flowed: ${media.media_msgs_forwarded} messages forwarded; besides the lease renewals ` +
        `(${media.commands_per_renewal} commands each, counted by the node), ${media.media_other_per_s} commands/s against ` +
        `${media.idle_other_per_s}/s idle: ${media.extra_calls} more in the window, ${media.extra_calls_per_1000_msgs} ` +
        'per 1,000 messages (a command per message would be 1,000).\n');
    }
  } else {
    md.push('Not measured.\n');
  }

  const sc = pick({ mode: 'cluster-scale' });
  md.push('### Two nodes vs one (asp-bench latency mix, 30 fps x 40 KiB per session; generator in 2 processes either way)\n');
  if (sc.length) {
    md.push('p99 is the worse node\'s. Carried whole: >= 99 % delivered and p99 <= 50 ms, up to the first load that is not.\n');
    md.push('| sessions | nodes | delivered % | p50 ms | p99 ms | CPU % per node | generator CPU % | whole | why |');
    md.push('|---|---|---|---|---|---|---|---|---|');
    const largest = { 1: 0, 2: 0 }, going = { 1: true, 2: true };
    for (const r of [...sc].sort((x, y) => x.sessions - y.sessions || x.nodes - y.nodes)) {
      const whole = r.ok && r.delivered !== null && r.delivered >= WHOLE_DELIVERED && r.p99_ms !== null && r.p99_ms * 1000 <= WHOLE_P99_US;
      if (whole && going[r.nodes]) largest[r.nodes] = r.sessions;
      else going[r.nodes] = false;
      md.push(`| ${r.sessions} | ${r.nodes} | ${fmt(r.delivered === null ? null : 100 * r.delivered)} | ${fmt(r.p50_ms, 3)} | ` +
        `${fmt(r.p99_ms, 3)} | ${r.node_cpu_pct.map((x) => fmt(x)).join(' + ')} | ${fmt(r.gen_cpu_pct)} | ${whole ? 'yes' : 'NO'} | ${r.why || ''} |`);
    }
    out.two_vs_one = { largest_whole_one: largest[1], largest_whole_two: largest[2],
      ratio: largest[1] ? largest[2] / largest[1] : null,
      rows: sc.map((r) => ({ nodes: r.nodes, sessions: r.sessions, delivered: r.delivered, p99_ms: r.p99_ms, node_cpu_pct: r.node_cpu_pct })) };
    md.push(`\nLargest load carried whole: one node ${largest[1] || 'none'}, two nodes ${largest[2] || 'none'} sessions ` +
      '(the two nodes share the 2 cores with each other and with the generator).\n');
  } else {
    md.push('Not measured.\n');
  }
  return out;
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
    `plot '${f('latency_vs_load.dat')}' u 1:2 w lp t 'relay p50', '' u 1:3 w lp t 'relay p99', '' u 1:4 w lp t 'uws p50', ` +
    `'' u 1:5 w lp t 'uws p99', '' u 1:6 w lp dt 2 t 'direct p99', ${WHOLE_P99_US / 1000} w l dt 3 t 'whole: p99 limit'`);
  plot('delivered_vs_load.png', `set title 'Messages delivered / offered vs load'; set xlabel 'sessions'; ` +
    `set ylabel '%'; set yrange [0:105]; set key left bottom; set grid; ` +
    `plot '${f('latency_vs_load.dat')}' u 1:7 w lp t 'relay', '' u 1:8 w lp t 'uws', ${WHOLE_DELIVERED * 100} w l dt 3 t 'whole: 99 %'`);
  plot('scale.png', `set title 'CPU per message and memory vs sessions (half idle)'; set xlabel 'sessions'; set logscale x; ` +
    `set ylabel 'CPU us per message'; set logscale y; set y2label 'RSS MiB'; set y2tics; set ytics nomirror; set key left top; set grid; ` +
    `plot '${f('scale.dat')}' u 1:2 w lp t 'relay us/msg', '' u 1:3 w lp t 'uws us/msg', '' u 1:4 axes x1y2 w lp dt 2 t 'relay RSS MiB', ` +
    `'' u 1:5 axes x1y2 w lp dt 2 t 'uws RSS MiB', '' u 1:6 axes x1y2 w lp dt 3 t 'relay RSS all idle MiB'`);
  plot('throughput.png', `set title 'Throughput, 1 session'; set xlabel 'message size (KiB)'; set logscale xy; ` +
    `set ylabel 'MB/s'; set key left top; set grid; ` +
    `plot '${f('throughput.dat')}' u 1:2 w lp t 'relay', '' u 1:3 w lp t 'uws', '' u 1:4 w lp t 'node', ` +
    `'' u 1:5 w lp t 'pipe', '' u 1:6 w lp t 'direct'`);
}

function tpDat() {
  return SIZES.map((size) => {
    const b = (target) => med({ mode: 'throughput', label: 'tp', target, tls: false, size }, (r) => r.bytes_per_s).v;
    return [size / 1024, b('relay'), b('uws'), b('node'), b('pipe'), b('direct')]
      .map((x, i) => (i === 0 ? x : x === null ? 'NaN' : x / 1e6)).join(' ');
  });
}

// ---------------------------------------------------------------------------
// Targets: what each headline number must be, and by how much it misses.

// value against target ('higher': value >= target is met); target may be
// another measurement (the uws peer's), what = what the target is.
function check(value, target, better, what) {
  const op = better === 'higher' ? '>=' : '<=';
  const base = { value, target, op, ...(what ? { target_is: what } : {}) };
  if (value === null || value === undefined || target === null || target === undefined) {
    return { ...base, met: null, verdict: 'not measured' };
  }
  const met = better === 'higher' ? value >= target : value <= target;
  const by = Math.abs(value - target);
  const rel = target ? ` (${fmt((100 * by) / Math.abs(target), 0)} %)` : '';
  return { ...base, met, verdict: met ? 'met' : `missed by ${Number(by.toPrecision(3))}${rel}` };
}

// A desktop that never came back (within the driver's 30 s) is a miss
// whatever the others did.
function failoverCheck(f) {
  if (f?.lost) {
    return { value: null, target: 5, op: '<=', met: false,
      verdict: `missed: ${f.lost} of ${f.expected} desktops did not come back` };
  }
  return check(f?.p99_s ?? null, 5, 'lower');
}

function main() {
  const md = ['# asp-relay benchmark report\n'];
  md.push(`Machine: ${env.nproc ?? '?'} cores; load average at start ${env.load_start ?? '?'}, at end ${env.load_end ?? '?'} ` +
    `(${env.started ?? '?'} to ${env.ended ?? '?'}). The generator, the relay (one thread) and the peers share these cores, ` +
    'so absolute numbers are of this machine; the ratios between targets, measured in alternation, are the point.\n');
  md.push('Targets: **relay** = asp-relay with the real protocol; **uws** = bench/peers/uws-relay.mjs (uWebSockets.js `App`, ' +
    'over TLS `SSLApp`; forwards whole messages); **node** = bench/peers/node-ws-relay.mjs (ws, forwards ' +
    'whole messages); **pipe** = socat copying bytes between host and viewer sockets (a relay that does no work); ' +
    '**direct** = host connected straight to the viewer (no relay: the floor).\n');
  throughputTable(md);
  md.push('![throughput](throughput.png)\n');
  latencyTable(md);
  const loadDat = [];
  const sweep = sweepTable(md, loadDat);
  const cp = copies();
  md.push('## Copies per forwarded byte (relay /metrics: asp_copied_bytes_total / asp_forwarded_bytes_total, 256 KiB throughput runs)\n');
  md.push(`One viewer: ${fmt(cp.one_viewer, 4)}; owner + guest: ${fmt(cp.two_viewers, 4)}.\n`);
  joinTable(md);
  const slow = slowTable(md);
  const scaleDat = [];
  const sc = scaleTable(md, scaleDat);
  plots(loadDat, scaleDat, tpDat());
  const cluster = clusterSection(md);

  const tp = (label, target, size, get, tls = false) => med({ mode: 'throughput', label, target, tls, size }, get).v;
  const bytes = (r) => r.bytes_per_s;
  const vsUws = (size) => ratio(tp('tp', 'relay', size, bytes), tp('tp', 'uws', size, bytes));
  const lr = latCells({ mode: 'latency', label: 'lat', target: 'relay' });
  const lu = latCells({ mode: 'latency', label: 'lat', target: 'uws' });
  const ld = latCells({ mode: 'latency', label: 'lat', target: 'direct' });
  const tr = latCells({ mode: 'latency', label: 'lat-tls', target: 'relay' });
  const tu = latCells({ mode: 'latency', label: 'lat-tls', target: 'uws' });
  const sub = (a, b) => (a === null || b === null ? null : (a - b) / 1000);
  const perMsg = (t, n) => sc[t].usPerMsg[n] ?? null;
  const perMsgVs10 = (n) => ratio(perMsg('relay', n), perMsg('relay', 10));
  const summary = {
    throughput_vs_uws: { '1k': vsUws(1024), '16k': vsUws(16384), '256k': vsUws(262144), '1m': vsUws(1048576) },
    tls_throughput_256k_vs_uws_ssl: ratio(tp('tp-tls', 'relay', 262144, bytes, true), tp('tp-tls', 'uws', 262144, bytes, true)),
    latency_100: { relay_cpu_pct: lr.cpu, uws_cpu_pct: lu.cpu, relay_p99_added_ms: sub(lr.p99, ld.p99),
      uws_p99_added_ms: sub(lu.p99, ld.p99), relay_p99_ms: ms(lr.p99), uws_p99_ms: ms(lu.p99) },
    tls_latency_100: { relay_cpu_pct: tr.cpu, uws_ssl_cpu_pct: tu.cpu, relay_p99_ms: ms(tr.p99), uws_ssl_p99_ms: ms(tu.p99) },
    sweep_largest_whole_sessions: sweep,
    scale_cpu_us_per_msg: { relay: sc.relay.usPerMsg, uws: sc.uws.usPerMsg },
    scale_top_step: env.scale_top ?? null,
    throughput_256k_vs_pipe: ratio(tp('tp', 'relay', 262144, bytes), tp('tp', 'pipe', 262144, bytes)),
    throughput_256k_vs_direct: ratio(tp('tp', 'relay', 262144, bytes), tp('tp', 'direct', 262144, bytes)),
    msgrate_16k_vs_node: ratio(tp('tp', 'relay', 16384, (r) => r.msgs_per_s), tp('tp', 'node', 16384, (r) => r.msgs_per_s)),
    msgrate_1k_vs_node: ratio(tp('tp', 'relay', 1024, (r) => r.msgs_per_s), tp('tp', 'node', 1024, (r) => r.msgs_per_s)),
    p99_added_latency_ms: sub(lr.p99, ld.p99),
    p999_added_latency_ms: sub(lr.p999, ld.p999),
    copies_per_byte: cp,
    rss_per_idle_session_kib: sc.relay.perIdle,
    max_sessions: sc.relay.max || null,
    scale_failed_step: sc.relay.failed,
    uws_max_sessions: sc.uws.max || null,
    slow_viewer: slow,
    cluster,
    runs: rows.length,
    machine: env,
  };
  const L = summary.latency_100, T = summary.tls_latency_100;
  summary.targets = {
    throughput_1k_vs_uws: check(summary.throughput_vs_uws['1k'], 1.2, 'higher'),
    throughput_16k_vs_uws: check(summary.throughput_vs_uws['16k'], 1, 'higher'),
    throughput_256k_vs_uws: check(summary.throughput_vs_uws['256k'], 1, 'higher'),
    throughput_1m_vs_uws: check(summary.throughput_vs_uws['1m'], 1, 'higher'),
    tls_throughput_256k_vs_uws_ssl: check(summary.tls_throughput_256k_vs_uws_ssl, 1, 'higher'),
    latency_cpu_pct_vs_uws: check(L.relay_cpu_pct, L.uws_cpu_pct, 'lower', 'uws CPU %'),
    latency_p99_added_ms_vs_uws: check(L.relay_p99_added_ms, L.uws_p99_added_ms, 'lower', 'uws p99 added ms'),
    p99_added_latency_ms: check(L.relay_p99_added_ms, 1, 'lower'),
    tls_latency_cpu_pct_vs_uws_ssl: check(T.relay_cpu_pct, T.uws_ssl_cpu_pct, 'lower', 'uws SSLApp CPU %'),
    tls_latency_p99_ms: check(T.relay_p99_ms, 2, 'lower'),
    sweep_largest_whole_vs_uws: check(sweep.relay, sweep.uws, 'higher', 'uws sessions'),
    scale_us_per_msg_1000_vs_10: check(perMsgVs10(1000), 2, 'lower'),
    scale_us_per_msg_5000_vs_10: check(perMsgVs10(5000), 2, 'lower'),
    scale_top_step_p99_50ms: check(summary.max_sessions, summary.scale_top_step, 'higher', 'top step the fd limit allows'),
    copies_per_byte_one_viewer: check(cp.one_viewer, 1, 'lower'),
    copies_per_byte_two_viewers: check(cp.two_viewers, 0.5, 'lower'),
    rss_per_idle_session_kib: check(summary.rss_per_idle_session_kib, 16, 'lower'),
    throughput_256k_vs_pipe: check(summary.throughput_256k_vs_pipe, 0.9, 'higher'),
    msgrate_16k_vs_node: check(summary.msgrate_16k_vs_node, 2, 'higher'),
    msgrate_1k_vs_node: check(summary.msgrate_1k_vs_node, 2, 'higher'),
    p999_added_latency_ms: check(summary.p999_added_latency_ms, 5, 'lower'),
    cluster_failover_p99_s_100: failoverCheck(cluster.failover[100]),
    cluster_failover_p99_s_1: failoverCheck(cluster.failover[1]),
    cluster_redirect_added_p99_ms: check(cluster.join?.added_p99_ms ?? null, 5, 'lower'),
    cluster_media_redis_calls_per_1000_msgs: check(cluster.redis?.extra_calls_per_1000_msgs ?? null, 1, 'lower'),
    cluster_two_vs_one_largest_whole: check(cluster.two_vs_one?.ratio ?? null, 1, 'higher', 'what one node carries'),
  };
  const num = (x) => (x === null || x === undefined ? 'n/a' : Number(Number(x).toPrecision(4)));
  const head = ['## Headline numbers against the targets\n',
    'Medians of this run; a target that is another measurement (the uws peer\'s) is measured in the same run, in alternation.\n',
    '| number | value | target | verdict |', '|---|---|---|---|',
    ...Object.entries(summary.targets).map(([k, t]) =>
      `| ${k} | ${num(t.value)} | ${t.op} ${num(t.target)}${t.target_is ? ` (${t.target_is})` : ''} | ${t.verdict} |`), ''];
  md.splice(3, 0, ...head);
  md.push(...profileSection(dir));
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'report.md'), md.join('\n') + '\n');
  console.log(head.slice(2).join('\n'));
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
