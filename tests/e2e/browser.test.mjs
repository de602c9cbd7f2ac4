// The web collaborator page (relay/www) in a real browser: Debian's headless
// Chromium joins a desktop shared by the real asp-host through the real
// relay, decodes its H.264 with WebCodecs onto the canvas, shows the relay's
// metrics, sends keyboard and mouse input once the host grants control,
// shows the relay's refusals word for word, leaves and joins again.
//
// The desktop is asp-host's synthetic desktop: a drawn desktop encoded with
// libx264 (or libx265), Opus audio.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BUSY_MESSAGE, FLAG, KIND, MESSAGES, ROOT, selfSignedCert, sloppy, withRelay } from './lib.mjs';
import { parameterSets, parseMedia } from '../../relay/www/media.js';
import {
  DETAIL, PAGE, allowCollaboration, canvasStats, describePage, join, launchBrowser, metricsShown, mintToken, openBallMenu, openPage,
  visibleText, waitFor,
} from './browser-lib.mjs';

const PATTERN_NOTICE = 'The desktop sends a test pattern, not video.';
const { badCode: BAD_CODE, ended: ENDED, noPermission: NO_PERMISSION } = PAGE;
const UNAUTHORIZED = 'Sign-in failed: the token is missing, malformed or not valid.';
const HOST_OFFLINE = 'The desktop disconnected; waiting for it to come back.';
const HOST_ONLINE = 'The desktop is back.';
const GOING_AWAY = 'The relay is going away (restarting or shutting down). Join again in a moment.';
const SCREENSHOT = path.join(ROOT, 'build', 'browser-joined.png');
const DOCS_SCREENSHOT = path.join(ROOT, 'docs', 'web-screenshot.png');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const DESKTOP = 'desk-web';
// Users allowed to collaborate; anyone else lacks the permission.
const COLLABORATORS = ['dana', 'alice', 'eve'];

// asp-host sharing Dana's desktop, and its code.  extra: more asp-host
// options (the source is the synthetic desktop unless extra says otherwise).
async function sharedHost(relay, extra = []) {
  for (const user of COLLABORATORS) await allowCollaboration(relay, user);
  const token = await mintToken(relay, 'dana', DESKTOP);
  const host = relay.aspHost(['--share', '--desktop', DESKTOP, '--name', 'Dana\'s desktop', '--token', token,
    ...(extra.includes('--source') ? [] : ['--source', 'synthetic']), ...extra]);
  const code = (await host.waitForLine(/^code: (\S+)/))[1];
  return { host, code };
}

// The page as opened from a link that signs `user` in (no token: signed out).
async function pageFor(relay, user, opts) {
  const fragment = user ? `#token=${await mintToken(relay, user)}` : '';
  return openPage(browser, `${relay.httpUrl}/${fragment}`, opts);
}

// The page has decoded pictures with detail onto the canvas; its stats.
function decodedDesktop(page, sinceFrames = 0) {
  return waitFor(page, 'the canvas shows the decoded desktop', async (p) => {
    const s = await canvasStats(p);
    return s.frames > sinceFrames && s.variance > DETAIL && s;
  });
}

// What a person sees once joined: the decoded desktop, live.  Its stats.
async function watching(page) {
  const first = await decodedDesktop(page);
  await waitFor(page, 'ten more decoded frames', async (p) => (await canvasStats(p)).frames >= first.frames + 10);
  return first;
}

async function joinedPage(relay, code, opts) {
  const page = await pageFor(relay, 'alice', opts);
  await join(page, code, 'Alice');
  await waitFor(page, 'the page shows the desktop', async (p) => !(await p.isHidden('#watch-view')));
  return page;
}

const textIs = (id, want) => async (p) => (await visibleText(p, id)) === want;

