// The desktop user's client (owner.html, opened from asp-host's
// owner-link) and the administrator's console (/admin, opened from
// `asp-admin console-link`) in Debian's headless Chromium, against the
// real relay and the real asp-host (its synthetic desktop, H.264), which
// prints every input event it receives.  Every flow is clicked with the
// words a person reads; what the relay refuses is checked word for word.
// The tests also take the screenshots docs/ shows (ASP_DOCS_SCREENSHOT=1).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { BUSY_MESSAGE, CODE_RE, ROOT, bin, delay, withRelay } from './lib.mjs';
import { DETAIL, PAGE, canvasStats, describePage, join, launchBrowser, mintToken, openPage, waitFor } from './browser-lib.mjs';

const END_QUESTION = 'Are you sure you want to end the shared collaboration task for this cloud desktop?';
const { ended: ENDED, badCode: BAD_CODE, noPermission: NO_COLLAB } = PAGE;
const EXPIRED = 'Your request for help expired. You must submit a new request.';
const ASSIST_ENDED = 'Remote assistance ended.';
const DESKTOP_VIEW = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
// Into build/, or docs/ with ASP_DOCS_SCREENSHOT=1 (so a test run leaves
// the tree as it was).
const shot = (name) => path.join(ROOT, process.env.ASP_DOCS_SCREENSHOT ? 'docs' : 'build', name);

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const button = (page, name) => page.getByRole('button', { name, exact: true });

async function aspAdmin(relay, args) {
  const { stdout } = await promisify(execFile)(bin('asp-admin'), ['--relay', relay.httpUrl, ...args], { encoding: 'utf8' });
  return stdout.trim();
}

// asp-host for Dana's desktop, not sharing; its owner-link.
async function danaDesktop(relay, desktop) {
  const token = await mintToken(relay, 'dana', desktop);
  const host = relay.aspHost(['--desktop', desktop, '--name', 'Dana\'s desktop', '--token', token, '--source', 'synthetic']);
  const link = (await host.waitForLine(/^owner-link: (\S+)$/))[1];
  const key = (await host.waitForLine(/^welcome: owner_key=([0-9a-f]{32})$/))[1];
  assert.equal(link, `${relay.httpUrl}/owner.html#key=${key}&token=${token}`, 'owner-link opens owner.html signed in');
  return { host, link };
}

async function decoding(page, what) {
  const first = await waitFor(page, `${what} shows the decoded desktop`, async (p) => {
    const s = await canvasStats(p);
    return s.frames > 0 && s.variance > DETAIL && s;
  }, 30000);
  await waitFor(page, `${what}: the desktop keeps moving`, async (p) => (await canvasStats(p)).frames >= first.frames + 10, 30000);
}

const visible = (page, text) => page.getByText(text, { exact: true }).first().isVisible();

async function waitText(page, text, what = `"${text}" is shown`, ms = 20000) {
  await waitFor(page, what, (p) => visible(p, text), ms);
}

async function openBall(page, item) {
  if (await page.isHidden('#ball-menu')) await page.click('#ball-toggle');
  await button(page, item).click();
}

// Clicks the middle of the canvas; a desktop-pixel point.
async function clickCanvas(page) {
  const box = await page.locator('#screen').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
}

async function openConsole(relay, viewport = DESKTOP_VIEW) {
  const link = await aspAdmin(relay, ['--data', relay.data, 'console-link', '--user', 'root']);
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/admin#token=[\w-]+\.[\w-]+$/);
  const page = await openPage(browser, link, { viewport });
  await waitFor(page, 'the console is live', async (p) => (await p.textContent('#live')) === 'Live');
  return page;
}

async function closeAll(...pages) {
  for (const p of pages) await p?.context().close();
}

