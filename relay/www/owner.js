// The desktop's own client: the desktop's user watches and operates their
// cloud desktop and, from the floating ball, shares it (Shared
// Collaboration), asks an administrator for help (Remote Assistance) and
// accepts the administrator's invitation.  It joins as the owner with the
// owner key the link carries; every request goes to the relay on the same
// connection, which applies the host's own rules and tells the host.  The
// relay's refusals are shown word for word.

import { Viewer } from './viewer.js';
import { $, makeDraggable, readFragment, relayQuery, storedToken, timeLeft, toast } from './ui.js';

const EXPIRED = 'Your request for help expired. You must submit a new request.';
const STATUS = {
  connecting: 'Connecting…',
  watching: 'You have control of your desktop',
  offline: 'The desktop is not connected; waiting for it to come back.',
  reconnecting: 'The connection to the relay was lost; reconnecting…',
};

const INITIAL = {
  code: null,
  guest: null,          // the collaborator's name
  control: false,
  assist: 'idle',       // idle | pending | expired | invited | accepted | active
  assistId: null,
  assistAdmin: null,
  expiresAtMs: 0,       // local clock, from the relay's expires_in
  lastPanel: 'collab',  // where a refusal is shown
};
const state = { ...INITIAL };
let viewer = null;

// ---- rendering ----------------------------------------------------------

function show(id, on) { $(id).hidden = !on; }

function renderCollab() {
  show('collab-idle', !state.code && !state.guest);
  show('collab-code-box', Boolean(state.code));
  show('collab-guest', Boolean(state.guest));
  $('guest-name').textContent = state.guest || '';
  $('guest-control').textContent = state.control ? 'has control' : 'view only';
  $('control-toggle').textContent = state.control ? 'Take back control' : 'Give control';
  $('collab-code').textContent = state.code || '';
}

function renderAssist() {
  const words = {
    idle: 'Ask an administrator to help you on this desktop.',
    pending: 'Your request was sent. An administrator will answer it.',
    expired: EXPIRED,
    invited: `${state.assistAdmin || 'An administrator'} offers remote assistance.`,
    accepted: 'You accepted remote assistance; the administrator can now connect.',
    active: `${state.assistAdmin || 'An administrator'} is assisting you.`,
  };
  $('assist-state').textContent = words[state.assist];
  show('assist-send', state.assist === 'idle' || state.assist === 'expired');
  show('assist-exit', state.assist === 'accepted' || state.assist === 'active');
  renderTimeLeft();
}

function renderTimeLeft() {
  const pending = state.assist === 'pending';
  show('assist-left', pending);
  if (pending) {
    const s = Math.max(0, Math.round((state.expiresAtMs - Date.now()) / 1000));
    $('assist-left').textContent = `Time left: ${timeLeft(s)} of 180 minutes`;
  }
}

function setStatus(kind) { $('status-line').textContent = STATUS[kind]; }

function showError(text) {
  const el = $(state.lastPanel === 'assist' ? 'assist-error' : 'collab-error');
  el.textContent = text;
  el.hidden = false;
  toast(text, 'error');
}

function clearErrors() {
  $('collab-error').hidden = true;
  $('assist-error').hidden = true;
}

// ---- what the relay says ----------------------------------------------

const NOTIFY = {
  collab_joined: (m) => { state.guest = m.name || ''; toast(`${m.message}: ${m.name}`); },
  collab_stopped: (m) => { state.guest = null; state.control = false; toast(`${m.message}: ${m.name}`); },
  collab_discarded: (m) => { state.code = null; toast(m.message); },
  collab_ended: (m) => { state.code = null; toast(m.message); },
  control_granted: () => { state.control = true; },
  control_revoked: () => { state.control = false; },
  assist_requested: (m) => {
    state.assist = 'pending';
    state.assistId = m.id;
    state.expiresAtMs = Date.now() + (m.expires_in ?? 0) * 1000;
    toast(m.message);
  },
  assist_expired: () => { state.assist = 'expired'; toast(EXPIRED); },
  assist_accepted: (m) => { state.assist = 'accepted'; state.assistId = m.id; closeDialog('invite'); },
  assist_declined: (m) => { state.assist = 'idle'; closeDialog('invite'); toast(m.message); },
  assist_started: (m) => { state.assist = 'active'; state.assistAdmin = m.name; toast(m.message); },
  assist_ended: (m) => { state.assist = 'idle'; state.assistAdmin = null; toast(m.message); },
  host_offline: () => setStatus('offline'),
  host_online: () => setStatus('watching'),
};

function onControl(m) {
  switch (m.type) {
    case 'joined':
      // The relay brings a joining owner up to date (docs/protocol.md):
      // after a reconnect, nothing from before may linger.
      Object.assign(state, { ...INITIAL, lastPanel: state.lastPanel });
      setStatus('watching');
      break;
    case 'code':
      state.code = m.code;
      break;
    case 'assist_invite':
      state.assist = 'invited';
      state.assistId = m.id;
      state.assistAdmin = m.admin;
      openInvite(m);
      break;
    case 'notify':
      NOTIFY[m.event]?.(m);
      if (!NOTIFY[m.event]) toast(m.message);
      break;
    case 'error':
      showError(m.message);
      break;
    default:
      return;
  }
  renderCollab();
  renderAssist();
}

function onClosed(why) {
  viewer = null;
  $('status-line').textContent = why || 'Disconnected.';
  $('status-line').className = 'control off';
  if (why) toast(why, 'error');
}

// ---- dialogs ------------------------------------------------------------

function closeDialog(id) { if ($(id).open) $(id).close(); }

