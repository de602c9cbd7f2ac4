// Helpers for the real-browser tests: Debian's headless Chromium driven by
// playwright-core (no downloaded browser), and what a person would look at
// on the web collaborator page: the pixels on the canvas, the metrics
// panel, the messages shown.  Built on lib.mjs, which starts the relay.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { ROOT, bin, within } from './lib.mjs';

// What the pages say, word for word, as both browser suites check it.
export const PAGE = {
  badCode: 'The collaboration code is not valid. Check it and try again.',
  ended: 'The host ended the collaboration.',
  noPermission: 'You need the permission "User Stream Collaboration".',
};
// Variance of R+G+B over sampled pixels: a black or flat canvas is ~0; the
// synthetic desktop (windows, text, gradients) is in the thousands.
export const DETAIL = 200;

// ---------------------------------------------------------------------------
// Sign-in: tokens and permissions through asp-admin, with the relay's data
// directory (its signing secret), as an operator would.

async function aspAdmin(relay, args) {
  const argv = ['--relay', relay.httpUrl, '--data', relay.data, ...(relay.tls ? ['--insecure'] : []), ...args];
  try {
    const { stdout } = await promisify(execFile)(bin('asp-admin'), argv, { encoding: 'utf8' });
    return stdout;
  } catch (e) {
    throw new Error(`asp-admin ${argv.join(' ')} failed: ${e.message}\n${e.stdout || ''}${e.stderr || ''}`);
  }
}

// A user token (a host's names its desktop): the last line asp-admin prints.
export async function mintToken(relay, user, desktop) {
  const out = await aspAdmin(relay, ['token', '--user', user, '--role', 'user', ...(desktop ? ['--desktop', desktop] : [])]);
  return out.trim().split('\n').at(-1);
}

// Gives user the "User Stream Collaboration" permission.
export async function allowCollaboration(relay, user) {
  await aspAdmin(relay, ['policy', 'set', user, 'collab=on']);
}

export const CHROMIUM = process.env.ASP_CHROMIUM || '/usr/bin/chromium';
export const WEB_DIR = path.join(ROOT, 'relay', 'www');

// Debian's chromium wrapper script; playwright gives every launch a fresh
// temporary user-data-dir of its own and removes it on close.
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A tab that records what the page logs, so failures can show it.
// A self-signed relay certificate is accepted, as a person would click through.
// hasTouch makes a touch-screen device (taps arrive as touch pointers).
// permissions: e.g. ['clipboard-read', 'clipboard-write'] for Copy.
export async function openPage(browser, url, {
  viewport = { width: 960, height: 540 }, init, hasTouch = false, permissions = [],
} = {}) {
  const context = await browser.newContext({ viewport, ignoreHTTPSErrors: true, hasTouch, permissions });
  const page = await context.newPage();
  page.log = [];
  page.on('console', (m) => page.log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.log.push(`pageerror: ${e.message}`));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  return page;
}

// What the page is showing, in words: for assertion messages.
export async function describePage(page) {
  const state = await page.evaluate(() => {
    const text = (id) => { const el = document.getElementById(id); return el && !el.hidden ? el.textContent : null; };
    return {
      view: document.getElementById('watch-view').hidden ? 'join form' : 'watching',
      status: text('join-status'),
      error: text('join-error'),
      notice: text('notice'),
      guidance: text('browser-guidance') || text('browser-guidance-join'),
      control: text('control-indicator'),
      toasts: [...document.querySelectorAll('.toast')].map((t) => t.textContent),
      stats: window.asp ? window.asp.stats() : null,
    };
  }).catch((e) => ({ unavailable: e.message }));
  return `page state: ${JSON.stringify(state)}\npage log (last 20):\n${page.log.slice(-20).join('\n')}`;
}

// Polls fn(page) until it returns a truthy value; fails with what the page shows.
export async function waitFor(page, what, fn, ms = 20000) {
  let last;
  const poll = async () => {
    for (;;) {
      last = await fn(page);
      if (last) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  let why = '';
  return within(poll(), ms, () => `${what}${why}`).catch(async (e) => {
    why = `\nlast value: ${JSON.stringify(last)}\n${await describePage(page)}`;
    throw new Error(`${e.message}${why}`);
  });
}

// Sampled statistics of the canvas pixels: a decoded desktop has detail
// (high variance), a blank or cleared canvas has none.
export function canvasStats(page) {
  return page.evaluate(() => {
    const c = document.getElementById('screen');
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    let sum = 0;
    let sum2 = 0;
    for (let i = 0; i < data.length; i += 4 * 13) {
      const v = data[i] + data[i + 1] + data[i + 2];
      sum += v;
      sum2 += v * v;
      n++;
    }
    const r = c.getBoundingClientRect();
    return {
      width: c.width, height: c.height, variance: sum2 / n - (sum / n) ** 2,
      css: { left: r.left, top: r.top, width: r.width, height: r.height },
      frames: window.asp.stats().videoFrames,
    };
  });
}

// Fills the join form and presses Join Now, as a person would: the form
// opens from the Shared Collaboration icon at the upper right.
export async function join(page, code, name) {
  if (await page.isHidden('#join-form')) await page.click('#collab-icon');
  await page.fill('#code', code);
  await page.fill('#name', name);
  await page.click('#join');
}

export const visibleText = (page, id) => page.evaluate((i) => {
  const el = document.getElementById(i);
  return el && !el.hidden ? el.textContent : null;
}, id);

// The metrics panel's values by name (data-metric attributes).
export const metricsShown = (page) => page.evaluate(() => Object.fromEntries(
  [...document.querySelectorAll('[data-metric]')].map((el) => [el.dataset.metric, el.textContent])));

export async function openBallMenu(page) {
  if (await page.isHidden('#ball-menu')) await page.click('#ball-toggle');
}