test('the owner shares from the ball: copy, a guest, control, end with the question, discard, join', async () => {
  await withRelay({ args: ['--test-clock'] }, async (relay) => {
    let owner; let guest; let admin;
    try {
      await relay.policy('dana', { collab: false });
      const { host, link } = await danaDesktop(relay, 'desk-own');
      owner = await openPage(browser, link, { viewport: DESKTOP_VIEW, permissions: ['clipboard-read', 'clipboard-write'] });
      assert.ok(!(await owner.evaluate(() => location.hash)), 'the token left the address bar');
      await decoding(owner, 'the owner');

      // Without the permission the relay's words are shown, then the
      // policy page grants it and the same click shares.
      await openBall(owner, 'Shared Collaboration');
      await button(owner, 'Start Collaboration').click();
      await waitFor(owner, 'the refusal', async (p) => (await p.textContent('#collab-error')) === NO_COLLAB);
      admin = await openConsole(relay);
      await button(admin, 'Collaboration policy').click();
      await admin.fill('#policy-search', 'dana');
      await button(admin, 'Search').click();
      const box = admin.getByRole('checkbox', { name: 'User Stream Collaboration for dana' });
      await box.waitFor();
      assert.equal(await box.isChecked(), false);
      await box.check();
      await waitText(admin, 'User Stream Collaboration is now on for dana.');
      assert.equal((await relay.api('GET', '/policy/dana')).body.collab, true);

      await button(owner, 'Start Collaboration').click();
      await waitFor(owner, 'the code is shown', async (p) => CODE_RE.test(await p.textContent('#collab-code')));
      const code = await owner.textContent('#collab-code');
      assert.equal((await host.waitForLine(/^code: (\S+)$/))[1], code, 'the host is told the code');
      await button(owner, 'Copy').click();
      await waitText(owner, 'Copied');
      assert.equal(await owner.evaluate(() => navigator.clipboard.readText()), code, 'the clipboard holds the code');
      // The picture shows the ball, not the earlier refusal's toast.
      await waitFor(owner, 'the refusal\'s toast is gone', async (p) => (await p.locator('.toast.error').count()) === 0);
      await owner.screenshot({ path: shot('owner-ball.png') });

      // A guest joins from the home page's Shared Collaboration icon.
      guest = await openPage(browser, `${relay.httpUrl}/#token=${await mintToken(relay, 'alice')}`, { viewport: DESKTOP_VIEW });
      await join(guest, code, 'Alice');
      await decoding(guest, 'the guest');
      await waitText(owner, 'Joined Shared Collaboration: Alice', 'the owner\'s toast');
      await host.waitForLine(/^notify: collab_joined Joined Shared Collaboration \(Alice\)$/);
      await waitText(owner, 'Alice');

      // Control: the guest's click reaches the host only while granted.
      const inputs = () => host.countLines(/^input: pointer_down /);
      await clickCanvas(guest);
      await delay(1000);
      assert.equal(inputs(), 0, 'a guest without control does not reach the host');
      await button(owner, 'Give control').click();
      await waitFor(guest, 'the guest has control', async (p) => (await p.textContent('#control-indicator')) === 'You have control');
      await clickCanvas(guest);
      await host.waitForLine(/^input: pointer_down x=\d+ y=\d+ code=0 mods=0$/);
      await button(owner, 'Take back control').click();
      await waitFor(guest, 'view only again', async (p) => (await p.textContent('#control-indicator')) === 'View only');
      const granted = inputs();
      await clickCanvas(guest);
      await delay(1000);
      assert.equal(inputs(), granted, 'after Take back control the guest reaches the host no more');
      await clickCanvas(owner);
      await waitFor(owner, 'the owner\'s own click reaches the host', async () => inputs() > granted);

      // End Collaboration asks first; Cancel keeps the guest in.
      await button(owner, 'End Collaboration').click();
      await waitText(owner, END_QUESTION);
      await owner.screenshot({ path: shot('owner-end-confirm.png') });
      await button(owner, 'Cancel').click();
      await delay(500);
      assert.ok(!(await guest.isHidden('#watch-view')), 'Cancel leaves the guest watching');
      await button(owner, 'End Collaboration').click();
      await button(owner, 'End Now').click();
      await waitFor(guest, 'the guest is told', async (p) => (await p.textContent('#join-error')) === ENDED);
      await waitText(owner, 'Stopped Shared Collaboration: Alice', 'the owner\'s toast');
      await host.waitForLine(/^notify: collab_ended The shared collaboration ended\.$/);
      const audit = (await relay.api('GET', '/audit?limit=100')).body.events;
      assert.ok(audit.some((e) => e.event === 'collab-end' && e.actor === 'dana' && e.detail === 'owner'),
        `the end is audited with the owner as actor: ${JSON.stringify(audit)}`);

      // Discard: a new code, then gone; the old one is refused verbatim.
      await button(owner, 'Start Collaboration').click();
      await waitFor(owner, 'a new code', async (p) => CODE_RE.test(await p.textContent('#collab-code')));
      const second = await owner.textContent('#collab-code');
      await button(owner, 'Discard code').click();
      await waitText(owner, 'The collaboration code was discarded.');
      assert.ok(await owner.isHidden('#collab-code-box'));
      await join(guest, second, 'Alice');
      await waitFor(guest, 'the refusal', async (p) => (await p.textContent('#join-error')) === BAD_CODE);

      // Join Collaboration: from the ball, into someone's desktop (here
      // Dana's own, shared again), in a new tab.
      await button(owner, 'Start Collaboration').click();
      await waitFor(owner, 'a third code', async (p) => CODE_RE.test(await p.textContent('#collab-code')));
      const third = await owner.textContent('#collab-code');
      await button(owner, 'Join Collaboration').click();
      await owner.fill('#code', third);
      await owner.fill('#name', 'Dana again');
      const [tab] = await Promise.all([owner.context().waitForEvent('page'), button(owner, 'Join Now').click()]);
      await waitFor(tab, 'the new tab joined', async (p) => !(await p.isHidden('#watch-view')));
      await waitText(owner, 'Joined Shared Collaboration: Dana again');
      await tab.close();
    } catch (e) {
      for (const p of [owner, guest, admin]) if (p) e.message += `\n${await describePage(p)}`;
      throw e;
    } finally {
      await closeAll(owner, guest, admin);
    }
  });
});

