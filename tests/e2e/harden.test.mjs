// Regression tests for issue 13 (hostile clients, long names, stale
// rights), one per defect, named after it, plus the defences the issue
// asked for: failed-join rate limits, operator limits, security headers
// and refused upgrades.  Real relay, real sockets.

import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  withRelay, Relay, Proc, bin, delay, within, media, inputMsg, httpRequest, selfSignedCert,
  KIND, FLAG, INPUT, HDR_LEN, HOST_USER, GUEST_USER, MESSAGES, isNotify, sloppy,
} from './lib.mjs';

const now = () => Math.floor(Date.now() / 1000);

// The relay's /metrics value of one series ("name" or 'name{label="x"}').
async function metric(relay, series) {
  const r = await relay.get('/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no ${series} in /metrics\n${r.body}`);
  return Number(line.split(' ')[1]);
}

// Waits until a /metrics gauge reads want.
async function gauge(relay, series, want, ms = 30000) {
  let last;
  const poll = async () => {
    while ((last = await metric(relay, series)) !== want) await delay(100);
  };
  await within(poll(), ms, () => `${series} is ${last}, want ${want}`);
}

// ---------------------------------------------------------------------------
// Defect 1: a collaborator could be invisible to the desktop's user.

const CHINESE_22 = '协作者的名字非常长这是一个二十二个汉字的名字'.slice(0, 22); // 66 bytes in UTF-8

test('regression: a collaborator is never invisible to the desktop\'s user (a 66-byte name of 22 Chinese characters)', () => withRelay(async (relay) => {
  assert.equal(Buffer.byteLength(CHINESE_22), 66);
  const host = await relay.host({ name: CHINESE_22 });
  host.send({ type: 'share' });
  const code = (await host.next('code')).code;
  const guest = await relay.join({ code }, { name: CHINESE_22, label: 'guest' });

  // The name is cut before the character that did not fit: 21 characters.
  const joined = await host.next('notify', 15000, isNotify('collab_joined'));
  assert.equal(joined.message, MESSAGES.collab_joined);
  assert.equal(joined.name, CHINESE_22.slice(0, 21));
  assert.equal(joined.user, GUEST_USER, 'the host is told the signed-in user id beside the name');
  assert.equal(guest.joined.name, CHINESE_22.slice(0, 21));

  const list = await relay.api('GET', '/desktops');
  const d = list.body.desktops.find((x) => x.desktop === host.desktop);
  assert.ok(d, `the desktop vanished from /api/desktops: ${JSON.stringify(list.body)}`);
  assert.equal(d.name, CHINESE_22.slice(0, 21));
  assert.equal(d.guest, CHINESE_22.slice(0, 21));

  await guest.closeGracefully();
  const stopped = await host.next('notify', 15000, isNotify('collab_stopped'));
  assert.equal(stopped.message, MESSAGES.collab_stopped);
  assert.equal(stopped.user, GUEST_USER);

  const audit = await relay.api('GET', '/audit?limit=100');
  const events = audit.body.events.map((e) => e.event);
  assert.ok(events.includes('collab-join') && events.includes('collab-leave'), `audit lost rows: ${events}`);
  assert.equal(await metric(relay, 'asp_build_failures_total'), 0);
}));

test('regression: control characters and bidi overrides in a name are dropped, and an empty name falls back to the user id', () => withRelay(async (relay) => {
  const host = await relay.host();
  host.send({ type: 'share' });
  const code = (await host.next('code')).code;
  const guest = await relay.join({ code }, { name: 'Al\u0007i\u202ece\u0085\u2066', label: 'guest' });
  const joined = await host.next('notify', 15000, isNotify('collab_joined'));
  assert.equal(joined.name, 'Alice');
  await guest.closeGracefully();
  await host.next('notify', 15000, isNotify('collab_stopped'));
  const blank = await relay.join({ code }, { name: '\u202e\u0001', label: 'blank guest' });
  const again = await host.next('notify', 15000, isNotify('collab_joined'));
  assert.equal(again.name, GUEST_USER);
  assert.equal(blank.joined.role, 'guest');
}));

// ---------------------------------------------------------------------------
// Defect 2: unauthenticated memory.

test('regression: binary before hello is refused with bad_state (4012) on its header, without the declared 4 MiB', () => withRelay(async (relay) => {
  for (const [p, proto] of [['/host', 'asp.host.v1'], ['/view', 'asp.view.v1']]) {
    const c = await relay.connect(p, proto, { label: `${p} before hello` });
    // Only the header, declaring 4 MiB: the relay must not wait for (or
    // allocate) the rest.
    c.sendBinary(media({ kind: KIND.video, length: 4 << 20 }).subarray(0, HDR_LEN));
    const err = await c.expectRefusal('bad_state', 4012);
    assert.match(err.message, /hello/);
  }
  assert.equal(await metric(relay, 'asp_refusals_total{reason="bad_state"}'), 2);
}));

test('regression: a connection that never says hello is closed with hello_timeout (4021)', () => withRelay({ args: ['--hello-timeout', '1'] }, async (relay) => {
  const c = await relay.connect('/view', 'asp.view.v1', { label: 'silent' });
  const t0 = Date.now();
  await c.expectRefusal('hello_timeout', 4021, 15000);
  assert.ok(Date.now() - t0 >= 900, `closed after ${Date.now() - t0} ms, before the 1 s timeout`);
  // A prompt hello is not affected.
  const v = await relay.viewer();
  await delay(1500);
  await v.echo();
}));

test('regression: a message other than hello before hello closes the connection instead of queueing an error per message', () => withRelay(async (relay) => {
  const c = await relay.connect('/host', 'asp.host.v1', { label: 'chatty' });
  for (let i = 0; i < 200; i++) c.send({ type: 'echo', t: i });
  // The relay closes on the first one; the client, still sending, may
  // see the close as a reset (1006) rather than read the error.
  await c.waitClose();
  assert.equal(await metric(relay, 'asp_refusals_total{reason="bad_state"}'), 1, relay.describe());
  assert.equal(relay.proc.stderr.match(/refuse reason=bad_state/g).length, 1);
}));

// A raw TCP client that completes the WebSocket handshake and then only
// writes (masked frames), never reading: the attacker of the issue.
function rawWs(port, p, proto) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    s.on('error', () => {});
    s.once('connect', () => s.write(`GET ${p} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${proto}\r\n\r\n`));
    let head = '';
    const onData = (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) { reject(new Error(head)); return; }
      s.pause();
      resolve(s);
    };
    s.on('data', onData);
  });
}

