// Measures what connections that never say hello cost the relay (issue
// 13): memory per pre-hello connection, the attack of the issue (sockets
// that send a 4 MiB media header and junk before hello and never read),
// and the per-address cap.  Not a test: it prints numbers.
//
//   node tests/e2e/exhaust.mjs [BUILD_DIR]     (default build, no sanitizers)

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Proc, delay, media, KIND, HDR_LEN } from './lib.mjs';

const build = path.resolve(process.argv[2] || 'build');

function rss(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) / 1024;
}

async function startRelay(args) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-exhaust-'));
  const p = new Proc('asp-relay', path.join(build, 'asp-relay'), ['--listen', '127.0.0.1:0', '--data', data, ...args]);
  const m = await p.waitForLine(/listening on ws:\/\/[\d.]+:(\d+)/);
  return { p, port: Number(m[1]), data };
}

// A WebSocket that completes its handshake, then only writes; resolves
// with the socket, or null when the relay refused or closed it.
function rawWs(port, p, proto) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve(null));
    s.once('connect', () => s.write(`GET ${p} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Protocol: ${proto}\r\n\r\n`));
    let head = '';
    const onData = (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      resolve(head.startsWith('HTTP/1.1 101') ? s : null);
    };
    s.on('data', onData);
  });
}

function frame(opcode, payload, fin = true) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]) :
    len < 65536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 255]) :
      Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

async function stop(r) {
  r.p.child.kill('SIGTERM');
  await r.p.wait(20000);
  fs.rmSync(r.data, { recursive: true, force: true });
}

// 1. Memory per silent pre-hello connection, host and viewer paths.
for (const [p, proto] of [['/host', 'asp.host.v1'], ['/view', 'asp.view.v1']]) {
  const r = await startRelay(['--hello-timeout', '600', '--max-prehello-per-addr', '0']);
  const N = 500;
  await delay(300);
  const before = rss(r.p.pid);
  const socks = [];
  for (let i = 0; i < N; i++) socks.push(await rawWs(r.port, p, proto));
  await delay(500);
  const after = rss(r.p.pid);
  console.log(`silent pre-hello ${p}: ${N} connections, RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MiB, ` +
    `${((after - before) * 1024 / N).toFixed(1)} KiB per connection`);
  for (const s of socks) s?.destroy();
  await stop(r);
}

// 2. The attack of the issue: 32 hosts and 32 viewers send a media header
// declaring 4 MiB, then 1 MiB of its payload and 200 junk text messages,
// and never read.
{
  const r = await startRelay([]);
  await delay(300);
  const before = rss(r.p.pid);
  const socks = [];
  for (let i = 0; i < 32; i++) {
    for (const [p, proto] of [['/host', 'asp.host.v1'], ['/view', 'asp.view.v1']]) {
      const s = await rawWs(r.port, p, proto);
      if (!s) continue;
      s.pause();
      s.write(frame(2, Buffer.concat([media({ kind: KIND.video, length: 4 << 20 }).subarray(0, HDR_LEN), Buffer.alloc(1 << 20)]), false));
      for (let k = 0; k < 200; k++) s.write(frame(1, '{"type":"echo","t":1}'));
      socks.push(s);
    }
  }
  let peak = rss(r.p.pid);
  for (let t = 0; t < 20; t++) { await delay(250); peak = Math.max(peak, rss(r.p.pid)); }
  const metrics = await fetch(`http://127.0.0.1:${r.port}/metrics`).then((x) => x.text());
  const gaugeOf = (n) => Number(metrics.match(new RegExp(`^${n} (\\d+)`, 'm'))[1]);
  await delay(6000); // the close timeout for peers that do not read
  const metrics2 = await fetch(`http://127.0.0.1:${r.port}/metrics`).then((x) => x.text());
  const left = Number(metrics2.match(/^asp_hosts (\d+)/m)[1]) + Number(metrics2.match(/^asp_viewers (\d+)/m)[1]);
  console.log(`attack: ${socks.length} sockets, RSS ${before.toFixed(1)} MiB before, peak ${peak.toFixed(1)} MiB, ` +
    `${rss(r.p.pid).toFixed(1)} MiB after; connections held 5 s in: ${gaugeOf('asp_hosts') + gaugeOf('asp_viewers')}, 11 s in: ${left}`);
  for (const s of socks) s.destroy();
  await stop(r);
}

// 3. The per-address cap (default 512): 1000 silent connections.
{
  const r = await startRelay(['--hello-timeout', '600']);
  await delay(300);
  const before = rss(r.p.pid);
  const socks = [];
  for (let i = 0; i < 1000; i++) socks.push(await rawWs(r.port, '/host', 'asp.host.v1'));
  await delay(1500);
  const metrics = await fetch(`http://127.0.0.1:${r.port}/metrics`).then((x) => x.text());
  const held = Number(metrics.match(/^asp_hosts (\d+)/m)[1]);
  const refused = Number(metrics.match(/^asp_refusals_total\{reason="too_many"\} (\d+)/m)[1]);
  console.log(`cap: 1000 silent /host connections from one address: ${held} held, ${refused} refused with too_many, ` +
    `RSS ${before.toFixed(1)} -> ${rss(r.p.pid).toFixed(1)} MiB`);
  for (const s of socks) s?.destroy();
  await stop(r);
}
