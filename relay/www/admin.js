// The administrator's console: desktops, remote assistance requests (with
// the in-browser assisting view), the two permissions per user and the
// audit log, all through the relay's admin API (docs/admin-api.md).  It
// stays current through the relay's event stream (GET /api/events):
// every change the relay audits arrives as one event, and the page reloads
// what it shows; nothing polls.  Refusals are shown in the relay's words.

import { Viewer } from './viewer.js';
import { $, api, readFragment, storedToken, timeLeft, toast } from './ui.js';

const TOKEN_KEY = 'asp.admin';
const AUDIT_PAGE = 10;
const RECONNECT_MS = 2000;
const STATE_WORDS = {
  pending: 'Waiting for an administrator',
  invited: 'Invited: waiting for the user',
  accepted: 'Accepted by the user',
  active: 'Assisting',
};
const EVENT_WORDS = {
  'assist-create': (e) => `New remote assistance request for ${e.desktop} (by ${e.actor}).`,
  invited: (e) => `${e.desktop}: the user was invited (by ${e.actor}).`,
  accepted: (e) => `${e.desktop}: the user accepted remote assistance.`,
  active: (e) => `${e.desktop}: ${e.actor} is assisting.`,
  ended: (e) => `${e.desktop}: remote assistance ended (by ${e.actor}).`,
  declined: (e) => `${e.desktop}: remote assistance was declined (by ${e.actor}).`,
  expired: (e) => `${e.desktop}: the request for help expired after 180 minutes.`,
  'host-connect': (e) => `${e.desktop} connected.`,
  'host-leave': (e) => `${e.desktop} disconnected.`,
  'collab-start': (e) => `${e.desktop}: a collaboration started.`,
  'collab-join': (e) => `${e.desktop}: ${e.detail} joined the collaboration.`,
  'collab-leave': (e) => `${e.desktop}: ${e.detail} left the collaboration.`,
  'collab-end': (e) => `${e.desktop}: the collaboration ended.`,
  'collab-discard': (e) => `${e.desktop}: the collaboration code was discarded.`,
  'policy-set': (e) => `Policy changed: ${e.detail}.`,
};

const token = () => storedToken(TOKEN_KEY);
const data = { desktops: [], requests: [], audit: [], auditPage: 0, users: new Set(), received: 0 };
let viewer = null;
let viewing = null; // the request shown in the assisting view

