// What a person can see about the health of a session and of the relay:
// metrics reports on the WebSocket, echo round trips, /healthz and the
// Prometheus /metrics page (docs/protocol.md, "Metrics", "Endpoints").

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { controlMsg, withRelay } from './lib.mjs';

const REPORT_NUMBERS = ['dropped', 'queued_bytes', 'rtt_ms', 'latency_ms', 'copied_bytes', 'forwarded_bytes'];

function assertReport(r, session) {
  const shown = JSON.stringify(r);
  assert.equal(r.type, 'metrics', shown);
  assert.equal(r.session, session, shown);
  assert.ok(Array.isArray(r.streams), `streams should be an array: ${shown}`);
  for (const f of REPORT_NUMBERS) {
    assert.equal(typeof r[f], 'number', `${f} should be a number: ${shown}`);
    assert.ok(r[f] >= 0, `${f} should not be negative: ${shown}`);
  }
}

// A real host streaming video, and the owner viewing it: { host, owner }.
async function streaming(relay) {
  const { host, key } = await relay.aspHostReady(['--desktop', 'desk-metrics', '--source', 'pattern', '--fps', '30', '--seconds', '60']);
  const owner = await relay.join({ owner_key: key }, { label: 'owner' });
  // Rates are measured over windows: let two whole ones pass with the stream on.
  const joinedAt = Date.now();
  await owner.nextBinary((b) => b.hdr.kind === 1 && b.wall >= joinedAt + 2500);
  return { host, owner, key };
}

test('a viewer asking for metrics gets a report with the documented fields and the video stream', () => withRelay(async (relay) => {
  const { owner } = await streaming(relay);
  owner.send({ type: 'metrics' });
  const r = await owner.next('metrics');
  assertReport(r, 'desk-metrics');
  const video = r.streams.find((s) => s.kind === 'video');
  assert.ok(video, `no video stream in ${JSON.stringify(r)}`);
  // The pattern source is synthetic: codec 0, no picture size to report.
  assert.equal(typeof video.codec, 'string', JSON.stringify(video));
  assert.equal(video.stream, 0, JSON.stringify(video));
  assert.ok(video.fps > 20 && video.fps < 40, `fps should be about 30: ${JSON.stringify(video)}`);
  assert.ok(video.bytes_per_s > 30 * 4096 * 0.6, `bytes_per_s should be about 30 x 4 KiB: ${JSON.stringify(video)}`);
  assert.ok(r.forwarded_bytes > 0, `forwarded_bytes should count the video: ${JSON.stringify(r)}`);
}));

test('a metrics subscription every 200 ms gives repeated reports, and unsubscribing stops them', () => withRelay(async (relay) => {
  const { owner } = await streaming(relay);
  owner.send({ type: 'metrics', interval_ms: 200 });
  const reports = [];
  for (let i = 0; i < 5; i++) reports.push(await owner.next('metrics', 10000));
  for (const r of reports) assertReport(r, 'desk-metrics');
  const spanMs = reports[4]._t - reports[0]._t;
  assert.ok(spanMs >= 400, `5 reports at 200 ms came within ${spanMs.toFixed(0)} ms: not paced by the interval`);
  owner.send({ type: 'metrics', interval_ms: 0 });
  await owner.echo();
  const before = owner.json.items.filter((m) => m.type === 'metrics').length;
  // A negative can only be bounded: 1 s is five intervals of a subscription
  // that failed to stop.
  await new Promise((r) => setTimeout(r, 1000));
  const after = owner.json.items.filter((m) => m.type === 'metrics').length;
  assert.ok(after - before <= 1, `${after - before} reports arrived after unsubscribing`);
}));

test('the relay copies each message once, however many viewers get it (copied_bytes vs forwarded_bytes)', () => withRelay(async (relay) => {
  const { host, owner, guest } = await relay.collab();
  const sent = [];
  for (let seq = 0; seq < 100; seq++) {
    sent.push(controlMsg(seq, 10000));
    host.sendBinary(sent.at(-1));
  }
  for (let seq = 0; seq < 100; seq++) { await owner.nextBinary(); await guest.nextBinary(); }
  const bytes = sent.reduce((n, m) => n + m.length, 0);
  owner.send({ type: 'metrics' });
  const r = await owner.next('metrics');
  assert.ok(r.forwarded_bytes >= 2 * bytes, `forwarded_bytes ${r.forwarded_bytes}, want at least 2 x ${bytes}: ${JSON.stringify(r)}`);
  assert.ok(r.copied_bytes <= bytes, `copied_bytes ${r.copied_bytes}, want at most ${bytes} (one copy): ${JSON.stringify(r)}`);
}));

