// Installed and run as an operator would (issue 14): `make install` into a
// temporary DESTDIR with PREFIX=/usr, then the installed asp-relay run from
// outside the source tree with nothing but --config.  Also: bad config
// lines refused with their line numbers, SIGHUP reloading the file and
// the certificate without dropping a WebSocket, JSON logs, man pages in
// step with --help, the systemd unit, asp-admin's environment and file,
// and the dashboard and alerts naming only series /metrics serves.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { BUILD, KIND, ROOT, freePort, media, selfSignedCert, withRelay } from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'asp-install-'));
const dest = path.join(tmp, 'root');
const usr = (...p) => path.join(dest, 'usr', ...p);
const installed = (name) => usr('bin', name);
const TOOLS = ['asp-relay', 'asp-host', 'asp-view', 'asp-admin'];
const MAN = { 'asp-relay': usr('share/man/man8/asp-relay.8') };
for (const t of TOOLS.slice(1)) MAN[t] = usr(`share/man/man1/${t}.1`);
const MARK = '<!-- the installed page -->';

// The same build the other tests use: make SAN=1 for build/san.
const buildArgs = () => (path.relative(ROOT, BUILD) === 'build/san' ? ['SAN=1'] : [`BUILD=${path.relative(ROOT, BUILD)}`]);
const { MAKEFLAGS, MAKELEVEL, MFLAGS, ...plainEnv } = process.env; // not a sub-make of make test's
const make = (...args) => execFileSync('make', ['--no-print-directory', '-s', ...buildArgs(), ...args],
  { cwd: ROOT, stdio: 'pipe', encoding: 'utf8', env: plainEnv });

