// The tools' side of issue 5, with the real programs only: asp-host asks
// for help and accepts the invitation by itself (--request-help,
// --accept-assist), asp-admin lists, accepts and ends the request, asp-view
// joins as the administrator; and asp-host survives its relay being killed
// and restarted (reconnect with backoff), or exits with --no-reconnect.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Proc, bin, delay, withRelay, withRestartable, parseKv, selfSignedCert, HOST_USER } from './lib.mjs';

const ADMIN = 'root';
const cert = selfSignedCert();
after(() => fs.rmSync(cert.dir, { recursive: true, force: true }));
const TLS = ['--tls-cert', cert.cert, '--tls-key', cert.key];

// asp-admin against this relay, signing its own admin token from the data
// dir unless args bring a --token.
function aspAdmin(relay, args) {
  const auth = args.includes('--token') ? [] : ['--data', relay.data];
  const p = new Proc('asp-admin', bin('asp-admin'),
    ['--relay', relay.httpUrl, ...auth, ...(relay.tls ? ['--insecure'] : []), ...args]);
  relay.tools.push(p);
  return p;
}

// Runs asp-admin to completion; its stdout lines.
async function admin(relay, args) {
  const p = aspAdmin(relay, args);
  await p.expectExit(0);
  return p.lines;
}

const metricsOf = (proc, what) => {
  const line = proc.lines.find((l) => l.startsWith(`${what}: `));
  assert.ok(line, `no ${what}: line\n${proc.describe()}`);
  return parseKv(line);
};

test('user-initiated assistance with the tools: asp-host asks and accepts, asp-admin accepts and ends, asp-view operates as administrator', () => withRelay(async (relay) => {
  await relay.policy(HOST_USER, { help: true });
  const host = relay.aspHost(['--desktop', 'desk-help', '--request-help', '--accept-assist', '--frame-bytes', '4096']);
  await host.waitForLine(/^welcome: owner_key=/);
  await host.waitForLine(/^notify: assist_requested Your request for help was sent to the administrators\.$/);
  const [, id, expires] = await host.waitForLine(/^assist-request: id=([0-9a-f]{16}) expires=(\d+)$/);
  const now = Date.now() / 1000;
  assert.ok(Math.abs(Number(expires) - now - 180 * 60) < 120, `expires=${expires}, now ${now}\n${host.describe()}`);

  const listed = (await admin(relay, ['assist', 'list'])).find((l) => l.startsWith(`${id} `));
  assert.ok(listed, `asp-admin assist list does not show ${id}\n${host.describe()}`);
  assert.match(listed, /desktop=desk-help user=dana state=pending /);

  // The invitation belongs to the administrator who accepts: root signs
  // asp-admin in with the token asp-view will use.
  const rootToken = relay.token({ user: ADMIN, role: 'admin' });
  const accepted = await admin(relay, ['--token', rootToken, 'assist', 'accept', id]);
  assert.match(accepted.join('\n'), new RegExp(`^${id} .*state=invited`, 'm'));
  await host.waitForLine(new RegExp(`^assist-invite: id=${id} admin=${ADMIN}$`));
  // --accept-assist answered the invitation; the relay confirms it.
  await host.waitForLine(/^notify: assist_accepted /);

  const view = relay.aspView(['--assist', id, '--token', rootToken,
    '--name', 'Root', '--send-input', '--frames', '1000000', '--seconds', '60']);
  await view.waitForLine(/^joined: assist$/);
  await host.waitForLine(/^notify: assist_started Remote assistance started\. \(root\)$/);
  await view.waitForLine(/^input-sent: 6$/);
  // The administrator's scripted click and keystroke reach the desktop.
  await host.waitForLine(/^input: pointer_move x=10 y=20 /);
  await host.waitForLine(/^input: key_down x=0 y=0 code=65 /);
  await delay(2000); // about 60 frames at 30 fps

  await admin(relay, ['assist', 'end', id]);
  await view.expectExit(3);
  assert.match(view.stderr, /^Remote assistance ended\.$/m, view.describe());
  const seen = metricsOf(view, 'metrics');
  assert.ok(seen.frames >= 30, `the administrator saw ${seen.frames} video messages\n${view.describe()}`);
  assert.equal(seen.errors, 0, view.describe());
  await host.waitForLine(/^notify: assist_ended Remote assistance ended\.$/);

  const audit = await admin(relay, ['audit', '--limit', '1000']);
  // One line per event, "TIME ACTOR EVENT DESKTOP DETAIL": the request's
  // whole life, with who did each step.
  const life = audit.filter((l) => l.endsWith(` desk-help ${id}`)).map((l) => {
    assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /, audit.join('\n'));
    return l.split(' ').slice(1, 3).join(' ');
  });
  assert.deepEqual(life, ['dana assist-create', `${ADMIN} invited`, 'dana accepted', `${ADMIN} active`,
    'asp-admin ended'], audit.join('\n'));

  host.send('quit');
  await host.expectExit(0);
  host.assertNoSanitizerReport();
  view.assertNoSanitizerReport();
}));