test('remote assistance in the browser: Send Now, Accept, Accept Request, Open, Exit Assistance; expiry; admin first', async () => {
  await withRelay({ args: ['--test-clock'] }, async (relay) => {
    let owner; let admin;
    try {
      await relay.policy('dana', { help: true, collab: true });
      const { host, link } = await danaDesktop(relay, 'desk-help');
      owner = await openPage(browser, link, { viewport: DESKTOP_VIEW });
      admin = await openConsole(relay);
      await decoding(owner, 'the owner');
      await waitFor(admin, 'the desktop is listed', async (p) => (await p.locator('#desktops tr[data-desktop="desk-help"]').count()) === 1);
      const row = admin.locator('#desktops tr[data-desktop="desk-help"]');
      assert.match(await row.textContent(), /desk-help \(Dana's desktop\)danaOnlineNot sharing–None/);

      await openBall(owner, 'Remote Assistance');
      await waitText(owner, 'Remote Assistance Request');
      await button(owner, 'Send Now').click();
      await waitFor(owner, 'the pending state with the time left',
        async (p) => /^Time left: (2 h 59 min|3 h 0 min) of 180 minutes$/.test(await p.textContent('#assist-left')));
      await button(admin, 'Remote assistance').click();
      const req = admin.locator('#requests tbody tr');
      await waitFor(admin, 'the request appears without reloading', async () => (await req.count()) === 1);
      assert.match(await req.textContent(), /^danadesk-help.*Waiting for an administrator(2 h 59 min|3 h 0 min)/);
      await admin.screenshot({ path: shot('console.png') });

      await button(admin, 'Accept: dana on desk-help').click();
      await waitFor(owner, 'the user\'s window', async (p) => p.locator('#invite').isVisible());
      assert.equal(await owner.textContent('#invite-title'), 'Remote Assistance Request');
      await button(owner, 'Accept Request').click();
      await waitFor(admin, 'accepted, live', async () => /Accepted by the user/.test(await req.textContent()));
      await button(admin, 'Open: dana on desk-help').click();
      await decoding(admin, 'the administrator');
      await waitText(owner, 'root is assisting you.');
      await clickCanvas(admin);
      await host.waitForLine(/^input: pointer_down x=\d+ y=\d+ code=0 mods=0$/);
      await host.waitForLine(/^notify: assist_started Remote assistance started\. \(root\)$/);

      await button(owner, 'Exit Assistance').click();
      await waitFor(admin, 'the administrator is told', async (p) => (await p.textContent('#view-status')) === ASSIST_ENDED);
      await waitFor(admin, 'back on the requests', async (p) => !(await p.isHidden('#page-assist')));
      await host.waitForLine(/^notify: assist_ended Remote assistance ended\./);

      // Expiry at +180 minutes on the relay's clock, on both pages.
      await button(owner, 'Send Now').click();
      await waitFor(admin, 'the second request', async () => (await req.count()) === 1);
      assert.equal((await relay.api('PUT', '/clock', { advance_s: 180 * 60 })).status, 200);
      await waitFor(owner, 'the owner is told', async (p) => (await p.textContent('#assist-state')) === EXPIRED);
      await waitText(admin, 'desk-help: the request for help expired after 180 minutes.');
      await waitFor(admin, 'the request left the list', async () => (await req.count()) === 0);

      // The administrator offers first; the user accepts; End from the view.
      await button(admin, 'Desktops').click();
      await button(admin, 'Start remote assistance on desk-help').click();
      await waitFor(owner, 'the user\'s window', async (p) => p.locator('#invite').isVisible());
      assert.match(await owner.textContent('#invite-text'), /^Administrator root offers to help you/);
      await button(owner, 'Accept Request').click();
      await button(admin, 'Remote assistance').click();
      await waitFor(admin, 'accepted', async () => /Accepted by the user/.test(await req.textContent()));
      await button(admin, 'Open: dana on desk-help').click();
      await decoding(admin, 'the administrator');
      await button(admin, 'End').click();
      await waitText(owner, 'Remote assistance ended.');
      await waitFor(owner, 'Send Now again', async (p) => p.locator('#assist-send').isVisible());

      // Assistance and collaboration exclude each other, in the relay's
      // words.  (Tokens from here on outlive the 180 minutes the clock moved.)
      await openBall(owner, 'Shared Collaboration');
      await button(owner, 'Start Collaboration').click();
      await waitFor(owner, 'a code', async (p) => CODE_RE.test(await p.textContent('#collab-code')));
      const guest = await relay.join({ code: await owner.textContent('#collab-code') },
        { label: 'guest', token: relay.token({ user: 'alice', ttl: 86400 }) });
      await waitText(owner, 'Joined Shared Collaboration: Alice');
      await button(admin, 'Remote assistance').click();
      await admin.fill('#start-desktop', 'desk-help');
      await button(admin, 'Start remote assistance').click();
      await waitFor(admin, 'the busy refusal', async (p) => (await p.textContent('#api-error')) === BUSY_MESSAGE);
      guest.send({ type: 'leave' });
      await waitText(owner, 'Stopped Shared Collaboration: Alice');
      // Invited with the slot free, then a collaborator comes in: the
      // user's Accept Request is refused in the same words.
      await button(admin, 'Desktops').click();
      await button(admin, 'Start remote assistance on desk-help').click();
      await waitFor(owner, 'the user\'s window', async (p) => p.locator('#invite').isVisible());
      const second = await relay.join({ code: await owner.textContent('#collab-code') },
        { label: 'second guest', name: 'Bob', token: relay.token({ user: 'alice', ttl: 86400 }) });
      await waitText(owner, 'Joined Shared Collaboration: Bob');
      await button(owner, 'Accept Request').click();
      await waitFor(owner, 'the busy refusal', async (p) => (await p.textContent('#assist-error')) === BUSY_MESSAGE);
      second.send({ type: 'leave' });

      // The audit log: newest first, filtered, paged.
      await button(admin, 'Audit log').click();
      const times = await admin.locator('#audit tbody tr td:first-child').allTextContents();
      assert.ok(times.length === 10, `a page holds 10 events, got ${times.length}`);
      assert.deepEqual([...times].sort().reverse(), times, 'newest first');
      assert.match(await admin.textContent('#audit-page'), /^Page 1 of [2-9]/);
      await button(admin, 'Next page').click();
      assert.match(await admin.textContent('#audit-page'), /^Page 2 of/);
      await admin.fill('#audit-event', 'expired');
      await button(admin, 'Filter').click();
      const rows = await admin.locator('#audit tbody tr').allTextContents();
      assert.equal(rows.length, 1, rows.join('\n'));
      assert.match(rows[0], /relayexpireddesk-help/);
    } catch (e) {
      for (const p of [owner, admin]) if (p) e.message += `\n${await describePage(p)}`;
      throw e;
    } finally {
      await closeAll(owner, admin);
    }
  });
});

// Every visible control has a name a screen reader says.
async function unlabelled(page) {
  return page.evaluate(() => [...document.querySelectorAll('button, input, canvas, a')]
    .filter((el) => el.offsetParent !== null || el.tagName === 'CANVAS')
    .filter((el) => {
      const byLabel = el.id && document.querySelector(`label[for="${el.id}"]`);
      return !(el.getAttribute('aria-label') || el.textContent.trim() || byLabel);
    }).map((el) => el.outerHTML.slice(0, 80)));
}

async function tabTo(page, name, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') || document.activeElement?.textContent.trim());
    if (focused === name) return;
  }
  throw new Error(`Tab never reached "${name}"\n${await describePage(page)}`);
}

const noSideScroll = (page) => page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1);

