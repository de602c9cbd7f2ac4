// Helpers for the end-to-end tests: real asp-relay, asp-host and asp-view
// processes on loopback ports chosen at run time, plus a raw `ws` client that
// speaks the wire protocol of docs/protocol.md byte for byte.
//
// Every test runs inside withRelay(): it starts a relay in a fresh data dir,
// runs the body, closes what the body opened, then stops the relay with
// SIGTERM and asserts it exited 0 with no sanitizer report.  Timeouts are
// failure bounds only; tests wait for events, never for time to pass.

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD = path.resolve(ROOT, process.env.ASP_BUILD || 'build/san');
export const bin = (name) => path.join(BUILD, name);

// What a sanitizer prints when it finds something (ASan, LSan, UBSan).
const SANITIZER_RE = /AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer/;
const TAIL_LINES = 40;

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function tail(text, n = TAIL_LINES) {
  const lines = text.split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}

// Resolves p, or rejects after ms with a message built by what().
export function within(p, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// Matching queue: items arrive over time; a waiter takes the first item not
// yet taken that matches its predicate, whether it came before or after the
// wait began, so tests never race with the order of arrival.

class Inbox {
  constructor() {
    this.items = [];
    this.taken = [];
    this.waiters = [];
    this.endReason = null;
  }

  push(item) {
    const idx = this.items.length;
    this.items.push(item);
    this.taken.push(false);
    for (const w of this.waiters) {
      if (!w.done && w.pred(item)) {
        w.done = true;
        this.taken[idx] = true;
        w.resolve(item);
        break;
      }
    }
    this.waiters = this.waiters.filter((w) => !w.done);
  }

  // No more items will come: fail every pending and future wait at once.
  end(reason) {
    this.endReason = reason;
    for (const w of this.waiters) if (!w.done) { w.done = true; w.reject(new Error(reason)); }
    this.waiters = [];
  }

  take(pred, ms, what) {
    for (let i = 0; i < this.items.length; i++) {
      if (!this.taken[i] && pred(this.items[i])) {
        this.taken[i] = true;
        return Promise.resolve(this.items[i]);
      }
    }
    if (this.endReason) return Promise.reject(new Error(`${what()}: ${this.endReason}`));
    const w = { pred, done: false };
    const p = new Promise((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
    this.waiters.push(w);
    return within(p, ms, what).catch((e) => {
      w.done = true;
      throw e.message.startsWith('timed out') ? e : new Error(`${what()}: ${e.message}`);
    });
  }
}

// ---------------------------------------------------------------------------
// Child processes with line-oriented stdout.

let sanEnvCache = null;
function sanEnv() {
  if (!sanEnvCache) {
    sanEnvCache = { ...process.env };
    // Make UBSan reports carry a stack; keep whatever the caller set.
    if (!sanEnvCache.UBSAN_OPTIONS) sanEnvCache.UBSAN_OPTIONS = 'print_stacktrace=1';
  }
  return sanEnvCache;
}

export class Proc {
  constructor(name, file, args, env = {}, { cwd } = {}) {
    this.name = name;
    this.cmd = [file, ...args].join(' ');
    this.stdoutLines = new Inbox();
    this.lines = [];
    this.stderr = '';
    this.exit = null;
    if (!fs.existsSync(file)) throw new Error(`${file} does not exist (build it: make SAN=1 ${path.relative(ROOT, file)})`);
    this.child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...sanEnv(), ...env }, cwd });
    this.pid = this.child.pid;
    this.child.stdin.on('error', () => {}); // the tool may exit before reading
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line);
      this.stdoutLines.push(line);
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    const stderrDone = new Promise((r) => this.child.stderr.on('end', r));
    const stdoutDone = new Promise((r) => this.child.stdout.on('end', r));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => { this.exit = { code: null, signal: null, error: e }; resolve(this.exit); });
      this.child.on('exit', (code, signal) => {
        // Wait for the pipes so the last lines and the sanitizer report are in.
        Promise.all([stderrDone, stdoutDone]).then(() => {
          this.exit = { code, signal };
          this.stdoutLines.end(`${this.name} exited (code ${code}, signal ${signal})`);
          resolve(this.exit);
        });
      });
    });
  }

  describe() {
    return `${this.cmd}\n--- ${this.name} stdout (last ${TAIL_LINES} lines) ---\n${tail(this.lines.join('\n'))}` +
      `\n--- ${this.name} stderr ---\n${tail(this.stderr)}\n---`;
  }

  // The first stdout line matching re that no earlier wait took; its match.
  async waitForLine(re, ms = 15000) {
    const line = await this.stdoutLines.take((l) => re.test(l), ms,
      () => `${this.name}: no stdout line matching ${re}\n${this.describe()}`);
    return line.match(re);
  }

  countLines(re) { return this.lines.filter((l) => re.test(l)).length; }

  // Resolves with the match once stderr (the relay's log) matches re.
  async waitForStderr(re, ms = 15000) {
    const t0 = Date.now();
    for (;;) {
      const m = this.stderr.match(re);
      if (m) return m;
      if (this.exit || Date.now() - t0 > ms) throw new Error(`${this.name}: no stderr matching ${re}\n${this.describe()}`);
      await delay(50);
    }
  }

  send(line) { this.child.stdin.write(line + '\n'); }

  async wait(ms = 20000) {
    return within(this.exited, ms, () => `${this.name} did not exit\n${this.describe()}`);
  }

  // Waits for the exit and asserts its code, printing everything on mismatch.
  async expectExit(code, ms = 20000) {
    const ex = await this.wait(ms);
    assert.equal(ex.code, code, `${this.name} exit code ${ex.code} (signal ${ex.signal}), want ${code}\n${this.describe()}`);
    return ex;
  }

  assertNoSanitizerReport() {
    assert.ok(!SANITIZER_RE.test(this.stderr), `${this.name} printed a sanitizer report\n${this.describe()}`);
  }

  // SIGTERM, then SIGKILL if it lingers.  Resolves with the exit.
  async stop(ms = 10000) {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    try {
      return await within(this.exited, ms, `${this.name} ignored SIGTERM`);
    } catch (e) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${e.message}\n${this.describe()}`);
    }
  }
}

// Parses `key=value key=value` (the tools' summary lines) into an object.
export function parseKv(text) {
  const out = {};
  for (const m of text.matchAll(/(\w+)=(\S+)/g)) out[m[1]] = /^-?\d+(\.\d+)?$/.test(m[2]) ? Number(m[2]) : m[2];
  return out;
}

// ---------------------------------------------------------------------------
// Media messages (docs/protocol.md, "Media messages").

export const MAGIC = 0xa5;
export const HDR_LEN = 32;
export const KIND = { video: 1, audio: 2, cursor: 3, input: 4, control: 5 };
export const FLAG = { keyframe: 1, config: 2, discardable: 4 };
export const INPUT = { keyDown: 1, keyUp: 2, pointerMove: 3, pointerDown: 4, pointerUp: 5, wheel: 6 };

export function nowUs() { return BigInt(Date.now()) * 1000n; }

export function media({ kind, flags = 0, codec = 0, stream = 0, seq = 0, pts = 0n, capture = nowUs(),
  payload = Buffer.alloc(0), magic = MAGIC, version = 1, length }) {
  const h = Buffer.alloc(HDR_LEN);
  h.writeUInt8(magic, 0);
  h.writeUInt8(version, 1);
  h.writeUInt8(kind, 2);
  h.writeUInt8(flags, 3);
  h.writeUInt8(codec, 4);
  h.writeUInt8(0, 5);
  h.writeUInt16BE(stream, 6);
  h.writeUInt32BE(seq >>> 0, 8);
  h.writeUInt32BE(length ?? payload.length, 12);
  h.writeBigUInt64BE(BigInt(pts), 16);
  h.writeBigUInt64BE(BigInt(capture), 24);
  return Buffer.concat([h, payload]);
}

export function parseHeader(buf) {
  if (buf.length < HDR_LEN) return null;
  return {
    magic: buf[0], version: buf[1], kind: buf[2], flags: buf[3], codec: buf[4], reserved: buf[5],
    stream: buf.readUInt16BE(6), seq: buf.readUInt32BE(8), length: buf.readUInt32BE(12),
    pts: buf.readBigUInt64BE(16), capture: buf.readBigUInt64BE(24),
  };
}

export function inputPayload({ type, mods = 0, x = 0, y = 0, code = 0 }) {
  const p = Buffer.alloc(16);
  p.writeUInt8(type, 0);
  p.writeUInt16BE(mods, 2);
  p.writeInt32BE(x, 4);
  p.writeInt32BE(y, 8);
  p.writeUInt32BE(code, 12);
  return p;
}

export function inputMsg(seq, fields) {
  return media({ kind: KIND.input, seq, payload: inputPayload(fields) });
}

// An opaque control-kind media message (never dropped, no codec to parse).
export function controlMsg(seq, size = 64) {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (seq * 31 + i) & 0xff;
  return media({ kind: KIND.control, seq, payload });
}

// CRC-32 (IEEE, as zlib's crc32()): Node 20 has no zlib.crc32.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
export function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// asp-host's pattern payload (tools/common/client_pattern.h): "ASPT", u32
// seq, u16 stream, filler, CRC-32 of all before it.  null if the media
// message carries the pattern for its own header's seq and stream, else why.
export function patternCheck(msg) {
  const hdr = parseHeader(msg);
  const p = msg.subarray(HDR_LEN);
  if (!hdr || p.length < 14) return `payload too short (${p.length})`;
  if (p.toString('latin1', 0, 4) !== 'ASPT') return 'payload does not start with ASPT';
  if (p.readUInt32BE(4) !== hdr.seq || p.readUInt16BE(8) !== hdr.stream) {
    return `payload is for stream ${p.readUInt16BE(8)} seq ${p.readUInt32BE(4)}, header says ${hdr.stream}/${hdr.seq}`;
  }
  const want = p.readUInt32BE(p.length - 4);
  const got = crc32(p.subarray(0, p.length - 4));
  return got === want ? null : `CRC ${got.toString(16)} != ${want.toString(16)}`;
}

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// ---------------------------------------------------------------------------
// Sign-in tokens (protocol/proto_token.h): base64url(claims JSON) "."
// base64url(HMAC-SHA256(secret, first part)).  The tests write the relay's
// secret into its data dir before it starts, so they can sign their own.

export const SECRET_LEN = 32;

export function mintToken(secret, { user, role = 'user', desktop, ttl = 3600, exp, iat } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { u: user, r: role, ...(desktop ? { d: desktop } : {}), exp: exp ?? now + ttl, iat: iat ?? now };
  const first = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const mac = crypto.createHmac('sha256', secret).update(first).digest('base64url');
  return `${first}.${mac}`;
}

// Users the tests sign in as; HOST_USER and GUEST_USER hold the "User
// Stream Collaboration" permission in every relay withRelay starts.
export const HOST_USER = 'dana';
export const GUEST_USER = 'alice';
export const OWNER_USER = 'dana';

// ---------------------------------------------------------------------------
// Raw WebSocket client.

export class Client {
  // keepPayload false keeps headers and hashes only (for high-rate streams).
  constructor(ws, label, keepPayload) {
    this.ws = ws;
    this.label = label;
    this.keepPayload = keepPayload;
    this.json = new Inbox();
    this.bin = new Inbox();
    this.log = [];
    this.close = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.close = { code, reason: reason.toString() };
        this.json.end(`${label}: connection closed (${code} ${this.close.reason})`);
        this.bin.end(`${label}: connection closed (${code} ${this.close.reason})`);
        resolve(this.close);
      });
    });
    ws.on('error', (e) => { this.error = e; });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
  }

  onMessage(data, isBinary) {
    const t = performance.now();
    const wall = Date.now();
    if (!isBinary) {
      const text = data.toString();
      let msg;
      try { msg = JSON.parse(text); } catch { msg = { type: '<not json>', text }; }
      this.log.push(`<- ${text.length > 300 ? text.slice(0, 300) + '…' : text}`);
      this.json.push({ ...msg, _t: t });
      return;
    }
    const hdr = parseHeader(data);
    const item = { hdr, size: data.length, sha: sha256(data), t, wall, data: this.keepPayload ? data : null };
    this.log.push(`<- binary ${data.length} bytes ${hdr ? `kind=${hdr.kind} seq=${hdr.seq} flags=${hdr.flags}` : ''}`);
    this.bin.push(item);
  }

  describe() {
    return `${this.label} saw (last ${TAIL_LINES}):\n${this.log.slice(-TAIL_LINES).join('\n')}` +
      (this.close ? `\n${this.label} closed ${this.close.code} ${this.close.reason}` : '');
  }

  // Both senders resolve once ws has handed the message to the socket.
  send(obj) {
    const text = typeof obj === 'string' ? obj : JSON.stringify(obj);
    this.log.push(`-> ${text.length > 300 ? text.slice(0, 300) + '…' : text}`);
    return new Promise((resolve) => this.ws.send(text, resolve));
  }

  sendBinary(buf) {
    // One log line per run of sends, so what came back stays in view.
    const last = this.log.at(-1) || '';
    const run = last.match(/^-> (\d+) binary messages$/);
    if (run) this.log[this.log.length - 1] = `-> ${Number(run[1]) + 1} binary messages`;
    else this.log.push('-> 1 binary messages');
    return new Promise((resolve) => this.ws.send(buf, { binary: true }, resolve));
  }

  // The next JSON message of `type` (and matching pred, if given).
  next(type, ms = 15000, pred = () => true) {
    return this.json.take((m) => m.type === type && pred(m), ms,
      () => `${this.label}: no "${type}" message\n${this.describe()}`);
  }

  nextBinary(pred = () => true, ms = 15000) {
    return this.bin.take(pred, ms, () => `${this.label}: no matching binary message\n${this.describe()}`);
  }

  async waitClose(ms = 15000) {
    return within(this.closed, ms, () => `${this.label}: not closed\n${this.describe()}`);
  }

  // An error message with this machine code, then a close with closeCode and
  // the machine code as the reason (docs/protocol.md, "Errors").
  async expectRefusal(code, closeCode, ms = 15000) {
    const err = await this.next('error', ms);
    assert.equal(err.code, code, `${this.label}: error code ${err.code}, want ${code}\n${this.describe()}`);
    const close = await this.waitClose(ms);
    assert.equal(close.code, closeCode, `${this.label}: close code ${close.code}, want ${closeCode}\n${this.describe()}`);
    assert.equal(close.reason, code, `${this.label}: close reason "${close.reason}", want "${code}"\n${this.describe()}`);
    return err;
  }

  // A round trip through the relay: proves the connection is still served
  // and that everything the relay sent before it has arrived.
  async echo(ms = 15000) {
    const t = crypto.randomInt(1, 2 ** 31);
    this.send({ type: 'echo', t });
    return this.next('echo', ms, (m) => m.t === t);
  }

  terminate() { this.ws.terminate(); }

  // Stops reading from the TCP socket, as a viewer on a stalled network
  // would: the kernel buffers fill and the relay must queue or drop.
  pauseReading() { this.ws.pause(); }
  resumeReading() { this.ws.resume(); }

  async closeGracefully(ms = 5000) {
    if (this.close) return;
    try {
      this.ws.close(1000);
      await within(this.closed, ms, 'close');
    } catch {
      this.ws.terminate();
    }
  }
}

// ---------------------------------------------------------------------------
// The relay under test.

export class Relay {
  // opts.bin: another asp-relay (an installed one); opts.bare: pass args
  // alone (no --listen, --data: a --config file says them); opts.data: the
  // data directory that file names; opts.cwd; opts.secret: the signing
  // secret (another relay's, for relays that accept the same tokens).
  constructor(args, env, { bin: file = bin('asp-relay'), bare = false, data, cwd, secret } = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-e2e-'));
    this.data = data ?? path.join(this.dir, 'data');
    fs.mkdirSync(this.data, { recursive: true });
    this.secret = secret ?? crypto.randomBytes(SECRET_LEN);
    fs.writeFileSync(path.join(this.data, 'secret'), this.secret, { mode: 0o600 });
    this.bin = file;
    this.proc = new Proc('asp-relay', file, bare ? args : ['--listen', '127.0.0.1:0', '--data', this.data, ...args], env, { cwd });
    this.tools = [];
    this.clients = [];
    this.stopped = false;
  }

  async ready() {
    const m = await this.proc.waitForLine(/listening on (wss?):\/\/([\d.]+):(\d+)/, 20000).catch((e) => {
      const age = (Date.now() - fs.statSync(this.bin).mtimeMs) / 1000;
      e.message += `\n(${this.bin} was modified ${age.toFixed(0)} s ago: a relink during the run can do this)`;
      throw e;
    });
    this.scheme = m[1];
    this.address = m[2];
    this.port = Number(m[3]);
    this.url = `${this.scheme}://${this.address}:${this.port}`;
    this.httpUrl = `${this.scheme === 'wss' ? 'https' : 'http'}://${this.address}:${this.port}`;
    this.tls = this.scheme === 'wss';
    for (const user of new Set([HOST_USER, GUEST_USER])) await this.policy(user, { collab: true });
    return this;
  }

  get pid() { return this.proc.pid; }

  token(claims) { return mintToken(this.secret, claims); }

  // The admin API (/api/...) with an administrator's token: { status, body }
  // with body parsed as JSON.
  async api(method, pathName, body, token = this.token({ user: 'e2e-admin', role: 'admin' })) {
    const r = await httpRequest(`${this.httpUrl}/api${pathName}`, {
      method, body: body === undefined ? undefined : JSON.stringify(body),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    let parsed;
    try { parsed = JSON.parse(r.body); } catch { parsed = r.body; }
    return { ...r, body: parsed };
  }

  // Turns a user's permissions on or off (PUT /api/policy/USER).
  async policy(user, perms) {
    const r = await this.api('PUT', `/policy/${user}`, perms);
    assert.equal(r.status, 200, `PUT /api/policy/${user}: ${JSON.stringify(r)}`);
  }

  describe() { return this.proc.describe(); }

  // A raw WebSocket on path with subprotocol; resolves once open.
  async connect(pathName, protocol, { label = pathName, keepPayload = true } = {}) {
    const ws = new WebSocket(`${this.url}${pathName}`, protocol, {
      rejectUnauthorized: false, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024,
    });
    const c = new Client(ws, label, keepPayload);
    this.clients.push(c);
    await within(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode} on upgrade`)));
    }), 15000, `${label}: WebSocket handshake`);
    return c;
  }

  // A raw host past hello/welcome.  c.welcome holds the welcome.
  async host({ desktop = `desk-${crypto.randomBytes(4).toString('hex')}`, os = 'windows', image = 'system',
    asp_version = '1.1.0', name = 'Dana\'s desktop', label = 'host', user = HOST_USER,
    token = this.token({ user, desktop }) } = {}) {
    const c = await this.connect('/host', 'asp.host.v1', { label });
    c.send({ type: 'hello', os, image, asp_version, desktop, name, ...(token ? { token } : {}) });
    c.welcome = await c.next('welcome');
    c.desktop = desktop;
    return c;
  }

  // A raw viewer past hello/welcome (not joined yet).
  async viewer({ client = 'web', client_version = '1.0', name = 'Alice', label = 'viewer', keepPayload = true,
    user = GUEST_USER, token = this.token({ user }) } = {}) {
    const c = await this.connect('/view', 'asp.view.v1', { label, keepPayload });
    c.send({ type: 'hello', client, client_version, name, ...(token ? { token } : {}) });
    await c.next('welcome');
    return c;
  }

  // A raw viewer joined with {code} or {owner_key}; c.joined holds `joined`.
  // An owner signs in as the desktop's user (the owner key is theirs only).
  async join(how, opts = {}) {
    if (how.owner_key && !opts.user && !opts.token) opts = { ...opts, user: OWNER_USER };
    const c = await this.viewer(opts);
    c.send({ type: 'join', ...how });
    c.joined = await c.next('joined');
    return c;
  }

  // A join that must be refused with code/closeCode; resolves with the error.
  async joinRefused(how, code, closeCode, label = 'refused viewer') {
    const c = await this.viewer({ label });
    c.send({ type: 'join', ...how });
    return c.expectRefusal(code, closeCode);
  }

  // A raw host that shared, its owner and a guest who joined (the host has
  // been told): { host, code, owner, guest }.
  async collab({ guestName = 'Alice', keepPayload = true } = {}) {
    const host = await this.host();
    const code = await Relay.share(host);
    const owner = await this.join({ owner_key: host.welcome.owner_key }, { label: 'owner', keepPayload, user: OWNER_USER });
    const guest = await this.join({ code }, { label: 'guest', name: guestName, keepPayload });
    await host.next('notify', 15000, isNotify('collab_joined'));
    return { host, code, owner, guest };
  }

  // Shares a raw host's desktop; resolves with the code.
  static async share(host) {
    host.send({ type: 'share' });
    return (await host.next('code')).code;
  }

  // Runs a tool against this relay, signed in (a host as HOST_USER for its
  // --desktop, a viewer as GUEST_USER) unless args bring their own --token.
  spawnTool(name, args) {
    let auth = [];
    if (!args.includes('--token')) {
      const at = args.indexOf('--desktop');
      const desktop = name === 'asp-host' ? (at >= 0 ? args[at + 1] : 'desk-1') : undefined;
      // The owner's viewer signs in as the desktop's user, as the host does.
      const user = name === 'asp-host' || args.includes('--owner-key') ? HOST_USER : GUEST_USER;
      auth = ['--token', this.token({ user, desktop })];
    }
    const p = new Proc(name, bin(name), ['--relay', this.url, ...(this.tls ? ['--insecure'] : []), ...auth, ...args]);
    this.tools.push(p);
    return p;
  }

  aspHost(args = []) { return this.spawnTool('asp-host', args); }

  // asp-host once welcomed (and, with --share, once it has its code):
  // { host, key, code }.
  async aspHostReady(args = []) {
    const host = this.aspHost(args);
    const key = (await host.waitForLine(/^welcome: owner_key=([0-9a-f]{32})/))[1];
    const code = args.includes('--share') ? (await host.waitForLine(/^code: (\S+)/))[1] : null;
    return { host, key, code };
  }
  aspView(args = []) { return this.spawnTool('asp-view', args); }

  get(pathName, agent, ms) { return httpGet(`${this.httpUrl}${pathName}`, agent, ms); }

  rssMB() {
    const m = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : NaN;
  }

  // Closes the clients and tools the test opened; tool sanitizer reports fail.
  async closeAll() {
    await Promise.all(this.clients.map((c) => c.closeGracefully()));
    const errors = [];
    for (const t of this.tools) {
      try { await t.stop(); t.assertNoSanitizerReport(); } catch (e) { errors.push(e.message); }
    }
    if (errors.length) throw new Error(errors.join('\n'));
  }

  // SIGTERM; the relay must exit 0 with no sanitizer report.
  async stop() {
    if (this.stopped) return this.proc.exit;
    this.stopped = true;
    const ex = await this.proc.stop(20000);
    assert.equal(ex.signal, null, `relay killed by ${ex.signal}\n${this.describe()}`);
    assert.equal(ex.code, 0, `relay exit code ${ex.code} after SIGTERM, want 0\n${this.describe()}`);
    this.proc.assertNoSanitizerReport();
    // A message the relay failed to build is a bug, never a silent drop.
    assert.ok(!/ build-failed /.test(this.proc.stderr), `the relay failed to build a message\n${this.describe()}`);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return ex;
  }
}

// A relay that can be SIGKILLed and started again on its data directory and
// port, so that a tool's reconnect finds it (as in durable.test.mjs).
export class RestartableRelay extends Relay {
  constructor(args = [], env = {}, opts = {}) {
    super(args, env, opts);
    this.args = args;
  }

  async kill() {
    this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }

  async restart() {
    this.proc = new Proc('asp-relay', bin('asp-relay'),
      ['--listen', `127.0.0.1:${this.port}`, '--data', this.data, ...this.args]);
    this.clients = [];
    await this.ready();
  }
}

// Runs body with a RestartableRelay started with args; closes the tools and
// stops the relay after it, as withRelay does.
export async function withRestartable(body, args = []) {
  const relay = new RestartableRelay(args);
  try {
    await relay.ready();
    await body(relay);
  } finally {
    // closeAll fails on a tool's sanitizer report: that must show.
    try {
      await relay.closeAll();
    } finally {
      await relay.stop();
    }
  }
}

// Runs body with a fresh relay (opts.args: extra relay arguments, opts.env:
// extra environment, opts.bin, opts.bare, opts.data, opts.cwd: see Relay;
// opts.RelayClass: a subclass of Relay), then tears everything down and
// checks the relay's exit.  A body failure is reported with the relay's
// stderr.
export async function withRelay(opts, body) {
  if (typeof opts === 'function') { body = opts; opts = {}; }
  const relay = new (opts.RelayClass || Relay)(opts.args || [], opts.env || {}, opts);
  let err = null;
  try {
    await relay.ready();
    await body(relay);
  } catch (e) {
    err = e;
  }
  try {
    await relay.closeAll();
  } catch (e) {
    err ??= e;
  }
  try {
    await relay.stop();
  } catch (e) {
    if (err) err.message += `\n\nand at teardown: ${e.message}`;
    else err = e;
  }
  if (err) {
    if (!relay.stopped || !err.message.includes('asp-relay stderr')) {
      err.message += `\n--- asp-relay stderr (last ${TAIL_LINES} lines) ---\n${tail(relay.proc.stderr)}`;
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------
// HTTP(S) and TLS.

// One request on a fresh connection unless an agent is given (keep-alive
// tests): { status, headers, body }.
export function httpRequest(url, { method = 'GET', headers = {}, body, agent = false, ms = 15000 } = {}) {
  const mod = url.startsWith('https:') ? https : http;
  return within(new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, rejectUnauthorized: false, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  }), ms, `${method} ${url}`);
}

export const httpGet = (url, agent = false, ms = 15000) => httpRequest(url, { agent, ms });

// A port free right now on host (for a program that must be told its port
// before it starts, or an address where nothing listens).
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// A self-signed certificate for localhost in a temp dir: { cert, key, dir }.
export function selfSignedCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-e2e-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-keyout', key, '-out', cert], { stdio: 'pipe' });
  return { cert, key, dir };
}

// ---------------------------------------------------------------------------
// Product constants (docs/protocol.md).

export const CODE_RE = /^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$/;
export const BUSY_MESSAGE = 'The user is in a collaboration and cannot establish a session with you. Please connect later.';
export const MESSAGES = {
  collab_joined: 'Joined Shared Collaboration',
  collab_stopped: 'Stopped Shared Collaboration',
  control_granted: 'Control granted to the collaborator.',
  control_revoked: 'Control revoked from the collaborator.',
};

export const isNotify = (event) => (m) => m.event === event;

// The code as a careless person types it: lower case, no dashes.
export const sloppy = (code) => code.replace(/-/g, '').toLowerCase();