for (const tls of [false, true]) {
  test(`asp-host reconnects by itself after its relay is killed and restarted${tls ? ' (wss://)' : ''}: same owner key, same code, and a guest then decodes its video`, () => withRestartable(async (relay) => {
    const { host, key, code } = await relay.aspHostReady(['--desktop', 'desk-back', '--share', '--size', '320x240']);
    await relay.kill();
    await host.waitForLine(/^reconnecting in \d+ ms: /);
    await relay.restart();

    await host.waitForLine(/^reconnected$/, 30000);
    const [, key2] = await host.waitForLine(/^welcome: owner_key=([0-9a-f]{32})$/);
    assert.equal(key2, key, host.describe());
    const [, code2] = await host.waitForLine(/^code: (\S+)$/);
    assert.equal(code2, code, host.describe());

    const guest = relay.aspView(['--code', code, '--frames', '20', '--seconds', '30']);
    await guest.waitForLine(/^joined: guest$/);
    await guest.expectExit(0);
    const dec = metricsOf(guest, 'decode');
    assert.equal(dec.errors, 0, guest.describe());
    assert.equal(dec.first_ok, 1, guest.describe());
    assert.equal(metricsOf(guest, 'metrics').first_keyframe, 1, guest.describe());
    assert.equal(host.exit, null, `asp-host exited\n${host.describe()}`);
    guest.assertNoSanitizerReport();
    assert.equal((await host.stop()).code, 0, host.describe());
    host.assertNoSanitizerReport();
  }), tls ? TLS : []);
}

test('asp-host retries a vanished relay with doubling, jittered delays and leaves cleanly on SIGTERM meanwhile', () => withRestartable(async (relay) => {
  const { host } = await relay.aspHostReady(['--desktop', 'desk-wait', '--frame-bytes', '4096']);
  await relay.kill();
  const waits = [Number((await host.waitForLine(/^reconnecting in (\d+) ms: the connection was lost/))[1])];
  // The relay is still down: each attempt fails and the next waits about
  // twice as long (0.25 s doubling, each drawn from the upper half).
  for (let i = 1; i < 4; i++) waits.push(Number((await host.waitForLine(/^reconnecting in (\d+) ms: /))[1]));
  waits.forEach((ms, i) => {
    const d = 250 * 2 ** i;
    assert.ok(ms >= d / 2 - 1 && ms <= d, `retry ${i + 1} after ${ms} ms, want ${d / 2}-${d}\n${host.describe()}`);
  });
  const ex = await host.stop();
  assert.equal(ex.code, 0, host.describe());
  host.assertNoSanitizerReport();
  await relay.restart();
}));

test('asp-host --no-reconnect exits once its relay is gone', () => withRestartable(async (relay) => {
  const { host } = await relay.aspHostReady(['--desktop', 'desk-once', '--no-reconnect', '--frame-bytes', '4096']);
  await relay.kill();
  const ex = await host.wait(15000);
  assert.ok(ex.code === 1 || ex.code === 5, `exit code ${ex.code}\n${host.describe()}`);
  assert.equal(host.countLines(/^reconnecting/), 0, host.describe());
  host.assertNoSanitizerReport();
  await relay.restart();
}));

test('asp-host replaced by a newer connection for its desktop exits 3 with the relay\'s message and does not reconnect', () => withRelay(async (relay) => {
  const { host, key } = await relay.aspHostReady(['--desktop', 'desk-twice', '--frame-bytes', '4096']);
  const newer = await relay.host({ desktop: 'desk-twice' });
  assert.equal(newer.welcome.owner_key, key);
  await host.expectExit(3);
  assert.match(host.stderr, /^This desktop connected again; this older connection was closed\.$/m, host.describe());
  assert.equal(host.countLines(/^reconnecting/), 0, host.describe());
  host.assertNoSanitizerReport();
}));