test('keyboard only, at a phone\'s width: the ball, the console and the home page', async () => {
  await withRelay({ args: ['--test-clock'] }, async (relay) => {
    let owner; let admin; let home;
    try {
      await relay.policy('dana', { help: true, collab: true });
      const { host, link } = await danaDesktop(relay, 'desk-keys');
      owner = await openPage(browser, link, { viewport: PHONE });
      await decoding(owner, 'the owner');
      assert.deepEqual(await unlabelled(owner), []);
      assert.ok(await noSideScroll(owner), 'the owner page fits a phone');
      // Focus starts on the ball; Enter opens it, Tab walks it.
      await owner.keyboard.press('Enter');
      await tabTo(owner, 'Shared Collaboration');
      await owner.keyboard.press('Enter');
      await tabTo(owner, 'Start Collaboration');
      await owner.keyboard.press('Enter');
      await waitFor(owner, 'the code', async (p) => CODE_RE.test(await p.textContent('#collab-code')));
      await host.waitForLine(/^code: /);
      await tabTo(owner, 'Discard code');
      await owner.keyboard.press('Enter');
      await waitText(owner, 'The collaboration code was discarded.');
      await owner.focus('#ball-toggle');
      await owner.keyboard.press('Enter');
      await tabTo(owner, 'Remote Assistance');
      await owner.keyboard.press('Enter');
      await tabTo(owner, 'Send Now');
      await owner.keyboard.press('Enter');
      await waitFor(owner, 'pending', async (p) => /^Time left: /.test(await p.textContent('#assist-left')));
      assert.deepEqual(await unlabelled(owner), []);

      admin = await openConsole(relay, PHONE);
      assert.ok(await noSideScroll(admin), 'the console fits a phone');
      assert.deepEqual(await unlabelled(admin), []);
      await tabTo(admin, 'Remote assistance');
      await admin.keyboard.press('Enter');
      await tabTo(admin, 'Accept: dana on desk-keys');
      await admin.keyboard.press('Enter');
      await waitFor(owner, 'the invitation', async (p) => p.locator('#invite').isVisible());
      // The dialog takes the focus: Enter on Accept Request.
      await owner.keyboard.press('Enter');
      await waitFor(admin, 'accepted', async (p) => /Accepted by the user/.test(await p.textContent('#requests')));
      await tabTo(admin, 'Open: dana on desk-keys', 60);
      await admin.keyboard.press('Enter');
      await decoding(admin, 'the administrator');
      await tabTo(admin, 'End', 60);
      await admin.keyboard.press('Enter');
      await waitText(owner, 'Remote assistance ended.');

      home = await openPage(browser, `${relay.httpUrl}/#token=${await mintToken(relay, 'dana')}`, { viewport: PHONE });
      await waitFor(home, 'the resource list', async (p) => /Dana's desktop desk-keys · Online/.test(await p.textContent('#desktop-list')));
      const icon = await home.locator('#collab-icon').boundingBox();
      assert.ok(icon.x + icon.width > PHONE.width - 40 && icon.y < 60, `the icon sits at the upper right: ${JSON.stringify(icon)}`);
      assert.deepEqual(await unlabelled(home), []);
      await tabTo(home, 'Shared Collaboration');
      await home.keyboard.press('Enter');
      await waitFor(home, 'the join form', async (p) => p.locator('#join-form').isVisible());
      assert.equal(await home.evaluate(() => document.activeElement.id), 'code', 'the form takes the focus');
      assert.ok(await noSideScroll(home), 'the home page fits a phone');
      // The resource list opens the desktop's own client.
      await home.getByRole('link', { name: 'Dana\'s desktop' }).click();
      await home.waitForURL(/\/owner\.html$/);
      await home.waitForFunction(() => window.asp);
      await decoding(home, 'the owner from the resource list');
    } catch (e) {
      for (const p of [owner, admin, home]) if (p) e.message += `\n${await describePage(p)}`;
      throw e;
    } finally {
      await closeAll(owner, admin, home);
    }
  });
});

// The console's event stream on the wire: administrators only, a hello,
// then one event per audited change, as it happens.
// The relay stops cleanly with a stream still open.
test('GET /api/events streams audited changes to administrators only', async () => {
  let req;
  await withRelay(async (relay) => {
    const { default: http } = await import('node:http');
    const refused = await relay.api('GET', '/events', undefined, relay.token({ user: 'dana' }));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'no_permission');
    assert.equal((await relay.api('GET', '/events', undefined, 'forged')).status, 401);

    const chunks = [];
    let got = () => {};
    req = http.get(`${relay.httpUrl}/api/events`, { headers: { authorization: `Bearer ${relay.token({ user: 'root', role: 'admin' })}` } });
    const res = await new Promise((resolve, reject) => { req.on('response', resolve); req.on('error', reject); });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    res.setEncoding('utf8');
    res.on('data', (d) => { chunks.push(d); got(); });
    const until = (re) => new Promise((resolve) => {
      got = () => { if (re.test(chunks.join(''))) resolve(); };
      got();
    });
    await until(/^event: hello\ndata: \{"now":\d+\}\n\n/);
    await relay.policy('erin', { help: true });
    await until(/event: change\ndata: \{"event":"policy-set","actor":"e2e-admin","desktop":"","detail":"user=erin help=on collab=off","time":\d+\}\n\n/);
    req.on('error', () => {}); // the relay's shutdown ends the stream
  });
  req.destroy();
});