test('Debian\'s Chromium decodes H.264 with WebCodecs (VideoDecoder.isConfigSupported)', () => withRelay(async (relay) => {
  const page = await pageFor(relay, null);
  const support = await page.evaluate(async () => {
    const out = { VideoDecoder: typeof VideoDecoder, AudioDecoder: typeof AudioDecoder };
    for (const codec of ['avc1.42c01f', 'avc1.4d401f', 'avc1.64001f', 'hev1.1.6.L93.B0']) {
      out[codec] = (await VideoDecoder.isConfigSupported({ codec })).supported;
    }
    out.opus = (await AudioDecoder.isConfigSupported({ codec: 'opus', sampleRate: 48000, numberOfChannels: 2 })).supported;
    return out;
  });
  console.log(`# WebCodecs in ${await browser.version()}: ${JSON.stringify(support)}`);
  for (const codec of ['avc1.42c01f', 'avc1.4d401f', 'avc1.64001f', 'opus']) {
    assert.equal(support[codec], true, `isConfigSupported(${codec}) says ${support[codec]}: ${JSON.stringify(support)}`);
  }
  assert.equal(await visibleText(page, 'browser-guidance-join'), null, 'no upgrade advice where WebCodecs exists');
}));

test('a collaborator joins with the code, watches, reads metrics, operates with control, is refused a second session, leaves and rejoins', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const page = await joinedPage(relay, sloppy(code));
  await host.waitForLine(/^notify: collab_joined Joined Shared Collaboration \(Alice\)/);
  await waitFor(page, 'the "Joined" toast', async (p) => (await describePage(p)).includes('Joined Dana\'s desktop'));
  assert.equal(await visibleText(page, 'control-indicator'), 'View only', await describePage(page));

  // Watch: pictures with detail, and they keep coming.
  const first = await watching(page);
  const box = first.css;
  assert.ok(Math.abs(box.width / box.height - first.width / first.height) < 0.01,
    `the canvas keeps the desktop's aspect ratio: CSS ${box.width}x${box.height}, desktop ${first.width}x${first.height}`);

  // Metrics from the relay, and the page's own decoded fps.
  await openBallMenu(page);
  await page.click('#menu-metrics');
  const shown = await waitFor(page, 'the metrics panel filled from the relay\'s report', async (p) => {
    const v = await metricsShown(p);
    return parseFloat(v.fps) > 0 && parseFloat(v.decoded_fps) > 0 && /ms$/.test(v.latency) && v;
  });
  assert.equal(shown.resolution, `${first.width}×${first.height}`, JSON.stringify(shown));
  assert.match(shown.codec, /^h264 \(avc1\.[0-9a-f]{6}\)$/, JSON.stringify(shown));
  assert.match(shown.bitrate, /^[\d.]+ (k|M)bit\/s$/, JSON.stringify(shown));
  assert.match(shown.rtt, /^[\d.]+ ms$/, JSON.stringify(shown));
  assert.match(shown.drops, /^\d+$/, JSON.stringify(shown));
  // Sound: the Join click let the page start audio; Opus blocks decode and play.
  const sound = await waitFor(page, 'decoded audio', async (p) => {
    const st = await p.evaluate(() => window.asp.stats());
    return st.audioBlocks > 10 && st;
  });
  assert.equal(sound.audioState, 'running', JSON.stringify(sound));
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  if (process.env.ASP_DOCS_SCREENSHOT) await page.screenshot({ path: DOCS_SCREENSHOT });
  // Fullscreen and back, from the same menu.
  const fullscreen = (p) => p.evaluate(() => [!!document.fullscreenElement, document.getElementById('menu-fullscreen').textContent]);
  await page.click('#menu-fullscreen');
  await waitFor(page, 'fullscreen', async (p) => (await fullscreen(p))[1] === 'Exit Fullscreen');
  assert.deepEqual(await fullscreen(page), [true, 'Exit Fullscreen']);
  await page.click('#menu-fullscreen');
  await waitFor(page, 'fullscreen left', async (p) => (await fullscreen(p))[1] === 'Fullscreen');
  assert.deepEqual(await fullscreen(page), [false, 'Fullscreen']);
  await page.click('#ball-toggle'); // close the menu, keep the panel

  // Without control the page sends nothing: this click must never reach the host.
  const at = (fx, fy) => ({ x: box.left + box.width * fx, y: box.top + box.height * fy });
  const early = at(0.1, 0.6);
  await page.mouse.click(early.x, early.y);

  host.send('grant');
  await waitFor(page, 'the control indicator', textIs('control-indicator', 'You have control'));
  await waitFor(page, 'the control toast', async (p) => (await describePage(p)).includes(MESSAGES.control_granted));

  // Operate: a click 3/10 across and 7/10 down (clear of the floating ball
  // and its metrics panel) lands there on the desktop.
  const target = at(0.3, 0.7);
  await page.mouse.click(target.x, target.y);
  const down = await host.waitForLine(/^input: pointer_down x=(\d+) y=(\d+) code=0 mods=0$/);
  const [wx, wy] = [Math.floor(first.width * 0.3), Math.floor(first.height * 0.7)];
  assert.ok(Math.abs(down[1] - wx) <= 2 && Math.abs(down[2] - wy) <= 2,
    `pointer_down at ${down[1]},${down[2]}, want about ${wx},${wy}\n${host.describe()}`);
  await host.waitForLine(/^input: pointer_up x=\d+ y=\d+ code=0 mods=0$/);
  await page.keyboard.press('Shift+KeyA');
  await host.waitForLine(/^input: key_down x=\d+ y=\d+ code=16 mods=1$/);
  await host.waitForLine(/^input: key_down x=\d+ y=\d+ code=65 mods=1$/);
  await host.waitForLine(/^input: key_up x=\d+ y=\d+ code=65 mods=1$/);
  await page.mouse.wheel(0, 120);
  await host.waitForLine(/^input: wheel x=0 y=120 code=0 mods=0$/);
  const [ex, ey] = [Math.floor(first.width * 0.1), Math.floor(first.height * 0.6)];
  assert.equal(host.countLines(new RegExp(`^input: pointer_down x=${ex} y=${ey} `)), 0,
    `the click made before control was granted reached the host\n${host.describe()}`);

  host.send('revoke');
  await waitFor(page, 'the indicator after revoke', textIs('control-indicator', 'View only'));
  await waitFor(page, 'the revoke toast', async (p) => (await describePage(p)).includes(MESSAGES.control_revoked));

  // A second tab cannot start another session with the same desktop.
  const second = await pageFor(relay, 'eve');
  await join(second, code, 'Eve');
  await waitFor(second, 'the busy refusal, word for word', textIs('join-error', BUSY_MESSAGE));
  await second.context().close();

  // Leave, then join again with the same code.
  await openBallMenu(page);
  await page.click('#menu-leave');
  await waitFor(page, 'the join form after Leave', async (p) => !(await p.isHidden('#join-view')));
  await host.waitForLine(/^notify: collab_stopped Stopped Shared Collaboration/);
  await waitFor(page, 'Join Now enabled again', (p) => p.isEnabled('#join'));
  await page.click('#join');
  await waitFor(page, 'the page shows the desktop again', async (p) => !(await p.isHidden('#watch-view')));
  await host.waitForLine(/^notify: collab_joined Joined Shared Collaboration \(Alice\)/);
  await watching(page);
}));