function frame(opcode, payload, fin = true) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]) :
    Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 255]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

test('regression: 64 sockets that send before hello and never read cost the relay a small fixed amount and are closed', () => withRelay({ args: ['--hello-timeout', '2'] }, async (relay) => {
  const before = relay.rssMB();
  const socks = [];
  for (let i = 0; i < 32; i++) {
    for (const [p, proto] of [['/host', 'asp.host.v1'], ['/view', 'asp.view.v1']]) {
      const s = await rawWs(relay.port, p, proto);
      // A header declaring 4 MiB, in a fragment that never ends, then
      // junk text: each used to allocate or queue without bound.
      s.write(frame(2, media({ kind: KIND.video, length: 4 << 20 }).subarray(0, HDR_LEN), false));
      for (let k = 0; k < 50; k++) s.write(frame(1, '{"type":"echo","t":1}'));
      socks.push(s);
    }
  }
  await delay(500);
  const during = relay.rssMB();
  // The relay drops every one of them although none reads its close.
  await gauge(relay, 'asp_hosts', 0);
  await gauge(relay, 'asp_viewers', 0);
  for (const s of socks) s.destroy();
  assert.ok(during - before < 24, `RSS grew ${(during - before).toFixed(1)} MiB for 64 pre-hello sockets (from ${before.toFixed(1)})`);
  await relay.viewer().then((v) => v.echo());
}));

test('connections waiting for hello are limited per address (--max-prehello-per-addr): the next is refused with too_many (4022)', () => withRelay({ args: ['--max-prehello-per-addr', '3'] }, async (relay) => {
  const waiting = [];
  for (let i = 0; i < 3; i++) waiting.push(await relay.connect('/view', 'asp.view.v1', { label: `waiting ${i}` }));
  const extra = await relay.connect('/view', 'asp.view.v1', { label: 'extra' });
  await extra.expectRefusal('too_many', 4022);
  // Saying hello frees the place.
  waiting[0].send({ type: 'hello', client: 'web', client_version: '1', token: relay.token({ user: GUEST_USER }) });
  await waiting[0].next('welcome');
  const v = await relay.viewer({ label: 'after hello' });
  await v.echo();
}));

// ---------------------------------------------------------------------------
// Defect 3: rights outlived their grant.

