// uws-relay: the same relay as node-ws-relay.mjs on uWebSockets.js, the
// fastest WebSocket server Node.js has, for asp-bench to compare against
// (bench/README.md, "Targets").  It is written the way uWS wants to be
// used, so what it measures is uWS at its best, not a strawman:
//
//  - a host's message is sent to each viewer of its pair straight from the
//    ArrayBuffer uWS hands the callback (no copy in JavaScript), each send
//    inside that viewer's cork() so uWS packs frame header and payload into
//    one write; over TLS see relay() below: one copy, then one corked
//    write per receiver per loop turn;
//  - backpressure: a receiver may hold at most 16 MiB unsent (the bound
//    asp-relay's per-viewer queue has, --queue-bytes); past it uWS skips
//    the message for that receiver (send() returns 2), which is what a live
//    relay does with a slow viewer.  Skips are counted with
//    getBufferedAmount() and reported on SIGTERM, so a run that dropped
//    says so;
//  - messages up to 64 MiB, no idle timeout, no automatic pings, no
//    permessage-deflate (asp-relay has none either).
//
// A host connects to /pair/NAME/host and viewers to /pair/NAME/view; every
// message from the host goes to every viewer of the same NAME, and every
// message from a viewer goes to the host, as is (binary stays binary).  A
// second host of a NAME replaces the first.  No protocol logic.
//
//   node uws-relay.mjs [--port N] [--tls-cert FILE --tls-key FILE]
//
// Without TLS it is uWS.App, with it uWS.SSLApp on the same port choice
// (0, the default, picks a port).  Prints "listening on ws://127.0.0.1:PORT"
// (wss:// with TLS) once ready; SIGTERM stops it.  It refuses to run on
// the package's JavaScript fallback: that would not be uWS.

import { createRequire } from 'node:module';
import path from 'node:path';
import { findPair, forget, pair } from './pairs.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const port = Number(opt('--port') ?? 0);
const cert = opt('--tls-cert');
const key = opt('--tls-key');
if (!!cert !== !!key || !Number.isInteger(port) || port < 0) {
  console.error('usage: node uws-relay.mjs [--port N] [--tls-cert FILE --tls-key FILE]');
  process.exit(1);
}

// The native addon itself, never the package's silent fallback to a
// JavaScript implementation (src/uws.js falls back when the addon does not
// load): a failure to load is an error here.
const require = createRequire(import.meta.url);
const pkg = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
const uWS = require(path.join(pkg, 'binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));

const BACKPRESSURE = 16 * 1024 * 1024;
const DROPPED = 2; // send(): 1 sent, 0 buffered, 2 skipped over maxBackpressure

let dropped = 0;
const sockets = new Set(); // every open socket, closed with 1001 on SIGTERM

// Sends one whole message to ws (the caller corks).  A receiver already
// over its bound is skipped before uWS would frame and copy the message.
function sendOne(ws, message, isBinary) {
  if (ws.getBufferedAmount() > BACKPRESSURE || ws.send(message, isBinary) === DROPPED) dropped++;
}

// Over TLS a message is forwarded on the next loop turn, not from inside
// the callback that delivered it: with this build's uSockets, an SSL_write
// on another socket from inside an SSL socket's data callback breaks the
// *receiving* socket when more records are waiting in the same read (its
// connection ends with 1006 after a few dozen back-to-back messages; paced
// traffic hides it).  So the message is copied once (uWS's ArrayBuffer
// dies with the callback), queued, and sent from setImmediate, where each
// receiver is corked once for everything queued to it: several messages
// leave in one write and one TLS record stage.
const queued = new Map(); // receiver -> [message, isBinary, ...]
let flushScheduled = false;

function flush() {
  flushScheduled = false;
  for (const [ws, q] of queued) {
    if (!sockets.has(ws)) continue; // closed meanwhile
    ws.cork(() => {
      for (let i = 0; i < q.length; i += 2) sendOne(ws, q[i], q[i + 1]);
    });
  }
  queued.clear();
}

function queue(ws, copy, isBinary) {
  let q = queued.get(ws);
  if (!q) queued.set(ws, (q = []));
  q.push(copy, isBinary);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

// Forwards one message to every receiver: at once in plain mode, queued
// over TLS.
function relay(receivers, message, isBinary) {
  if (!cert) {
    for (const ws of receivers) ws.cork(() => sendOne(ws, message, isBinary));
    return;
  }
  const copy = message.slice(0);
  for (const ws of receivers) queue(ws, copy, isBinary);
}

const app = cert ? uWS.SSLApp({ cert_file_name: cert, key_file_name: key }) : uWS.App();

// Accepts the first subprotocol the client offers, as the node peer does.
function upgrade(res, req, context) {
  const offered = req.getHeader('sec-websocket-protocol');
  res.upgrade({ name: req.getParameter(0) }, req.getHeader('sec-websocket-key'),
    offered.split(',')[0].trim(), req.getHeader('sec-websocket-extensions'), context);
}

const behaviour = {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024 * 1024,
  maxBackpressure: BACKPRESSURE,
  closeOnBackpressureLimit: false,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  upgrade,
};

app.ws('/pair/:name/host', {
  ...behaviour,
  open: (ws) => {
    const { name } = ws.getUserData();
    const p = pair(name);
    sockets.add(ws);
    if (p.host) p.host.end(4000, 'replaced');
    p.host = ws;
  },
  message: (ws, message, isBinary) => {
    const p = findPair(ws.getUserData().name);
    if (!p) return;
    relay(p.viewers, message, isBinary);
  },
  close: (ws) => {
    sockets.delete(ws);
    const { name } = ws.getUserData();
    const p = findPair(name);
    if (!p) return;
    if (p.host === ws) p.host = null;
    forget(name, p);
  },
});

app.ws('/pair/:name/view', {
  ...behaviour,
  open: (ws) => {
    sockets.add(ws);
    pair(ws.getUserData().name).viewers.add(ws);
  },
  message: (ws, message, isBinary) => {
    const p = findPair(ws.getUserData().name);
    if (p?.host) relay([p.host], message, isBinary);
  },
  close: (ws) => {
    sockets.delete(ws);
    const { name } = ws.getUserData();
    const p = findPair(name);
    if (!p) return;
    p.viewers.delete(ws);
    forget(name, p);
  },
});

// Anything else: 404, as asp-relay answers an unknown path.
app.any('/*', (res) => {
  res.cork(() => res.writeStatus('404 Not Found').end('not_found\n'));
});

let listenSocket = null;
app.listen('127.0.0.1', port, (s) => {
  if (!s) {
    console.error(`uws-relay: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  listenSocket = s;
  console.log(`listening on ${cert ? 'wss' : 'ws'}://127.0.0.1:${uWS.us_socket_local_port(s)}`);
});

process.on('SIGTERM', () => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  for (const ws of [...sockets]) ws.end(1001, 'going_away');
  if (dropped) console.error(`uws-relay: ${dropped} messages skipped for receivers over ${BACKPRESSURE} bytes of backpressure`);
  process.exit(0);
});