test('on a touch screen, taps on the canvas reach the host as touch events at desktop coordinates', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const page = await joinedPage(relay, code, { hasTouch: true });
  const { css: box, width, height } = await decodedDesktop(page);
  host.send('grant');
  await waitFor(page, 'the control indicator', textIs('control-indicator', 'You have control'));
  await page.touchscreen.tap(box.left + box.width / 2, box.top + box.height / 2);
  const start = await host.waitForLine(/^input: touch_start x=(\d+) y=(\d+) code=(\d+) mods=0$/);
  assert.ok(Math.abs(start[1] - width / 2) <= 2 && Math.abs(start[2] - height / 2) <= 2,
    `touch_start at ${start[1]},${start[2]}, want about ${width / 2},${height / 2}\n${host.describe()}`);
  await host.waitForLine(new RegExp(`^input: touch_end x=\\d+ y=\\d+ code=${start[3]} mods=0$`));
}));

test('refusals are shown word for word: no sign-in, no permission, a wrong code, the host ending the collaboration', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const signedOut = await pageFor(relay, null);
  await join(signedOut, code, 'Nobody');
  await waitFor(signedOut, 'the sign-in refusal', textIs('join-error', UNAUTHORIZED));
  const mallory = await pageFor(relay, 'mallory');
  await join(mallory, code, 'Mallory');
  await waitFor(mallory, 'the missing-permission refusal', textIs('join-error', NO_PERMISSION));

  const page = await pageFor(relay, 'alice');
  await join(page, 'ABCD-EFGH-JKMN', 'Alice');
  await waitFor(page, 'the bad-code refusal', textIs('join-error', BAD_CODE));
  assert.ok(await page.isEnabled('#join'), 'Join Now can be pressed again after a refusal');

  await join(page, code, 'Alice');
  await waitFor(page, 'the page shows the desktop', async (p) => !(await p.isHidden('#watch-view')));
  host.send('end');
  await waitFor(page, 'the ended refusal on the join form', textIs('join-error', ENDED));
}));

