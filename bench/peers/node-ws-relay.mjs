// node-ws-relay: the smallest fair Node.js relay for asp-bench to compare
// against (bench/README.md, "Targets").
//
// A host connects to /pair/NAME/host and viewers to /pair/NAME/view; every
// message from the host goes to every viewer of the same NAME, and every
// message from a viewer goes to the host, as is (binary stays binary, text
// stays text).  No protocol logic, no queue bound, no keyframe cache: this
// is what "a relay in Node.js with the usual library" costs.  ws's
// permessage-deflate is off, as it is in asp-relay.
//
//   node node-ws-relay.mjs [--port N]      (0, the default, picks a port)
//
// Prints "listening on ws://127.0.0.1:PORT" once ready; SIGTERM stops it.

import { WebSocketServer } from 'ws';
import { forget, pair } from './pairs.mjs';

const args = process.argv.slice(2);
const portAt = args.indexOf('--port');
const port = portAt >= 0 ? Number(args[portAt + 1]) : 0;

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  // Accept whatever subprotocol the client offers first.
  handleProtocols: (protocols) => protocols.values().next().value ?? false,
});

wss.on('connection', (ws, req) => {
  const m = /^\/pair\/([A-Za-z0-9._-]{1,64})\/(host|view)$/.exec(req.url);
  if (!m) {
    ws.close(4018, 'not_found');
    return;
  }
  const [, name, role] = m;
  const p = pair(name);
  if (role === 'host') {
    if (p.host) p.host.terminate();
    p.host = ws;
    ws.on('message', (data, isBinary) => {
      for (const v of p.viewers) v.send(data, { binary: isBinary });
    });
    ws.on('close', () => {
      if (p.host === ws) p.host = null;
      forget(name, p);
    });
  } else {
    p.viewers.add(ws);
    ws.on('message', (data, isBinary) => {
      if (p.host) p.host.send(data, { binary: isBinary });
    });
    ws.on('close', () => {
      p.viewers.delete(ws);
      forget(name, p);
    });
  }
  ws.on('error', () => ws.terminate());
});

wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}`);
});

process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
});
