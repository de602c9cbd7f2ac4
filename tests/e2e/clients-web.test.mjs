// The web page's relay list in a real browser (docs/cluster.md, "Clients";
// relay/www/viewer.js and ui.js): Debian's headless Chromium, the real
// relay and asp-host.  A link's ?relay= list is used in turn (a dead first
// relay is skipped), sends the tab's sign-in token to a relay elsewhere
// only when the link brought it or the person agrees, and, with more than
// one relay, a collaborator whose relay is killed and restarted joins
// again by itself and decodes on.  Redirects, which need a cluster, are in
// clients-redirect.test.mjs.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Relay, freePort, withRelay, withRestartable } from './lib.mjs';
import {
  DETAIL, PAGE, canvasStats, describePage, join, launchBrowser, openPage, visibleText, waitFor,
} from './browser-lib.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

// asp-host sharing a synthetic desktop; its code.
async function sharedHost(relay) {
  const { host, code } = await relay.aspHostReady(['--share', '--source', 'synthetic', '--size', '640x360', '--fps', '15']);
  return { host, code };
}

// The collaborator page from a link: ?relay=list (when given), the code
// and, unless token is false, Alice's sign-in token in the fragment.
function linkPage(relay, { list, code, token = relay.token({ user: 'alice' }), opts } = {}) {
  const query = list ? `?${new URLSearchParams({ relay: list })}` : '';
  const frag = new URLSearchParams({ ...(code ? { code } : {}), ...(token ? { token } : {}) });
  return openPage(browser, `${relay.httpUrl}/${query}#${frag}`, opts);
}

const stats = (page) => page.evaluate(() => window.asp.stats());

// Decoded pictures with detail, more than since frames.
function decoding(page, since = 0) {
  return waitFor(page, `the canvas shows the decoded desktop (more than ${since} frames)`, async (p) => {
    const s = await canvasStats(p);
    return s.frames > since && s.variance > DETAIL && s;
  }, 30000);
}

test('a link with ?relay=DEAD,LIVE and its token: the page skips the dead relay and joins through the live one, not its own', () => withRelay(async (relay) => {
  const { host, code } = await sharedHost(relay);
  // The page comes from another relay (sharing the secret) that does not
  // have the desktop: joining at all proves the list was used.
  const pageRelay = await new Relay([], {}, { secret: relay.secret }).ready();
  try {
    const dead = `ws://127.0.0.1:${await freePort()}`;
    const page = await linkPage(pageRelay, { list: `${dead},${relay.url}`, code });
    await join(page, code, 'Alice');
    await host.waitForLine(/^notify: collab_joined Joined Shared Collaboration \(Alice\)/);
    await decoding(page);
    const s = await stats(page);
    assert.equal(s.relay, relay.url, await describePage(page));
    assert.equal(s.redirects, 0, await describePage(page));
    await page.context().close();
  } finally {
    await pageRelay.stop();
  }
}));

test('a link naming a relay elsewhere without a token asks before signing in there: declined, the page keeps to its own relay; accepted, it goes there', () => withRelay(async (relay) => {
  const { code } = await sharedHost(relay);
  // Another relay that would accept the tab's token (the same secret):
  // the one a crafted link would send it to.
  const other = await new Relay([], {}, { secret: relay.secret }).ready();
  try {
    for (const answer of [false, true]) {
      // The tab signed in earlier, from a link of its own ...
      const page = await linkPage(relay, {});
      await waitFor(page, 'the token is kept', async (p) => p.evaluate(() => Boolean(sessionStorage.getItem('asp.token'))));
      // ... then a link that names the other relay and brings no token.
      const asked = [];
      page.on('dialog', (d) => { asked.push(d.message()); (answer ? d.accept() : d.dismiss()).catch(() => {}); });
      await page.goto(`${relay.httpUrl}/?${new URLSearchParams({ relay: other.url })}#code=${code}`);
      await join(page, code, 'Alice');
      const host = new URL(other.httpUrl).host;
      await waitFor(page, 'the question', () => asked.length > 0);
      assert.match(asked[0], new RegExp(`connects to other relays \\(${host.replace(/\./g, '\\.')}\\) and signs in there as you`), asked[0]);
      if (answer) {
        // The other relay has no such code: its refusal proves the page went there.
        await waitFor(page, 'the other relay\'s refusal', async (p) => (await visibleText(p, 'join-error')) === PAGE.badCode);
      } else {
        await decoding(page);
        assert.equal((await stats(page)).relay, relay.url, await describePage(page));
        await page.click('#ball-toggle');
        await page.click('#menu-leave');
      }
      await page.context().close();
    }
  } finally {
    await other.stop();
  }
}));

test('with two relays in its list, a collaborator whose relay is killed and restarted joins again by itself and decodes on', () => withRestartable(async (relay) => {
  const { host, code } = await sharedHost(relay);
  const dead = `ws://127.0.0.1:${await freePort()}`;
  const page = await linkPage(relay, { list: `${relay.url},${dead}`, code });
  await join(page, code, 'Alice');
  const before = await decoding(page);
  await relay.kill();
  await waitFor(page, 'the page says it reconnects', async (p) => (await visibleText(p, 'control-indicator')) === 'Reconnecting…');
  await relay.restart();
  await host.waitForLine(/^reconnected$/, 30000);
  await waitFor(page, 'the "Reconnected." toast', async (p) => (await describePage(p)).includes('Reconnected.'), 30000);
  // Still the same session on the page: the watch view, never the form.
  assert.equal(await page.isHidden('#watch-view'), false, await describePage(page));
  await decoding(page, (await stats(page)).videoFrames + 10);
  const s = await stats(page);
  assert.ok(s.videoFrames > before.frames + 10, await describePage(page));
  assert.equal(s.relay, relay.url, await describePage(page));
  assert.equal(await visibleText(page, 'control-indicator'), 'View only', await describePage(page));
}));