test('over https the page connects with wss:// to the same origin and watches', async () => {
  const tls = selfSignedCert();
  try {
    await withRelay({ args: ['--tls-cert', tls.cert, '--tls-key', tls.key] }, async (relay) => {
      assert.match(relay.httpUrl, /^https:/);
      const { code } = await sharedHost(relay);
      const page = await joinedPage(relay, code);
      await watching(page);
    });
  } finally {
    fs.rmSync(tls.dir, { recursive: true, force: true });
  }
});

test('the desktop goes offline and comes back at another size: the page says so and decodes the new size', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay, ['--size', '1280x720']);
  const page = await joinedPage(relay, code);
  const before = await decodedDesktop(page);
  assert.deepEqual([before.width, before.height], [1280, 720]);
  await host.stop();
  await waitFor(page, 'the host-offline toast', async (p) => (await describePage(p)).includes(HOST_OFFLINE));
  const { host: again } = await sharedHost(relay, ['--size', '960x540']);
  assert.ok(again, 'the desktop reconnected');
  await waitFor(page, 'the host-online toast', async (p) => (await describePage(p)).includes(HOST_ONLINE));
  const after = await waitFor(page, 'the picture at the new size', async (p) => {
    const st = await canvasStats(p);
    return st.width === 960 && st.height === 540 && st.frames > before.frames && st.variance > DETAIL && st;
  });
  assert.ok(Math.abs(after.css.width / after.css.height - 960 / 540) < 0.01, JSON.stringify(after.css));
}));

test('HEVC: the page configures hev1/hvc1 (from the relay\'s codec_string or the SPS), and decodes it or advises where this browser cannot', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay, ['--codec', 'hevc']);
  const page = await joinedPage(relay, code);
  const outcome = await waitFor(page, 'decoded HEVC or the advice', async (p) => {
    const advice = await visibleText(p, 'browser-guidance');
    if (advice) return { advice };
    const st = await canvasStats(p);
    return st.frames > 0 && st.variance > DETAIL && { st };
  });
  const codecString = await page.evaluate(() => window.asp.stats().codecString);
  assert.match(codecString, /^(hev1|hvc1)\.[A-C]?\d+\.[0-9a-f]+\.[LH]\d+(\.[0-9a-f]{1,2})+$/);
  if (outcome.advice) {
    console.log(`# HEVC: ${codecString} not decodable here; the page advised: ${outcome.advice.split('\n').at(-1)}`);
    assert.match(outcome.advice, /Upgrade Chrome to the latest version/);
    assert.ok(outcome.advice.includes(codecString), outcome.advice);
  }
}));