test('regression: a viewer whose token expires is closed with token_expired (4014) and its input stops', () => withRelay(async (relay) => {
  const host = await relay.host();
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner', token: relay.token({ user: HOST_USER, ttl: 2 }) });
  owner.sendBinary(inputMsg(1, { type: INPUT.keyDown, code: 65 }));
  await host.nextBinary((m) => m.hdr.kind === KIND.input);
  const err = await owner.expectRefusal('token_expired', 4014, 15000);
  assert.equal(err.message, 'Your sign-in has expired. Sign in again.');
  await host.echo();
  assert.equal(host.bin.items.filter((m) => m.hdr.kind === KIND.input).length, 1);
}));

test('regression: a token with exp centuries away, or iat in the future, is refused (hello and admin API)', () => withRelay(async (relay) => {
  const far = relay.token({ user: GUEST_USER, exp: now() + 300 * 365 * 86400 });
  const ahead = relay.token({ user: GUEST_USER, iat: now() + 3600, exp: now() + 7200 });
  for (const [what, token, re] of [['exp far away', far, /lives longer/], ['iat ahead', ahead, /future/]]) {
    const c = await relay.connect('/view', 'asp.view.v1', { label: what });
    c.send({ type: 'hello', client: 'web', client_version: '1', token });
    const err = await c.expectRefusal('unauthorized', 4013);
    assert.match(err.message, re);
  }
  const adminFar = relay.token({ user: 'root', role: 'admin', exp: now() + 300 * 365 * 86400 });
  const r = await relay.api('GET', '/desktops', undefined, adminFar);
  assert.equal(r.status, 401);
  assert.equal(r.body.error.code, 'unauthorized');
  assert.match(r.body.error.message, /lives longer/);
  // Within the maximum lifetime and the skew allowance: accepted.
  const ok = relay.token({ user: GUEST_USER, iat: now() + 60, ttl: 29 * 86400 });
  await relay.viewer({ token: ok });
}));

test('regression: revoking "User Stream Collaboration" ends the guest\'s session and the standing code, with a notice', () => withRelay(async (relay) => {
  const { host, code, guest, owner } = await relay.collab();
  await relay.policy(GUEST_USER, { collab: false });
  const err = await guest.expectRefusal('no_permission', 4009);
  assert.match(err.message, /revoked/);
  await host.next('notify', 15000, isNotify('collab_stopped'));

  // The desktop's own user losing the permission discards the code.
  await relay.policy(GUEST_USER, { collab: true });
  const guest2 = await relay.join({ code }, { label: 'guest 2' });
  await host.next('notify', 15000, isNotify('collab_joined'));
  await relay.policy(HOST_USER, { collab: false });
  const notice = await host.next('notify', 15000, isNotify('collab_revoked'));
  assert.match(notice.message, /revoked/);
  await guest2.expectRefusal('no_permission', 4009);
  await relay.joinRefused({ code: sloppy(code) }, 'bad_code', 4005);
  await owner.echo();
}));

test('regression: the owner key opens the owner\'s seat for the desktop\'s user only', () => withRelay(async (relay) => {
  const host = await relay.host();
  const c = await relay.viewer({ label: 'other user', user: GUEST_USER });
  c.send({ type: 'join', owner_key: host.welcome.owner_key });
  await c.expectRefusal('no_permission', 4009);
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner', user: HOST_USER });
  assert.equal(owner.joined.role, 'owner');
}));

test('regression: an accepted assistance is bound to the administrator invited and expires with its request', () => withRelay({ args: ['--test-clock'] }, async (relay) => {
  await relay.policy(HOST_USER, { help: true });
  const host = await relay.host({ token: relay.token({ user: HOST_USER, desktop: 'desk-assist', ttl: 2 * 86400 }), desktop: 'desk-assist' });
  const adminA = relay.token({ user: 'root-a', role: 'admin', ttl: 2 * 86400 });
  const r = await relay.api('POST', '/assist', { desktop: host.desktop }, adminA);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  await host.next('assist_invite');
  host.send({ type: 'assist_accept', id: r.body.id });
  await host.next('notify', 15000, isNotify('assist_accepted'));

  const b = await relay.viewer({ label: 'admin b', user: 'root-b', token: relay.token({ user: 'root-b', role: 'admin', ttl: 2 * 86400 }) });
  b.send({ type: 'join', assist: r.body.id });
  const err = await b.expectRefusal('no_permission', 4009);
  assert.match(err.message, /another administrator/);

  await relay.api('PUT', '/clock', { advance_s: 181 * 60 }, adminA);
  await host.next('notify', 15000, isNotify('assist_expired'));
  const a = await relay.viewer({ label: 'admin a late', user: 'root-a', token: adminA });
  a.send({ type: 'join', assist: r.body.id });
  await a.expectRefusal('expired', 4008);
}));