// A console that stops reading costs the relay its bounded buffer, no
// more: events past it are dropped, the relay serves on, and once the page
// reads again it is told to reload (resync).
test('a subscriber that stops reading loses events and then gets resync', async () => {
  await withRelay(async (relay) => {
    const { default: net } = await import('node:net');
    const sock = net.connect(relay.port, '127.0.0.1');
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    let text = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => { text += d; });
    sock.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${relay.token({ user: 'root', role: 'admin' })}\r\n\r\n`);
    await waitUntil(() => text.includes('event: hello'), 'the hello');
    sock.pause(); // the page stops reading: the kernel's buffers fill, then the relay's
    const token = relay.token({ user: 'e2e-admin', role: 'admin', ttl: 3600 });
    for (let i = 0; i < 4000; i += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, k) => relay.api('PUT', `/policy/u${i + k}`, { help: true }, token)));
    }
    assert.equal((await relay.get('/healthz')).status, 200, 'the relay serves on');
    sock.resume();
    await waitUntil(() => text.includes('event: resync\ndata: {}\n\n'), 'the resync event', 60000);
    const changes = text.split('event: change').length - 1;
    assert.ok(changes < 4000, `events past the bound were dropped (${changes} of 4000 arrived)`);
    sock.destroy();
  });
});

async function waitUntil(fn, what, ms = 20000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}