test('the page\'s parameter-set parser agrees with the relay\'s codec_string for H.264 and HEVC keyframes', () => withRelay(async (relay) => {
  for (const codec of ['h264', 'hevc']) {
    const { host, code } = await sharedHost(relay, ['--codec', codec]);
    const viewer = await relay.connect('/view', 'asp.view.v1', { label: `${codec} viewer` });
    viewer.send({ type: 'hello', client: 'web', client_version: '1.0', token: await mintToken(relay, 'alice') });
    await viewer.next('welcome');
    viewer.send({ type: 'join', code });
    await viewer.next('joined');
    const stream = await viewer.next('stream', 15000, (s) => s.video?.codec === codec);
    const key = await viewer.nextBinary((m) => m.hdr.kind === KIND.video && (m.hdr.flags & FLAG.keyframe));
    const m = parseMedia(key.data.buffer.slice(key.data.byteOffset, key.data.byteOffset + key.data.length));
    const ours = parameterSets(m.codec, m.payload);
    const theirs = stream.video && stream.video.codec_string;
    assert.ok(ours && theirs, `${codec}: page ${JSON.stringify(ours)}, relay ${JSON.stringify(stream)}`);
    // hev1 and hvc1 name the same profile/tier/level; only the box differs.
    const body = (str) => str.replace(/^(hev1|hvc1)\./, 'hevc.');
    assert.equal(body(ours.codecString), body(theirs), `${codec}: the page derives ${ours.codecString}, the relay says ${theirs}`);
    await viewer.closeGracefully();
    host.send('end');
    await host.stop();
  }
}));

test('a host that sends only the codec-0 test pattern gets a notice saying so, not a blank canvas', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay, ['--source', 'pattern']);
  const page = await joinedPage(relay, code);
  await waitFor(page, 'the test-pattern notice', textIs('notice', PATTERN_NOTICE));
  assert.equal(await visibleText(page, 'browser-guidance'), null, 'no browser advice for a stream no browser decodes');
}));

// Regression: the relay once queued host_offline after its 1001 Close frame;
// Chromium then failed the connection as 1006 ("Data frame received after
// close") and the page could only say the connection was lost.
test('the relay shutting down (close 1001) returns the page to the form with a going-away notice', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay);
  const page = await joinedPage(relay, code);
  await relay.stop();
  await waitFor(page, 'the going-away message', textIs('join-error', GOING_AWAY), 5000);
}));

test('without WebCodecs the page advises upgrading Chrome or enabling hardware acceleration', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay);
  const page = await pageFor(relay, 'alice', {
    init: () => { delete globalThis.VideoDecoder; delete globalThis.AudioDecoder; },
  });
  const advice = await waitFor(page, 'the advice on the join page', (p) => visibleText(p, 'browser-guidance-join'));
  assert.match(advice, /Upgrade Chrome to the latest version/);
  assert.match(advice, /Use hardware acceleration when available/);
  await join(page, code, 'Alice');
  const shown = await waitFor(page, 'the advice over the canvas', (p) => visibleText(p, 'browser-guidance'));
  assert.match(shown, /Upgrade Chrome to the latest version/);
}));

test('when VideoDecoder.isConfigSupported says no, the page advises instead of showing a blank canvas', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay);
  const page = await pageFor(relay, 'alice', {
    init: () => { VideoDecoder.isConfigSupported = async (config) => ({ supported: false, config }); },
  });
  await join(page, code, 'Alice');
  const shown = await waitFor(page, 'the advice over the canvas', (p) => visibleText(p, 'browser-guidance'));
  assert.match(shown, /Upgrade Chrome to the latest version/);
  assert.match(shown, /Use hardware acceleration when available/);
  assert.match(shown, /isConfigSupported says avc1\.[0-9a-f]{6} is not supported/);
}));
