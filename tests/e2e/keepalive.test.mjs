// Keepalive: the relay pings a peer that has sent nothing for two thirds
// of --keepalive and drops one that stays silent (not even a pong) for all
// of it (docs/protocol.md, "Keepalive").  The relay's own timers do this,
// not lws's, whose keepalive list costs a walk of every connection per ping.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { HOST_USER, delay, within, withRelay } from './lib.mjs';

// A raw host past welcome; autoPong false makes it deaf to pings.
async function rawHost(relay, { autoPong }) {
  const desktop = `desk-ka-${autoPong ? 'p' : 'n'}`;
  const ws = new WebSocket(`${relay.url}/host`, 'asp.host.v1', { autoPong, rejectUnauthorized: false });
  const events = { pings: [], closed: null, opened: Date.now() };
  ws.on('ping', () => events.pings.push(Date.now() - events.opened));
  events.closedP = new Promise((resolve) => ws.on('close', (code) => {
    events.closed = { code, at: Date.now() - events.opened };
    resolve(events.closed);
  }));
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 15000, 'host handshake');
  const welcome = new Promise((resolve) => ws.once('message', (m) => resolve(JSON.parse(m))));
  ws.send(JSON.stringify({ type: 'hello', os: 'windows', image: 'system', asp_version: '1.1.0', desktop,
    name: 'ka', token: relay.token({ user: HOST_USER, desktop }) }));
  assert.equal((await within(welcome, 15000, 'welcome')).type, 'welcome');
  events.ws = ws;
  return events;
}

test('a peer deaf to pings is pinged after two thirds of --keepalive and dropped after it; one that answers stays', () =>
  withRelay({ args: ['--keepalive', '3'] }, async (relay) => {
    const deaf = await rawHost(relay, { autoPong: false });
    const live = await rawHost(relay, { autoPong: true });
    const closed = await within(deaf.closedP, 15000, 'the deaf host was not dropped');
    assert.ok(deaf.pings.length >= 1, `the deaf host was never pinged (closed at ${closed.at} ms)`);
    assert.ok(deaf.pings[0] >= 1500, `pinged too early: ${deaf.pings[0]} ms`);
    assert.equal(closed.code, 1006, 'dropped without a close frame');
    assert.ok(closed.at >= 2500, `dropped too early: ${closed.at} ms`);
    // The one that answers has been pinged too and is still there after
    // more than two keepalive periods.
    while (Date.now() - live.opened < 7000) await delay(250);
    assert.equal(live.closed, null, `the answering host was dropped: ${JSON.stringify(live.closed)}`);
    assert.ok(live.pings.length >= 2, `pings to the answering host: ${live.pings.length}`);
    live.ws.close(1000);
    await live.closedP;
  }));
