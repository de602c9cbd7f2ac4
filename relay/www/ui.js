// Small pieces every page shares: toasts, the sign-in token kept for the
// tab, API calls whose refusals come back as the relay's own sentence,
// and a floating ball that can be dragged out of the way.

const TOAST_MS = 5000;

export const $ = (id) => document.getElementById(id);

export function toast(text, kind = 'info') {
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.textContent = text;
  $('toasts').append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

// The user id a token signs in as ("" when it cannot be read).
function tokenUser(token) {
  try {
    const part = token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
    return String(JSON.parse(atob(part)).u || '');
  } catch {
    return '';
  }
}

// A crafted link must not silently swap the person's sign-in for someone
// else's: a different token replaces the one this tab holds only when
// the person says so.
export function acceptLinkToken(token, storageKey = 'asp.token') {
  const current = sessionStorage.getItem(storageKey);
  if (!current || current === token) return true;
  const was = tokenUser(current) || 'your current user';
  const now = tokenUser(token) || 'another user';
  return window.confirm(`This link signs you in as ${now} instead of ${was}. Switch to ${now}?`);
}

// The link that opens a page carries what it needs in the fragment
// (#token=…&key=…), which never reaches server logs.  The token is kept
// for this tab only and the fragment is taken out of the address bar, so
// it is not copied along with the link.  Returns the fragment's fields.
export function readFragment(storageKey = 'asp.token') {
  const frag = new URLSearchParams(location.hash.slice(1));
  const fields = Object.fromEntries(frag.entries());
  if (fields.token && acceptLinkToken(fields.token, storageKey)) {
    sessionStorage.setItem(storageKey, fields.token);
    trustLinkRelays();
  }
  if (location.hash) history.replaceState(null, '', `${location.pathname}${location.search}`);
  return fields;
}

export const storedToken = (storageKey = 'asp.token') => sessionStorage.getItem(storageKey);

// ---- relays --------------------------------------------------------------
// The relays a page's viewer connects to (docs/cluster.md, "Clients"): the
// link's ?relay=URL[,URL...], used in turn as asp-view uses its --relay;
// without one, the page's own origin.  A relay elsewhere than the page
// gets this tab's sign-in token, so a crafted link must not send it there
// silently: a list is used as it is when every relay is the page's own
// host, when the same link brought the token (whoever holds the token
// chose both), or once the person agrees; otherwise the page keeps to its
// own origin.

const RELAYS_KEY = 'asp.relays';
const MAX_RELAYS = 16;
const URL_MAX = 255;
const HOST_PORT = '(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+)(?::(\\d{1,5}))?';
const RELAY_RE = new RegExp(`^(wss?|https?)://${HOST_PORT}(/[A-Za-z0-9._~%/-]*)?$`);
const REDIRECT_RE = new RegExp(`^(wss?)://${HOST_PORT}/?$`);

// text as a URL to open a WebSocket under (ws:// or wss://, no trailing
// slash), or null: --relay's rules, or a redirect's (a node: no path, no
// plain http).
export function relayUrl(text, redirect = false) {
  if (typeof text !== 'string' || text.length > URL_MAX) return null;
  const m = (redirect ? REDIRECT_RE : RELAY_RE).exec(text);
  if (!m || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) return null;
  const scheme = { http: 'ws', https: 'wss' }[m[1]] || m[1];
  return `${scheme}://${m[2]}${m[3] !== undefined ? `:${m[3]}` : ''}${(m[4] || '').replace(/\/+$/, '')}`;
}

const linkRelays = () => new URLSearchParams(location.search).get('relay');

// The link's own token came with its relays: trust them for this tab.
export function trustLinkRelays() {
  const list = linkRelays();
  if (list) sessionStorage.setItem(RELAYS_KEY, list);
}

// "?relay=..." to hand the list on to a page this one opens, or "".
export function relayQuery() {
  const list = linkRelays();
  return list ? `?${new URLSearchParams({ relay: list })}` : '';
}

let relays = null;

export function relayList() {
  if (relays) return relays;
  relays = [`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`];
  const list = linkRelays();
  if (!list) return relays;
  const urls = list.split(',').map((u) => relayUrl(u));
  if (urls.length > MAX_RELAYS || urls.some((u) => !u)) {
    toast(`The relay list of this link is not valid: connecting to ${location.host} only.`, 'error');
    return relays;
  }
  const elsewhere = [...new Set(urls.map((u) => new URL(u).host))].filter((h) => h !== location.host);
  if (elsewhere.length && sessionStorage.getItem(RELAYS_KEY) !== list) {
    if (!window.confirm(`This link connects to other relays (${elsewhere.join(', ')}) and signs in there as you. Continue?`)) {
      return relays;
    }
    sessionStorage.setItem(RELAYS_KEY, list);
  }
  relays = urls;
  return relays;
}

// fetch() of the relay's JSON API with the token: the parsed answer, or an
// Error whose message is the relay's sentence (never raw JSON).
export async function api(token, method, path, body) {
  let res;
  try {
    res = await fetch(`/api${path}`, {
      method,
      headers: { Authorization: `Bearer ${token || ''}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new Error('The relay cannot be reached. Check the connection and try again.');
  }
  let data = null;
  try { data = await res.json(); } catch { /* no JSON: said below */ }
  if (!res.ok) {
    const e = new Error(data?.error?.message || `The relay answered ${res.status} ${res.statusText}.`);
    e.code = data?.error?.code;
    throw e;
  }
  if (!data) throw new Error('The relay sent an answer this page cannot read.');
  return data;
}

// The ball can be dragged out of the way; a press that barely moves is a click.
export function makeDraggable(ball, handle) {
  let start = null;
  handle.addEventListener('pointerdown', (e) => {
    const r = ball.getBoundingClientRect();
    start = { x: e.clientX, y: e.clientY, left: r.left, top: r.top, moved: false };
    handle.setPointerCapture(e.pointerId);
  });
  handle.addEventListener('pointermove', (e) => {
    if (!start) return;
    const dx = e.clientX - start.x;
    const dy = e.clientY - start.y;
    if (!start.moved && Math.hypot(dx, dy) < 5) return;
    start.moved = true;
    ball.style.left = `${Math.max(0, Math.min(innerWidth - 48, start.left + dx))}px`;
    ball.style.top = `${Math.max(0, Math.min(innerHeight - 48, start.top + dy))}px`;
    ball.style.right = 'auto';
  });
  handle.addEventListener('pointerup', () => { handle.dataset.dragged = start?.moved ? '1' : ''; start = null; });
}

// "2 h 59 min", "4 min", "less than a minute".
export function timeLeft(seconds) {
  if (seconds < 60) return 'less than a minute';
  const m = Math.floor(seconds / 60);
  const h = Math.floor(m / 60);
  return h ? `${h} h ${m % 60} min` : `${m} min`;
}