function openInvite(m) {
  $('invite-text').textContent = `Administrator ${m.admin} offers to help you on this desktop. `
    + 'Accept the request to let them see and operate it.';
  if (!$('invite').open) $('invite').showModal();
  $('invite-accept').focus();
}

// ---- the ball -----------------------------------------------------------

function setMenu(open) {
  $('ball-menu').hidden = !open;
  $('ball-toggle').setAttribute('aria-expanded', String(open));
}

function openPanel(id) {
  for (const p of document.querySelectorAll('.panel')) p.hidden = p.id !== id;
  state.lastPanel = id === 'assist-panel' ? 'assist' : 'collab';
  setMenu(false);
  clearErrors();
  const heading = $(id).querySelector('h2');
  heading.focus();
}

function send(obj) {
  clearErrors();
  if (!viewer) { showError('The connection to the relay was lost.'); return; }
  viewer.send(obj);
}

// The clipboard API needs a secure page (https:// or localhost); elsewhere
// the older copy command still works from a click.
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('collab-code'));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    return document.execCommand('copy');
  }
}

function wire() {
  makeDraggable($('ball'), $('ball-toggle'));
  $('ball-toggle').addEventListener('click', (e) => {
    if (e.currentTarget.dataset.dragged) return;
    setMenu($('ball-menu').hidden);
  });
  $('menu-collab').addEventListener('click', () => openPanel('collab-panel'));
  $('menu-assist').addEventListener('click', () => openPanel('assist-panel'));
  $('menu-metrics').addEventListener('click', () => { $('metrics').hidden = !$('metrics').hidden; });
  $('menu-fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch((err) => toast(`Fullscreen is not available: ${err.message}`));
  });
  document.addEventListener('fullscreenchange', () => {
    $('menu-fullscreen').textContent = document.fullscreenElement ? 'Exit Fullscreen' : 'Fullscreen';
  });
  for (const b of document.querySelectorAll('.close-panel')) {
    b.addEventListener('click', () => { b.closest('.panel').hidden = true; $('ball-toggle').focus(); });
  }

  $('collab-start').addEventListener('click', () => send({ type: 'share' }));
  $('collab-discard').addEventListener('click', () => send({ type: 'discard' }));
  $('collab-copy').addEventListener('click', async () => {
    if (await copyText(state.code || '')) {
      $('collab-copied').textContent = 'Copied';
      setTimeout(() => { $('collab-copied').textContent = ''; }, 3000);
    } else {
      showError('The code could not be copied: select it and copy it by hand.');
    }
  });
  $('control-toggle').addEventListener('click', () => send({ type: 'control', guest: !state.control }));
  $('collab-end').addEventListener('click', () => { $('end-confirm').showModal(); $('end-cancel').focus(); });
  $('end-now').addEventListener('click', () => { $('end-confirm').close(); send({ type: 'end' }); });
  $('end-cancel').addEventListener('click', () => $('end-confirm').close());
  $('collab-join').addEventListener('click', () => openPanel('join-panel'));
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    // The collaborator page joins with what this tab hands it (the new
    // tab starts with a copy of this one's session storage).
    sessionStorage.setItem('asp.join', JSON.stringify({ code: $('code').value.trim(), name: $('name').value.trim() }));
    window.open(`/${relayQuery()}`, '_blank');
    sessionStorage.removeItem('asp.join');
  });

  $('assist-send').addEventListener('click', () => send({ type: 'assist_request' }));
  $('assist-exit').addEventListener('click', () => send({ type: 'assist_end' }));
  $('invite-accept').addEventListener('click', () => {
    state.lastPanel = 'assist';
    send({ type: 'assist_accept', id: state.assistId });
    $('invite').close();
  });
  $('invite-decline').addEventListener('click', () => {
    state.lastPanel = 'assist';
    send({ type: 'assist_decline', id: state.assistId });
    $('invite').close();
  });
  setInterval(renderTimeLeft, 1000);
  setInterval(renderMetrics, 1000);
}

function renderMetrics() {
  if (!viewer || $('metrics').hidden) return;
  const m = viewer.metrics || {};
  const ms = (v) => (typeof v === 'number' ? `${v.toFixed(2)} ms` : '–');
  const values = {
    decoded_fps: viewer.video.fps.toFixed(1),
    latency: ms(m.latency_ms),
    rtt: ms(m.rtt_ms),
    drops: m.dropped !== undefined ? String(m.dropped) : '–',
    codec: viewer.video.codecString || '–',
  };
  for (const el of document.querySelectorAll('[data-metric]')) el.textContent = values[el.dataset.metric];
}

// ---- start --------------------------------------------------------------

function start() {
  const frag = readFragment();
  if (frag.key) sessionStorage.setItem('asp.owner_key', frag.key);
  const key = sessionStorage.getItem('asp.owner_key');
  wire();
  renderCollab();
  renderAssist();
  if (!key) {
    onClosed('This link has no owner key: open the link asp-host printed (owner-link), or your desktop from the home page.');
    return;
  }
  setStatus('connecting');
  viewer = new Viewer($('screen'), {
    token: storedToken(),
    join: { owner_key: key },
    hooks: {
      control: onControl,
      closed: onClosed,
      reconnecting: (why, ms, lost) => setStatus(lost ? 'reconnecting' : 'connecting'),
      notice: (kind) => { $('notice').hidden = !kind; $('notice').textContent = kind ? 'The desktop sends no picture this page can show.' : ''; },
      guidance: (detail) => { $('browser-guidance').hidden = false; $('browser-guidance').textContent = `This browser cannot decode the desktop's video. (${detail})`; },
    },
  });
  $('ball-toggle').focus();
}

window.asp = Object.freeze({
  stats: () => ({ ...(viewer ? viewer.stats() : { videoFrames: 0 }), state: { ...state } }),
});

start();