// ---- small helpers ------------------------------------------------------

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function button(label, onClick, cls = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

const when = (unix) => new Date(unix * 1000).toISOString().replace('.000', '');

function showError(text) {
  $('api-error').textContent = text;
  $('api-error').hidden = !text;
  if (text) toast(text, 'error');
}

// Runs an API call; a refusal is shown in words and returns null.
async function call(method, path, body) {
  try {
    const r = await api(token(), method, path, body);
    showError('');
    return r;
  } catch (e) {
    showError(e.message);
    return null;
  }
}

function notice(text) {
  const li = document.createElement('li');
  li.textContent = text;
  $('notices').prepend(li);
  while ($('notices').children.length > 30) $('notices').lastChild.remove();
}

// ---- pages --------------------------------------------------------------

function showPage(name) {
  for (const p of document.querySelectorAll('.page')) p.hidden = p.id !== `page-${name}`;
  for (const t of document.querySelectorAll('.tab')) {
    if (t.dataset.page === name) t.setAttribute('aria-current', 'page');
    else t.removeAttribute('aria-current');
  }
}

function renderDesktops() {
  const body = $('desktops').tBodies[0];
  body.replaceChildren();
  for (const d of data.desktops) {
    const req = data.requests.find((r) => r.desktop === d.desktop);
    const tr = document.createElement('tr');
    tr.dataset.desktop = d.desktop;
    tr.append(cell(d.name ? `${d.desktop} (${d.name})` : d.desktop), cell(d.user || '–'),
      cell(d.online ? 'Online' : 'Offline'), cell(d.collaboration ? 'Sharing' : 'Not sharing'),
      cell(d.guest ? `${d.guest}${d.guest_kind === 'assist' ? ' (assisting)' : ''}` : '–'),
      cell(req ? STATE_WORDS[req.state] : 'None'));
    const actions = document.createElement('td');
    if (d.online && !req) {
      const b = button('Start remote assistance', () => startAssist(d.desktop));
      b.setAttribute('aria-label', `Start remote assistance on ${d.desktop}`);
      actions.append(b);
    }
    tr.append(actions);
    body.append(tr);
  }
  $('desktops-empty').hidden = data.desktops.length > 0;
}

function renderRequests() {
  const body = $('requests').tBodies[0];
  body.replaceChildren();
  for (const r of data.requests) {
    const tr = document.createElement('tr');
    tr.dataset.id = r.id;
    const left = cell('');
    left.dataset.expires = String(r.expiresAtMs);
    tr.append(cell(r.user), cell(r.desktop), cell(when(r.requested_at)), cell(STATE_WORDS[r.state] || r.state), left);
    const actions = document.createElement('td');
    const act = (label, fn, cls) => {
      const b = button(label, fn, cls);
      b.setAttribute('aria-label', `${label}: ${r.user} on ${r.desktop}`);
      actions.append(b);
    };
    if (r.state === 'pending') act('Accept', () => requestAction(r, 'accept'));
    if (r.state === 'pending' || r.state === 'invited') act('Decline', () => requestAction(r, 'decline'), 'secondary');
    if (r.state === 'accepted' || r.state === 'active') act('Open', () => openView(r));
    act('End', () => requestAction(r, 'end'), 'danger');
    tr.append(actions);
    body.append(tr);
  }
  $('requests-empty').hidden = data.requests.length > 0;
  renderTimeLeft();
}

// Only a pending request runs out; the others show their state.
function renderTimeLeft() {
  for (const td of document.querySelectorAll('#requests td[data-expires]')) {
    const r = data.requests.find((x) => x.id === td.parentElement.dataset.id);
    td.textContent = r && r.state === 'pending'
      ? timeLeft(Math.max(0, Math.round((Number(td.dataset.expires) - Date.now()) / 1000))) : '–';
  }
}

async function renderPolicy() {
  const q = $('policy-search').value.trim();
  const users = [...data.users].filter((u) => u.includes(q)).sort();
  if (q && !users.includes(q)) users.unshift(q);
  const rows = [];
  for (const u of users.slice(0, 50)) {
    const p = await call('GET', `/policy/${encodeURIComponent(u)}`);
    if (p) rows.push(p);
  }
  const body = $('policy').tBodies[0];
  body.replaceChildren();
  for (const p of rows) {
    const tr = document.createElement('tr');
    tr.dataset.user = p.user;
    tr.append(cell(p.user));
    for (const [key, label] of [['help', 'Contact Administrator for Help'], ['collab', 'User Stream Collaboration']]) {
      const td = document.createElement('td');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = p[key];
      box.setAttribute('aria-label', `${label} for ${p.user}`);
      box.addEventListener('change', async () => {
        const r = await call('PUT', `/policy/${encodeURIComponent(p.user)}`, { [key]: box.checked });
        if (r) toast(`${label} is now ${r[key] ? 'on' : 'off'} for ${r.user}.`);
        else box.checked = !box.checked;
      });
      td.append(box);
      tr.append(td);
    }
    body.append(tr);
  }
  $('policy-empty').hidden = rows.length > 0;
}

function auditFiltered() {
  const want = { desktop: $('audit-desktop').value.trim(), actor: $('audit-user').value.trim(), event: $('audit-event').value.trim() };
  return data.audit.filter((e) => Object.entries(want).every(([k, v]) => !v || e[k].includes(v)));
}

function renderAudit() {
  const rows = auditFiltered();
  const pages = Math.max(1, Math.ceil(rows.length / AUDIT_PAGE));
  data.auditPage = Math.min(data.auditPage, pages - 1);
  const body = $('audit').tBodies[0];
  body.replaceChildren();
  for (const e of rows.slice(data.auditPage * AUDIT_PAGE, (data.auditPage + 1) * AUDIT_PAGE)) {
    const tr = document.createElement('tr');
    tr.append(cell(when(e.time)), cell(e.actor), cell(e.event), cell(e.desktop || '–'), cell(e.detail || ''));
    body.append(tr);
  }
  $('audit-page').textContent = `Page ${data.auditPage + 1} of ${pages} (${rows.length} events)`;
  $('audit-prev').disabled = data.auditPage === 0;
  $('audit-next').disabled = data.auditPage >= pages - 1;
}

// ---- loading ------------------------------------------------------------

async function loadAll() {
  const [d, a, l] = await Promise.all([call('GET', '/desktops'), call('GET', '/assist'), call('GET', '/audit?limit=1000')]);
  if (d) data.desktops = d.desktops;
  if (a) data.requests = a.requests.map((r) => ({ ...r, expiresAtMs: Date.now() + r.expires_in * 1000 }));
  if (l) data.audit = l.events.reverse(); // newest first
  for (const x of data.desktops) if (x.user) data.users.add(x.user);
  for (const x of data.requests) data.users.add(x.user);
  renderDesktops();
  renderRequests();
  renderAudit();
  if (!$('page-policy').hidden) await renderPolicy();
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadAll, 50);
}