before(() => {
  make('install', `DESTDIR=${dest}`, 'PREFIX=/usr');
  // Marks the installed page, to tell it from the source tree's.
  fs.appendFileSync(usr('share/asp-relay/www/index.html'), `${MARK}\n`);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeConf(dir, lines) {
  const file = path.join(dir, 'asp-relay.conf');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

// A fresh directory outside the source tree with a data dir in it.
function runDir() {
  const dir = fs.mkdtempSync(path.join(tmp, 'run-'));
  fs.mkdirSync(path.join(dir, 'data'));
  return dir;
}

// The installed relay with only --config, run from dir.
const installedRelay = (dir, conf, env = {}) => ({
  args: ['--config', conf], bare: true, bin: installed('asp-relay'), data: path.join(dir, 'data'), cwd: dir, env,
});

// The SHA-256 fingerprint of the certificate a new TLS connection sees.
function peerFingerprint(host, port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.once('error', reject);
  });
}
const certFingerprint = (file) => new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;

test('make install puts programs, page, man pages, config and unit in their FHS places', () => {
  for (const t of TOOLS) assert.ok(fs.statSync(installed(t)).mode & 0o111, `${installed(t)} is not executable`);
  for (const f of ['index.html', 'app.js', 'style.css']) assert.ok(fs.existsSync(usr('share/asp-relay/www', f)), f);
  for (const m of Object.values(MAN)) assert.ok(fs.existsSync(m), m);
  assert.ok(fs.existsSync(path.join(dest, 'etc/asp-relay/asp-relay.conf')), 'the example config in /etc');
  assert.ok(fs.existsSync(usr('lib/systemd/system/asp-relay.service')), 'the unit in /usr/lib/systemd/system');
  // Nothing but debug information names the source tree.
  const stripped = path.join(tmp, 'asp-relay.stripped');
  execFileSync('objcopy', ['--strip-debug', installed('asp-relay'), stripped]);
  assert.ok(!fs.readFileSync(stripped).includes(Buffer.from(ROOT)), `the installed relay names ${ROOT}`);
  const unit = fs.readFileSync(usr('lib/systemd/system/asp-relay.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/asp-relay --config \/etc\/asp-relay\/asp-relay.conf$/m);
});

test('the installed relay, run outside the tree with only --config, listens where the file says and serves the installed page', async () => {
  const dir = runDir();
  const port = await freePort('127.0.0.2');
  const conf = writeConf(dir, ['# from the test', `listen = 127.0.0.2:${port}`, `data = ${path.join(dir, 'data')}`]);
  await withRelay(installedRelay(dir, conf), async (relay) => {
    assert.equal(relay.address, '127.0.0.2', relay.describe());
    assert.equal(relay.port, port, relay.describe());
    const page = await relay.get('/');
    assert.equal(page.status, 200);
    assert.ok(page.body.includes(MARK), `GET / is not the installed page:\n${page.body.slice(-200)}`);
    assert.ok(fs.existsSync(path.join(dir, 'data', 'relay.db')), 'the store is in the data dir the file names');
    const host = await relay.host();
    const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
    await owner.echo();
  });
});

test('the installed example config passes --check; bad lines are refused with file and line number; flags override the file', async () => {
  const example = path.join(dest, 'etc/asp-relay/asp-relay.conf');
  const ok = spawnSync(installed('asp-relay'), ['--config', example, '--check'], { cwd: tmp, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const dir = runDir();
  const cases = [
    [['listen = 127.0.0.1:0', '', 'queue-bytes = 12Q'], 3, /bad value for queue-bytes: '12Q'/],
    [['# ok', 'listen = 127.0.0.1:0', 'data = x', 'colour = blue'], 4, /unknown key 'colour'/],
    [['listen = 127.0.0.1:0', 'no equals sign here'], 2, /want KEY = VALUE/],
    [['listen = nowhere'], 1, /bad value for listen: 'nowhere'/],
    [['[server]', 'listen = 127.0.0.1:0'], 2, /keys go before any section/],
  ];
  for (const [lines, line, re] of cases) {
    const conf = writeConf(dir, lines);
    const r = spawnSync(installed('asp-relay'), ['--config', conf], { cwd: dir, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2, `${lines.join(' | ')}: exit ${r.status}\n${r.stderr}`);
    assert.ok(r.stderr.includes(`${conf}:${line}: `), `${lines.join(' | ')}: want ${conf}:${line}\n${r.stderr}`);
    assert.match(r.stderr, re);
  }
  // A bad value is refused even where a flag would override it.
  let conf = writeConf(dir, ['listen = nowhere']);
  const r = spawnSync(installed('asp-relay'), ['--config', conf, '--listen', '127.0.0.1:0', '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /:1: bad value for listen/);
  // A flag overrides a good one.
  conf = writeConf(dir, ['listen = 127.0.0.2:1', `data = ${path.join(dir, 'data')}`]);
  const opts = installedRelay(dir, conf);
  opts.args.push('--listen', '127.0.0.1:0');
  await withRelay(opts, async (relay) => {
    assert.equal(relay.address, '127.0.0.1', relay.describe());
    assert.notEqual(relay.port, 1);
  });
});

test('SIGHUP: new TLS connections see the new certificate, an open WebSocket stays up, limits change, listen is kept', async () => {
  const dir = runDir();
  const a = selfSignedCert();
  const b = selfSignedCert();
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.copyFileSync(a.cert, cert);
  fs.copyFileSync(a.key, key);
  const base = [`data = ${path.join(dir, 'data')}`, `tls-cert = ${cert}`, `tls-key = ${key}`];
  const conf = writeConf(dir, ['listen = 127.0.0.1:0', ...base, 'max-message = 4M']);
  try {
    await withRelay(installedRelay(dir, conf), async (relay) => {
      assert.equal(relay.scheme, 'wss');
      assert.equal(await peerFingerprint(relay.address, relay.port), certFingerprint(a.cert));
      const host = await relay.host();
      const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
      const big = media({ kind: KIND.control, seq: 1, payload: Buffer.alloc(3 << 20, 1) });
      host.sendBinary(big);
      assert.equal((await owner.nextBinary()).size, big.length);

      // Renewed in place, as certbot does; a smaller limit; another port.
      fs.copyFileSync(b.cert, cert);
      fs.copyFileSync(b.key, key);
      writeConf(dir, ['listen = 127.0.0.1:1', ...base, 'max-message = 1M']);
      process.kill(relay.pid, 'SIGHUP');
      await relay.proc.waitForStderr(/ reload config=\S+ tls=reloaded/);
      assert.match(relay.proc.stderr, /reload-kept setting=listen restart=needed/);
      assert.equal(await peerFingerprint(relay.address, relay.port), certFingerprint(b.cert), 'new connections see the new certificate');
      assert.equal(owner.close, null, 'the open WebSocket was dropped');
      await owner.echo();
      host.sendBinary(media({ kind: KIND.control, seq: 2, payload: Buffer.alloc(1000, 2) }));
      assert.equal((await owner.nextBinary((m) => m.hdr.seq === 2)).size, 1032, 'media still flows');

      // A bad file keeps everything, certificate included.
      fs.writeFileSync(key, 'not a key\n');
      writeConf(dir, ['listen = 127.0.0.1:0', ...base, 'max-message = 2M']);
      process.kill(relay.pid, 'SIGHUP');
      await relay.proc.waitForStderr(/reload-error kept=all tls-cert=/);
      writeConf(dir, ['listen = 127.0.0.1:0', ...base, 'queue-msgs = lots']);
      process.kill(relay.pid, 'SIGHUP');
      await relay.proc.waitForStderr(new RegExp(`reload-error kept=all why=${conf}:5: bad value for queue-msgs`));
      assert.equal(await peerFingerprint(relay.address, relay.port), certFingerprint(b.cert));
      await owner.echo();
      host.sendBinary(big);
      await host.expectRefusal('too_large', 4010);
    });
  } finally {
    fs.rmSync(a.dir, { recursive: true, force: true });
    fs.rmSync(b.dir, { recursive: true, force: true });
  }
});

test('--log-format json: every log line is one JSON object with the text format\'s fields, and no token or code', async () => {
  const dir = runDir();
  const conf = writeConf(dir, ['listen = 127.0.0.1:0', `data = ${path.join(dir, 'data')}`, 'log-format = json']);
  let proc = null;
  let secrets = [];
  await withRelay(installedRelay(dir, conf), async (relay) => {
    const host = await relay.host();
    host.send({ type: 'share' });
    const code = (await host.next('code')).code;
    const guest = await relay.join({ code }, { label: 'guest' });
    await guest.echo();
    await guest.closeGracefully();
    await relay.proc.waitForStderr(/"event":"collab-leave"/);
    secrets = [code, code.replace(/-/g, ''), host.welcome.owner_key];
    proc = relay.proc;
  });
  const stderr = proc.stderr;
  const lines = stderr.split('\n').filter((l) => l.length);
  assert.ok(lines.length >= 5, stderr);
  const events = lines.map((l) => {
    let o;
    assert.doesNotThrow(() => { o = JSON.parse(l); }, `not JSON: ${l}`);
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, l);
    assert.equal(typeof o.event, 'string', l);
    for (const v of Object.values(o)) assert.equal(typeof v, 'string', l);
    return o;
  });
  const join = events.find((e) => e.event === 'collab-join');
  assert.ok(join && /^desk-/.test(join.desktop), `collab-join with its desktop:\n${stderr}`);
  assert.ok(events.some((e) => e.event === 'shutdown' && e.connections !== undefined), stderr);
  for (const s of secrets) assert.ok(!stderr.includes(s), `the log carries a secret (${s.slice(0, 6)}…)`);
});

// Normalises roff source to the text a reader sees, enough to find options.
const manText = (file) => fs.readFileSync(file, 'utf8').replace(/\\f[BIRP]/g, '').replace(/\\-/g, '-').replace(/\\e/g, '\\');

test('every option each program\'s --help names is in its man page, and the pages are clean roff', () => {
  for (const t of TOOLS) {
    const help = execFileSync(installed(t), ['--help'], { encoding: 'utf8' });
    const opts = new Set(help.match(/(?<![\w-])--[a-z][a-z0-9-]*/g));
    assert.ok(opts.size >= 4, `${t} --help names too few options: ${[...opts]}`);
    const page = manText(MAN[t]);
    const missing = [...opts].filter((o) => !new RegExp(`(?<![\\w-])${o}(?![\\w-])`).test(page));
    assert.deepEqual(missing, [], `${MAN[t]} lacks options of ${t} --help`);
    for (const section of ['SYNOPSIS', 'OPTIONS', 'EXIT STATUS', 'FILES', 'SIGNALS']) {
      assert.match(page, new RegExp(`^\\.SH ${section}$`, 'm'), `${MAN[t]} has no ${section}`);
    }
    const lint = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', MAN[t]], { encoding: 'utf8' });
    if (lint.error) continue; // groff is optional; the option check above is the contract
    assert.equal(lint.status, 0, lint.stderr);
    assert.equal(lint.stderr, '', `${MAN[t]}: groff warns`);
  }
});

test('systemd-analyze verify accepts the unit, which has the hardening an operator expects', (t) => {
  const unitFile = usr('lib/systemd/system/asp-relay.service');
  const unit = fs.readFileSync(unitFile, 'utf8');
  for (const want of [/^ExecReload=.*kill -HUP \$MAINPID$/m, /^StateDirectory=asp-relay$/m, /^DynamicUser=yes$/m,
    /^NoNewPrivileges=yes$/m, /^ProtectSystem=strict$/m, /^ProtectHome=yes$/m, /^PrivateTmp=yes$/m,
    /^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$/m, /^LimitNOFILE=65536$/m, /^Restart=on-failure$/m]) {
    assert.match(unit, want);
  }
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip(`systemd-analyze cannot run in this container (${probe.error ? probe.error.message : probe.stderr.trim()})`);
    return;
  }
  // The unit as installed, its binary path under DESTDIR so verify can
  // check that what ExecStart names exists and is executable.
  const dir = fs.mkdtempSync(path.join(tmp, 'unit-'));
  const copy = path.join(dir, 'asp-relay.service');
  fs.writeFileSync(copy, unit.replace(/^ExecStart=\/usr\/bin\//m, `ExecStart=${usr('bin')}/`));
  const r = spawnSync('systemd-analyze', ['verify', copy], {
    encoding: 'utf8', env: { ...process.env, MANPATH: usr('share/man') },
  });
  assert.equal(r.status, 0, `systemd-analyze verify: ${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trim(), '', `systemd-analyze verify warns:\n${r.stderr}`);
});

test('asp-admin takes the relay and token from $ASP_RELAY/$ASP_TOKEN or ~/.config/asp-relay/admin.conf', () => withRelay(async (relay) => {
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const token = relay.token({ user: 'ops', role: 'admin' });
  const run = (env, args = ['policy', 'get', 'alice']) => spawnSync(installed('asp-admin'), args, {
    encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home, ...env }, timeout: 20000,
  });
  let r = run({ ASP_RELAY: relay.httpUrl, ASP_TOKEN: token });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^alice help=\w+ collab=on$/m);

  const confDir = path.join(home, '.config', 'asp-relay');
  fs.mkdirSync(confDir, { recursive: true });
  fs.writeFileSync(path.join(confDir, 'admin.conf'), `# mine\nrelay = ${relay.httpUrl}\ntoken = ${token}\n`, { mode: 0o600 });
  r = run({});
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^alice help=\w+ collab=on$/m);
  // The environment beats the file, and an option beats both.
  r = run({ ASP_RELAY: 'http://127.0.0.1:1' });
  assert.equal(r.status, 5, r.stderr);
  r = run({ ASP_RELAY: 'http://127.0.0.1:1' }, ['--relay', relay.httpUrl, 'policy', 'get', 'alice']);
  assert.equal(r.status, 0, r.stderr);

  fs.writeFileSync(path.join(confDir, 'admin.conf'), `relay = ${relay.httpUrl}\ntokn = ${token}\n`);
  r = run({});
  assert.equal(r.status, 2, r.stderr);
  assert.ok(r.stderr.includes(`${path.join(confDir, 'admin.conf')}:2:`), r.stderr);
  assert.ok(!r.stderr.includes(token), 'the error shows the token');

  const help = execFileSync(installed('asp-admin'), ['--help'], { encoding: 'utf8' });
  for (const s of ['$ASP_RELAY', '$ASP_TOKEN', '~/.config/asp-relay/admin.conf']) assert.ok(help.includes(s), `--help lacks ${s}`);
}));

// Metric names /metrics serves, and label="value" pairs seen on them.
function metricIndex(text) {
  const names = new Set();
  const labels = new Set();
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_][a-z0-9_]*)(\{([^}]*)\})? /);
    if (!m) continue;
    names.add(m[1]);
    for (const l of (m[3] || '').matchAll(/(\w+)="([^"]*)"/g)) labels.add(`${m[1]}:${l[1]}=${l[2]}`);
  }
  return { names, labels };
}

// Selectors in PromQL text: series names (asp_*) and exact label matches.
function promqlRefs(expr) {
  const refs = [];
  for (const m of expr.matchAll(/\b(asp_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const matchers = [...(m[3] || '').matchAll(/(\w+)="([^"$]*)"/g)].map((l) => [l[1], l[2]])
      .filter(([k]) => k !== 'job' && k !== 'instance');
    refs.push({ name: m[1], matchers });
  }
  return refs;
}

test('histograms fill with traffic, and every series the Grafana dashboard and Prometheus alerts name is served by /metrics', () => withRelay(async (relay) => {
  // The build tree's relay, without --web, still finds relay/www.
  const page = await relay.get('/');
  assert.equal(page.status, 200);
  assert.ok(page.body.includes('<html'), 'GET / from the build tree');

  const host = await relay.host();
  const owner = await relay.join({ owner_key: host.welcome.owner_key }, { label: 'owner' });
  for (let seq = 1; seq <= 20; seq++) host.sendBinary(media({ kind: KIND.control, seq, payload: Buffer.alloc(4000, seq) }));
  await owner.nextBinary((m) => m.hdr.seq === 20);
  const text = (await relay.get('/metrics')).body;
  const value = (series) => Number((text.match(new RegExp(`^${series.replace(/[{}+"]/g, '\\$&')} (\\S+)$`, 'm')) || [])[1]);
  assert.ok(value('asp_forward_latency_seconds_count') >= 20, text);
  assert.ok(value('asp_viewer_queue_depth_messages_count') >= 20, text);
  assert.ok(value('asp_join_seconds_count') >= 1, text);
  for (const h of ['asp_forward_latency_seconds', 'asp_viewer_queue_depth_messages', 'asp_join_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${h} histogram$`, 'm'));
    const buckets = [...text.matchAll(new RegExp(`^${h}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]);
    assert.ok(buckets.length >= 8, `${h}: ${buckets.length} buckets`);
    assert.equal(buckets.at(-1)[0], '+Inf');
    assert.equal(buckets.at(-1)[1], value(`${h}_count`), `${h}: +Inf is the count`);
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(buckets[i][1] >= buckets[i - 1][1], `${h}: buckets are cumulative`);
      if (i < buckets.length - 1) assert.ok(Number(buckets[i][0]) > Number(buckets[i - 1][0]), `${h}: bounds rise`);
    }
  }
  assert.match(text, /^asp_build_info\{version="[^"]+",revision="[^"]+"\} 1$/m);

  const { names, labels } = metricIndex(text);
  const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/grafana-dashboard.json'), 'utf8'));
  const exprs = [];
  const walk = (o) => {
    if (Array.isArray(o)) o.forEach(walk);
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) (k === 'expr' || k === 'query') && typeof v === 'string' ? exprs.push(v) : walk(v);
  };
  walk(dashboard);
  const alerts = fs.readFileSync(path.join(ROOT, 'docs/prometheus-alerts.yml'), 'utf8');
  const alertExprs = [...alerts.matchAll(/^\s+expr: (?:\|\n((?:\s{10,}.*\n)+)|(.*)\n)/gm)].map((m) => m[1] || m[2]);
  assert.ok(alertExprs.length >= 3, 'relay down, slow viewers and refusals alerts');
  assert.match(alerts, /up\{job="asp-relay"\} == 0/, 'a relay-down alert');
  for (const [what, list] of [['docs/grafana-dashboard.json', exprs], ['docs/prometheus-alerts.yml', alertExprs]]) {
    const refs = list.flatMap(promqlRefs);
    assert.ok(refs.length >= 5, `${what} names ${refs.length} series`);
    for (const { name, matchers } of refs) {
      assert.ok(names.has(name), `${what} names ${name}, which /metrics does not serve`);
      for (const [k, v] of matchers) assert.ok(labels.has(`${name}:${k}=${v}`), `${what}: ${name}{${k}="${v}"} is not served`);
    }
  }
}));

test('make uninstall removes what make install put, and keeps the configuration', () => {
  make('uninstall', `DESTDIR=${dest}`, 'PREFIX=/usr');
  for (const t of TOOLS) assert.ok(!fs.existsSync(installed(t)), t);
  assert.ok(!fs.existsSync(usr('share/asp-relay')));
  for (const m of Object.values(MAN)) assert.ok(!fs.existsSync(m), m);
  assert.ok(!fs.existsSync(usr('lib/systemd/system/asp-relay.service')));
  assert.ok(fs.existsSync(path.join(dest, 'etc/asp-relay/asp-relay.conf')), 'the operator\'s settings stay');
});
