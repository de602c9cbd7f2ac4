// Regressions for what the fuzz driver of the whole relay found
// (tests/fuzz/fuzz_relay.c), replayed against a real relay process over
// TCP, byte for byte as the fuzzer's inputs sent them: a raw socket, since
// a WebSocket library will not send a malformed frame or pipeline HTTP.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { HOST_USER, httpGet, within, withRelay } from './lib.mjs';

// A raw TCP connection that collects everything the relay sends.
function raw(relay) {
  const sock = net.connect(relay.port, '127.0.0.1');
  const got = { data: Buffer.alloc(0), ended: false };
  sock.on('data', (d) => { got.data = Buffer.concat([got.data, d]); });
  sock.on('end', () => { got.ended = true; });
  sock.on('close', () => { got.ended = true; });
  sock.on('error', () => {});
  const until = (pred, what) => within(new Promise((resolve) => {
    const check = () => (pred() ? resolve() : setTimeout(check, 10));
    check();
  }), 10000, () => `${what}; got ${JSON.stringify(got.data.toString('latin1'))}`);
  return { sock, got, until };
}

// A masked client frame (mask key 0).
function frame(opcode, payload, fin = true) {
  const p = Buffer.from(payload);
  const len = p.length < 126 ? Buffer.from([0x80 | p.length]) :
    Buffer.from([0x80 | 126, p.length >> 8, p.length & 0xff]);
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode]), len, Buffer.alloc(4), p]);
}

// The server's frames after the 101 response: [{ opcode, payload }].
function frames(data) {
  const out = [];
  let off = data.indexOf('\r\n\r\n') + 4;
  while (off + 2 <= data.length) {
    let n = data[off + 1] & 0x7f, hl = 2;
    if (n === 126) { n = data.readUInt16BE(off + 2); hl = 4; }
    if (off + hl + n > data.length) break;
    out.push({ opcode: data[off] & 0x0f, payload: data.subarray(off + hl, off + hl + n) });
    off += hl + n;
  }
  return out;
}

test('regression: a request pipelined behind another does not stop the relay', () => withRelay(async (relay) => {
  // lws 4.1 parsed the second request from its buffer once the first was
  // answered and spun forever on its Content-Length: no other client was
  // served again.
  const c = raw(relay);
  c.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
    'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n');
  await c.until(() => c.got.ended, 'the relay should answer the first request and close');
  const text = c.got.data.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200/, text);
  assert.match(text, /connection: close/i, text);
  const r = await httpGet(`${relay.httpUrl}/healthz`, false, 5000);
  assert.equal(r.status, 200, JSON.stringify(r));
}));

test('regression: an admin request pipelined behind a body is answered and does not stop the relay', () => withRelay(async (relay) => {
  // lws 4.1 called BODY_COMPLETION again for every pipelined byte until
  // the answer was written, consuming none: the loop never came back.
  const token = relay.token({ user: 'e2e-admin', role: 'admin' });
  const body = '{"help":true,"collab":true}';
  const c = raw(relay);
  c.sock.write(`PUT /api/policy/${HOST_USER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, -1)}`);
  await new Promise((r) => setTimeout(r, 200));
  c.sock.write(`${body.slice(-1)}GET /api/desktops HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n`);
  await c.until(() => c.got.ended, 'the relay should answer the PUT and close');
  assert.match(c.got.data.toString('latin1'), /^HTTP\/1\.1 200/);
  const r = await relay.api('GET', `/policy/${HOST_USER}`);
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(r.body.collab, true, JSON.stringify(r.body));
}));

test('regression: a refusal is sent before the close even when a bad frame follows the refused message', () => withRelay(async (relay) => {
  // The relay queued too_large, then lws parsed the next frame of the same
  // read, a fragmented ping, and sent its own Close (1002) first; the
  // error went out after the Close, where no client reads it.
  const c = raw(relay);
  c.sock.write('GET /host HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    'Sec-WebSocket-Protocol: asp.host.v1\r\n\r\n');
  await c.until(() => c.got.data.includes('\r\n\r\n'), 'the upgrade should be answered');
  const desktop = 'desk-fuzzfound';
  c.sock.write(frame(1, JSON.stringify({ type: 'hello', os: 'windows', image: 'system', asp_version: '1.1.0',
    desktop, token: relay.token({ user: HOST_USER, desktop }) })));
  await c.until(() => frames(c.got.data).length >= 1, 'welcome');
  const hdr = Buffer.alloc(32);
  hdr[0] = 0xa5; hdr[1] = 1; hdr[2] = 5;
  hdr.writeUInt32BE(0x7fffffff, 12);
  c.sock.write(Buffer.concat([frame(2, hdr), frame(9, 'x', false)]));
  await c.until(() => frames(c.got.data).some((f) => f.opcode === 8), 'a close frame');
  const after = frames(c.got.data).slice(1);
  assert.equal(after[0].opcode, 1, `first frame after welcome: ${JSON.stringify(after)}`);
  assert.equal(JSON.parse(after[0].payload).code, 'too_large', after[0].payload.toString());
  assert.equal(after[1].opcode, 8);
  assert.equal(after[1].payload.readUInt16BE(0), 4010);
  assert.equal(after.length, 2, 'nothing may follow the close');
  c.sock.destroy();
}));