// ---------------------------------------------------------------------------
// Defect 5: the smaller ones.

// Codec-0 video: the relay cannot check the keyframe flag.
const vid = (seq, key) => media({ kind: KIND.video, codec: 0, flags: key ? FLAG.keyframe : 0, seq, payload: Buffer.alloc(8, seq & 255) });

test('regression: the keyframe cache is bounded by count (--gop-frames), not only by payload bytes, for video whose flag the relay must trust', () => withRelay({ args: ['--gop-frames', '100'] }, async (relay) => {
  const host = await relay.host();
  for (let i = 0; i < 50; i++) host.sendBinary(vid(i, i === 0));
  await host.echo();
  const v1 = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'within bound' });
  await v1.echo();
  assert.equal(v1.bin.items.length, 50, 'the cached run is replayed whole');
  await v1.closeGracefully();

  for (let i = 50; i < 5000; i++) host.sendBinary(vid(i, false));
  await host.echo();
  const v2 = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'past bound' });
  await v2.echo();
  assert.equal(v2.bin.items.length, 0, 'a run past the bound is not replayed');
  const kf = await host.next('keyframe', 15000, (m) => m.reason === 'join');
  assert.equal(kf.reason, 'join');
}));

test('regression: a relay.db readable by group or others is refused at start, like the secret', async () => {
  await withRelay(async (relay) => {
    const db = path.join(relay.data, 'relay.db');
    assert.equal(fs.statSync(db).mode & 0o077, 0, 'relay.db was created accessible to others');
  });
  const dir = fs.mkdtempSync('/tmp/asp-e2e-db-');
  try {
    fs.writeFileSync(path.join(dir, 'secret'), crypto.randomBytes(32), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'relay.db'), '');
    fs.chmodSync(path.join(dir, 'relay.db'), 0o644);
    const p = new Proc('asp-relay', bin('asp-relay'), ['--listen', '127.0.0.1:0', '--data', dir]);
    await p.expectExit(1);
    assert.match(p.stderr, /relay\.db is accessible to group or others \(mode 644\)/);
    p.assertNoSanitizerReport();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const run = promisify(execFile);
// 'ok' when openssl s_client completes a handshake with args, else 'refused'.
async function handshake(port, args) {
  const p = new Proc('openssl', '/usr/bin/openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args]);
  p.child.stdin.end();
  await p.wait(15000);
  return /Cipher is (?!\(NONE\))/.test(p.lines.join('\n')) ? 'ok' : 'refused';
}

test('regression: TLS is 1.2 or later with forward-secret AEAD suites only', async () => {
  const cert = selfSignedCert();
  try {
    await withRelay({ args: ['--tls-cert', cert.cert, '--tls-key', cert.key] }, async (relay) => {
      for (const [what, args, want] of [
        ['TLS 1.3', ['-tls1_3'], 'ok'],
        ['TLS 1.2 ECDHE AES-GCM', ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'], 'ok'],
        ['TLS 1.2 ECDHE ChaCha20', ['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305'], 'ok'],
        ['TLS 1.2 RSA key exchange (no forward secrecy)', ['-tls1_2', '-cipher', 'AES128-GCM-SHA256'], 'refused'],
        ['TLS 1.2 ECDHE with CBC (not AEAD)', ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA'], 'refused'],
        ['TLS 1.1', ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'], 'refused'],
        ['TLS 1.0', ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0'], 'refused'],
      ]) {
        assert.equal(await handshake(relay.port, args), want, what);
      }
      await relay.viewer().then((v) => v.echo());
    });
  } finally {
    fs.rmSync(cert.dir, { recursive: true, force: true });
  }
});

test('regression: asp-admin prints no bidi overrides or C0/C1 controls from a relay\'s answer', async () => {
  const evil = 'Bob\u202egnp.exe\u0085\u001b[2J\u2066x';
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url.startsWith('/api/desktops')) {
      res.end(JSON.stringify({ desktops: [{ desktop: 'desk-1', name: evil, user: 'dana', online: true, owner_viewing: false, guest: evil, guest_kind: 'collab', collaboration: true }] }));
    } else {
      res.end(JSON.stringify({ events: [{ time: 1, actor: 'root', event: 'collab-join', desktop: 'desk-1', detail: evil }] }));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${server.address().port}`;
    for (const cmd of [['desktops'], ['audit']]) {
      const { stdout } = await run(bin('asp-admin'), ['--relay', url, '--token', 'x'.repeat(40), ...cmd], { encoding: 'utf8' });
      assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(stdout), `asp-admin ${cmd} printed ${JSON.stringify(stdout)}`);
      // ESC shows as ? (audit) or JSON-escaped as \u001B (names).
      assert.match(stdout, /Bob\?gnp\.exe\?(\?|\\u001B)\[2J\?x/);
    }
  } finally {
    server.close();
  }
});

// ---------------------------------------------------------------------------
// Defence 6: guessing codes.

test('failed joins are rate limited per user (a burst, then rate_limited with retry_after), audited, and an honest user is unaffected', () => withRelay({ args: ['--join-failures', '5', '--join-cooldown', '30'] }, async (relay) => {
  await relay.policy('mallory', { collab: true });
  const host = await relay.host();
  const code = await Relay.share(host);
  const guess = async () => {
    const c = await relay.viewer({ label: 'mallory', user: 'mallory' });
    c.send({ type: 'join', code: 'ABCD-EFGH-JKMN' });
    return c;
  };
  for (let i = 0; i < 5; i++) await (await guess()).expectRefusal('bad_code', 4005);
  const limited = await guess();
  const err = await limited.next('error');
  assert.equal(err.code, 'rate_limited');
  assert.equal(err.message, 'Too many failed attempts. Wait and try again.');
  assert.ok(err.retry_after > 0 && err.retry_after <= 30, `retry_after ${err.retry_after}`);
  const close = await limited.waitClose();
  assert.equal(close.code, 4020);
  // Even the right code is refused for mallory while the window lasts.
  const right = await relay.viewer({ label: 'mallory right', user: 'mallory' });
  right.send({ type: 'join', code });
  assert.equal((await right.next('error')).code, 'rate_limited');
  // Alice, from the same address, joins at once.
  const alice = await relay.join({ code }, { label: 'alice' });
  assert.equal(alice.joined.role, 'guest');
  const audit = await relay.api('GET', '/audit?limit=200');
  const rows = audit.body.events.filter((e) => e.event === 'rate-limited');
  assert.equal(rows.length, 1, JSON.stringify(audit.body.events));
  assert.match(rows[0].detail, /user=mallory/);
  assert.equal(await metric(relay, 'asp_refusals_total{reason="rate_limited"}'), 2);
}));

test('failed joins are rate limited per address across users (--join-failures-addr)', () => withRelay({ args: ['--join-failures-addr', '4'] }, async (relay) => {
  for (let i = 0; i < 4; i++) {
    const c = await relay.viewer({ label: `u${i}`, user: `u${i}` });
    c.send({ type: 'join', code: 'ABCD-EFGH-JKMN' });
    await c.expectRefusal('bad_code', 4005);
  }
  const c = await relay.viewer({ label: 'u4', user: 'u4' });
  c.send({ type: 'join', code: 'ABCD-EFGH-JKMN' });
  await c.expectRefusal('rate_limited', 4020);
}));

// ---------------------------------------------------------------------------
// Defence 7: limits an operator sets.

test('connections per user (--max-user-conns) and desktops per token (--max-token-desktops) are limited with too_many', () => withRelay({ args: ['--max-user-conns', '3', '--max-token-desktops', '1'] }, async (relay) => {
  const token = relay.token({ user: GUEST_USER });
  const hosts = [await relay.host({ label: 'h1' }), await relay.host({ label: 'h2' })];
  const codes = [await Relay.share(hosts[0]), await Relay.share(hosts[1])];
  const first = await relay.join({ code: codes[0] }, { label: 'token on desk 1', token });
  const second = await relay.viewer({ label: 'token on desk 2', token });
  second.send({ type: 'join', code: codes[1] });
  await second.expectRefusal('too_many', 4022);
  await gauge(relay, 'asp_viewers', 1);
  // The same user with another token may join.
  const other = await relay.join({ code: codes[1] }, { label: 'other token', token: relay.token({ user: GUEST_USER, ttl: 3000 }) });
  assert.equal(other.joined.role, 'guest');
  const third = await relay.viewer({ label: 'third' });
  const fourth = await relay.connect('/view', 'asp.view.v1', { label: 'fourth' });
  fourth.send({ type: 'hello', client: 'web', client_version: '1', token: relay.token({ user: GUEST_USER }) });
  await fourth.expectRefusal('too_many', 4022);
  await first.echo();
  await third.echo();
}));

// ---------------------------------------------------------------------------
// Defence 8: the web page and HTTP.

const SECURITY = {
  'content-security-policy': /frame-ancestors 'none'/,
  'x-content-type-options': /^nosniff$/,
  'referrer-policy': /^no-referrer$/,
};

test('every HTTP answer carries the security headers (CSP frame-ancestors, nosniff, Referrer-Policy)', () => withRelay(async (relay) => {
  for (const p of ['/', '/app.js', '/healthz', '/metrics', '/api/desktops', '/no-such-file']) {
    const r = await relay.get(p);
    for (const [h, re] of Object.entries(SECURITY)) assert.match(r.headers[h] || '', re, `${p} (${r.status}): ${h}`);
  }
}));

function upgrade(relay, p, proto) {
  return httpRequest(`${relay.httpUrl}${p}`, {
    headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13',
      'sec-websocket-key': crypto.randomBytes(16).toString('base64'), 'sec-websocket-protocol': proto },
  });
}

test('a refused WebSocket upgrade is answered with an HTTP 4xx and a reason, not a dropped connection', () => withRelay(async (relay) => {
  let r = await upgrade(relay, '/view', 'asp.host.v1');
  assert.equal(r.status, 400);
  assert.match(r.body, /asp\.view\.v1/);
  r = await upgrade(relay, '/nowhere', 'asp.view.v1');
  assert.equal(r.status, 404);
  assert.match(r.body, /\/host and \/view/);
  for (const [h, re] of Object.entries(SECURITY)) assert.match(r.headers[h] || '', re, h);
  await relay.viewer().then((v) => v.echo());
}));

test('/metrics can be put behind a token (--metrics-token-file)', async () => {
  const dir = fs.mkdtempSync('/tmp/asp-e2e-mt-');
  const file = path.join(dir, 'metrics-token');
  const token = crypto.randomBytes(24).toString('hex');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  try {
    await withRelay({ args: ['--metrics-token-file', file] }, async (relay) => {
      assert.equal((await relay.get('/metrics')).status, 401);
      const wrong = await httpRequest(`${relay.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token.slice(1)}x` } });
      assert.equal(wrong.status, 401);
      const ok = await httpRequest(`${relay.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200);
      assert.match(ok.body, /asp_build_failures_total 0/);
      assert.equal((await relay.get('/healthz')).status, 200);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('regression: a crafted #token= link does not silently replace the signed-in token in the web page', async () => {
  const { launchBrowser, openPage } = await import('./browser-lib.mjs');
  const browser = await launchBrowser();
  try {
    await withRelay(async (relay) => {
      const mine = relay.token({ user: GUEST_USER });
      const theirs = relay.token({ user: 'mallory' });
      const stored = (page) => page.evaluate(() => sessionStorage.getItem('asp.token'));
      const page = await openPage(browser, `${relay.httpUrl}/#token=${mine}`);
      assert.equal(await stored(page), mine);
      assert.ok(!page.url().includes('token='), `the token stayed in the address bar: ${page.url()}`);

      const asked = [];
      page.once('dialog', (d) => { asked.push(d.message()); d.dismiss(); });
      await page.goto(`${relay.httpUrl}/?again=1#token=${theirs}`);
      assert.equal(asked.length, 1, 'the page did not ask before switching users');
      assert.match(asked[0], /mallory/);
      assert.match(asked[0], new RegExp(GUEST_USER));
      assert.equal(await stored(page), mine, 'a declined link replaced the sign-in');

      page.once('dialog', (d) => d.accept());
      await page.goto(`${relay.httpUrl}/?again=2#token=${theirs}`);
      assert.equal(await stored(page), theirs, 'an accepted link did not switch');

      // The same token again is no question.
      page.once('dialog', (d) => { asked.push(d.message()); d.dismiss(); });
      await page.goto(`${relay.httpUrl}/?again=3#token=${theirs}`);
      assert.equal(asked.length, 1);
      page.removeAllListeners('dialog');
      await page.context().close();
    });
  } finally {
    await browser.close();
  }
});