test('echo round-trips for viewers and hosts, unchanged', () => withRelay(async (relay) => {
  const host = await relay.host();
  const viewer = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  for (const c of [host, viewer]) {
    c.send({ type: 'echo', t: 123 });
    const e = await c.next('echo');
    assert.equal(e.t, 123, c.describe());
    await c.echo();
  }
}));

test('a host asking for metrics gets a report for its session', () => withRelay(async (relay) => {
  const host = await relay.host({ desktop: 'desk-hm' });
  host.send({ type: 'metrics' });
  const r = await host.next('metrics');
  assert.equal(r.session, 'desk-hm', JSON.stringify(r));
}));

test('asp-view --metrics-interval 200 prints repeated relay metrics', () => withRelay(async (relay) => {
  const { key } = await streaming(relay);
  const v = relay.aspView(['--owner-key', key, '--metrics-interval', '200', '--seconds', '30']);
  for (let i = 0; i < 3; i++) {
    const m = await v.waitForLine(/^relay-metrics: (\{.*\})$/);
    assertReport({ type: 'metrics', ...JSON.parse(m[1]) }, 'desk-metrics');
  }
}));

test('GET /healthz answers 200 ok', () => withRelay(async (relay) => {
  const r = await relay.get('/healthz');
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.match(r.body, /ok/i);
}));

test('GET / serves the web collaborator page', () => withRelay(async (relay) => {
  const r = await relay.get('/');
  assert.equal(r.status, 200, `status ${r.status}: ${r.body.slice(0, 200)}`);
  assert.match(r.headers['content-type'] || '', /^text\/html/, JSON.stringify(r.headers));
  assert.match(r.body, /<html/i, r.body.slice(0, 200));
}));

test('unknown paths answer 404, and paths outside the web page\'s folder serve nothing', () => withRelay(async (relay) => {
  for (const p of ['/nope.html', '/../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2f..%2fetc%2fpasswd']) {
    const r = await relay.get(p);
    assert.equal(r.status, 404, `GET ${p}: status ${r.status}`);
    assert.ok(!r.body.includes('root:'), `GET ${p} leaked a file: ${r.body.slice(0, 200)}`);
  }
  assert.equal((await relay.get('/healthz')).status, 200);
}));

test('a browser\'s keep-alive connection still works after a 404', () => withRelay(async (relay) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const paths = ['/healthz', '/nope.html', '/healthz', '/', '/healthz'];
  try {
    for (const [i, p] of paths.entries()) {
      // A local answer takes milliseconds: 5 s is a failure bound only.
      const r = await relay.get(p, agent, 5000).catch((e) => ({ status: `error: ${e.message}`, body: '' }));
      assert.equal(r.status, p.startsWith('/nope') ? 404 : 200,
        `GET ${p} on one keep-alive connection, after ${paths.slice(0, i).join(', ') || 'nothing'}`);
    }
  } finally {
    agent.destroy();
  }
}));

// Prometheus text format: comments, then `name{labels} value` samples.
function parsePrometheus(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?$/);
    assert.ok(m, `not a Prometheus sample line: "${line}"`);
    assert.ok(!Number.isNaN(Number(m[3])) || /^[+-]?Inf$|^NaN$/.test(m[3]), `bad value in "${line}"`);
    samples.set(m[1] + (m[2] || ''), Number(m[3]));
  }
  return samples;
}

// The value of one sample (`name` or `name{labels}`), or a failed assertion.
function sample(samples, key, body) {
  assert.ok(samples.has(key), `no ${key} in /metrics:\n${body}`);
  return samples.get(key);
}

test('GET /metrics serves Prometheus text that counts sessions, hosts, viewers and refusals', () => withRelay(async (relay) => {
  const idle = await relay.get('/metrics');
  assert.equal(idle.status, 200, JSON.stringify(idle));
  assert.match(idle.headers['content-type'] || '', /^text\/plain/, JSON.stringify(idle.headers));
  assert.match(idle.body, /^# TYPE asp_sessions gauge$/m, idle.body);
  const before = parsePrometheus(idle.body);
  assert.equal(sample(before, 'asp_sessions', idle.body), 0);

  const { code } = await relay.collab();
  await relay.joinRefused({ code }, 'busy', 4004, 'second guest');

  const m = await relay.get('/metrics');
  const after = parsePrometheus(m.body);
  assert.equal(sample(after, 'asp_sessions', m.body), 1, 'asp_sessions with one desktop');
  assert.equal(sample(after, 'asp_hosts', m.body), 1, 'asp_hosts with one host');
  assert.equal(sample(after, 'asp_viewers', m.body), 2, 'asp_viewers with owner and guest');
  assert.equal(sample(after, 'asp_collaborations', m.body), 1, 'asp_collaborations with one code standing');
  const key = 'asp_refusals_total{reason="busy"}';
  assert.equal(sample(after, key, m.body) - sample(before, key, idle.body), 1, `${key} after one busy refusal`);
}));