// The event stream, read with fetch so the token travels in the
// Authorization header, as for every other call.
async function listen() {
  for (;;) {
    try {
      const res = await fetch('/api/events', { headers: { Authorization: `Bearer ${token()}` } });
      if (!res.ok) {
        let msg = `The relay answered ${res.status}.`;
        try { msg = (await res.json()).error.message; } catch { /* keep the status */ }
        showError(msg);
        setLive(false);
        return; // a refused sign-in does not get better by retrying
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          onEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch { /* lost: reconnect below */ }
    setLive(false);
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

function setLive(on) {
  $('live').textContent = on ? 'Live' : 'Not live';
  $('live').className = `live ${on ? 'on' : 'off'}`;
}

function onEvent(block) {
  const lines = block.split('\n');
  const name = (lines.find((l) => l.startsWith('event: ')) || '').slice(7);
  const raw = (lines.find((l) => l.startsWith('data: ')) || '').slice(6);
  if (!name) return; // a keep-alive comment
  let e = {};
  try { e = JSON.parse(raw || '{}'); } catch { return; }
  data.received++;
  if (name === 'hello') { setLive(true); loadAll(); return; }
  if (name === 'resync') { loadAll(); return; }
  const words = EVENT_WORDS[e.event];
  if (words) notice(words(e));
  if (e.event === 'expired' && viewing?.id === e.detail) closeView('The request expired.');
  reloadSoon();
}

// ---- actions ------------------------------------------------------------

async function startAssist(desktop) {
  const r = await call('POST', '/assist', { desktop });
  if (r) toast(`Invitation sent to ${r.user} on ${r.desktop}.`);
}

async function requestAction(r, action) {
  const done = await call('POST', `/assist/${encodeURIComponent(r.id)}/${action}`);
  if (!done) return;
  const words = { accept: 'Invitation sent', decline: 'Request declined', end: 'Remote assistance ended' };
  toast(`${words[action]}: ${done.user} on ${done.desktop}.`);
  if (action === 'end' && viewing?.id === r.id) closeView('Remote assistance ended.');
}

function openView(r) {
  if (viewer) viewer.leave();
  viewing = r;
  $('view-desktop').textContent = `${r.user} on ${r.desktop}`;
  $('view-status').textContent = 'Connecting…';
  showPage('view');
  viewer = new Viewer($('screen'), {
    token: token(),
    join: { assist: r.id },
    hooks: {
      control: (m) => {
        if (m.type === 'joined') $('view-status').textContent = 'You are assisting: you have control of this desktop.';
        if (m.type === 'notify') toast(m.message);
      },
      closed: (why) => { if (why) closeView(why); },
      reconnecting: (why, ms, lost) => {
        $('view-status').textContent = lost ? 'The connection to the relay was lost; reconnecting…' : 'Connecting…';
      },
    },
  });
  $('h-view').focus();
}

function closeView(why) {
  const v = viewer;
  viewer = null;
  viewing = null;
  if (v && why === null) v.leave();
  if (why) { $('view-status').textContent = why; toast(why, 'error'); }
  showPage('assist');
}

function wire() {
  for (const t of document.querySelectorAll('.tab')) {
    t.addEventListener('click', () => {
      showPage(t.dataset.page);
      if (t.dataset.page === 'policy') renderPolicy();
    });
  }
  $('start-form').addEventListener('submit', (e) => { e.preventDefault(); startAssist($('start-desktop').value.trim()); });
  $('policy-form').addEventListener('submit', (e) => { e.preventDefault(); renderPolicy(); });
  $('audit-form').addEventListener('submit', (e) => { e.preventDefault(); data.auditPage = 0; renderAudit(); });
  $('audit-prev').addEventListener('click', () => { data.auditPage--; renderAudit(); });
  $('audit-next').addEventListener('click', () => { data.auditPage++; renderAudit(); });
  $('view-end').addEventListener('click', () => viewing && requestAction(viewing, 'end'));
  $('view-close').addEventListener('click', () => closeView(null));
  setInterval(renderTimeLeft, 1000);
}

window.asp = Object.freeze({
  stats: () => ({ ...(viewer ? viewer.stats() : { videoFrames: 0 }), events: data.received }),
});

readFragment(TOKEN_KEY);
wire();
showPage('desktops');
if (!token()) showError('Open the console with the link `asp-admin console-link` prints: it signs you in.');
else listen();
