// The web collaborator: joins a shared desktop with a collaboration code
// and watches it (and operates it once the host grants control), speaking
// docs/protocol.md to the relay that served this page, on /view.
//
// One Session per WebSocket: Join makes one, Leave or a close from the relay
// ends it and returns to the join form.  The relay's refusals are shown
// word for word: they are written for the person at the keyboard.

import { AudioPlayer } from './audio.js';
import { InputCapture } from './input.js';
import { Viewer } from './viewer.js';
import { openJoinForm } from './home.js';
import { acceptLinkToken, makeDraggable, toast, trustLinkRelays } from './ui.js';

const $ = (id) => document.getElementById(id);
const METRICS_INTERVAL_MS = 1000;

const CLOSE_MESSAGES = {
  1001: 'The relay is going away (restarting or shutting down). Join again in a moment.',
  1006: 'The connection to the relay was lost.',
};

const GUIDANCE = 'This browser cannot decode the shared desktop\'s video. Upgrade Chrome to the latest version, '
  + 'or turn on "Use hardware acceleration when available" (Settings → System) and restart Chrome.';
const INSECURE = 'Video decoding needs a secure page: open this page over https://.';

const NOTICES = {
  pattern: 'The desktop sends a test pattern, not video.',
  'unsupported-codec': 'The desktop sends video in a format this page cannot show.',
};

const audio = new AudioPlayer();
let session = null;
const input = new InputCapture($('screen'), (fields) => session?.sendInput(fields));

// ---- small UI helpers -------------------------------------------------

function showJoin(error) {
  $('watch-view').hidden = true;
  $('join-view').hidden = false;
  $('join-status').textContent = '';
  $('join-error').hidden = !error;
  $('join-error').textContent = error || '';
  if (error) openJoinForm();
  setMenu(false);
  setControl(false);
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

function showWatch() {
  $('join-view').hidden = true;
  $('watch-view').hidden = false;
  $('notice').hidden = true;
  $('browser-guidance').hidden = true;
  // No picture from an earlier session may pass for this one's.
  const canvas = $('screen');
  const ctx = canvas.getContext('2d', { alpha: false });
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  canvas.focus();
}

function setBusy(busy, status = '') {
  $('join').disabled = busy;
  $('join-status').textContent = status;
}

function guidanceText(detail) {
  const base = window.isSecureContext ? GUIDANCE : `${INSECURE} ${GUIDANCE}`;
  return detail ? `${base}\n(${detail})` : base;
}

function setControl(on) {
  const el = $('control-indicator');
  el.textContent = on ? 'You have control' : 'View only';
  el.className = `control ${on ? 'on' : 'off'}`;
  input.enabled = on;
}

// ---- the session --------------------------------------------------------

class Session {
  constructor(code, name, token) {
    this.joined = false;
    this.streamInfo = null;
    // Without a name the relay shows the signed-in user's id.
    this.viewer = new Viewer($('screen'), {
      token,
      name,
      join: { code },
      audio,
      input,
      closeMessages: CLOSE_MESSAGES,
      hooks: {
        notice: (kind) => this.notice(kind),
        guidance: (detail) => this.guidance(detail),
        size: () => renderMetrics(),
        control: (m) => CONTROL_HANDLERS[m.type]?.(this, m),
        closed: (why) => this.onClose(why),
        reconnecting: (why) => this.onReconnecting(why),
        reconnected: () => toast('Reconnected.'),
      },
    });
    this.closed = this.viewer.closed;
  }

  get video() { return this.viewer.video; }

  get metrics() { return this.viewer.metrics; }

  sendInput(fields) { this.viewer.sendInput(fields); }

  notice(kind) {
    const el = $('notice');
    el.hidden = !kind;
    if (kind) el.textContent = NOTICES[kind];
  }

  guidance(detail) {
    const el = $('browser-guidance');
    el.textContent = guidanceText(detail);
    el.hidden = false;
  }

  // why: the relay's words, or null after leave.
  onClose(why) {
    if (session === this) session = null;
    if (why === null) return;
    if (this.joined) toast(why, 'error');
    showJoin(why);
    setBusy(false);
  }

  // A relay of the list failed, or the connection was lost and another
  // relay is tried: the person sees it once, not at every attempt.
  onReconnecting(why) {
    if (!this.joined) return;
    if (!this.reconnecting) toast(`${why} Reconnecting…`, 'error');
    this.reconnecting = true;
    setControl(false);
    $('control-indicator').textContent = 'Reconnecting…';
  }

  leave() { this.viewer.leave(); }
}

// Refusals of one message that leave the connection up (docs/protocol.md).
const KEEPS_CONNECTION = new Set(['no_control', 'malformed']);
const NOTIFY_CONTROL = { control_granted: true, control_revoked: false };

const CONTROL_HANDLERS = {
  joined: (s, m) => {
    setControl(m.control === true);
    // Joined again after a lost connection: the same session goes on.
    if (s.joined) { s.reconnecting = false; return; }
    s.joined = true;
    setBusy(false);
    showWatch();
    toast(`Joined ${m.name || m.session}`);
  },
  notify: (s, m) => {
    if (m.event in NOTIFY_CONTROL) setControl(NOTIFY_CONTROL[m.event]);
    toast(m.message);
  },
  stream: (s, m) => {
    s.streamInfo = m;
    renderMetrics();
  },
  metrics: () => renderMetrics(),
  error: (s, m) => {
    if (m.code === 'no_control') setControl(false);
    // Refusals that end the connection are shown when it closes.
    if (KEEPS_CONNECTION.has(m.code)) toast(m.message, 'error');
  },
};

// ---- metrics panel -----------------------------------------------------

function formatBitrate(bytesPerS) {
  const bits = bytesPerS * 8;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(2)} Mbit/s`;
  return `${(bits / 1e3).toFixed(0)} kbit/s`;
}

// Loopback round trips are a few hundredths of a millisecond: keep them visible.
function formatMs(ms) {
  if (typeof ms !== 'number') return '–';
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

function renderMetrics() {
  if (!session || $('metrics').hidden) return;
  const m = session.metrics || {};
  const streams = m.streams || [];
  const video = streams.find((st) => st.kind === 'video');
  const canvas = $('screen');
  const values = {
    fps: video ? video.fps.toFixed(1) : '–',
    decoded_fps: session.video.fps.toFixed(1),
    bitrate: m.streams ? formatBitrate(streams.reduce((a, st) => a + st.bytes_per_s, 0)) : '–',
    latency: formatMs(m.latency_ms),
    rtt: formatMs(m.rtt_ms),
    drops: m.dropped !== undefined ? String(m.dropped) : '–',
    resolution: video && video.width ? `${video.width}×${video.height}` : `${canvas.width}×${canvas.height}`,
    codec: video ? `${video.codec}${session.video.codecString ? ` (${session.video.codecString})` : ''}` : '–',
  };
  for (const el of document.querySelectorAll('[data-metric]')) el.textContent = values[el.dataset.metric];
}

// ---- the floating ball -------------------------------------------------

function setMenu(open) {
  $('ball-menu').hidden = !open;
  $('ball-toggle').setAttribute('aria-expanded', String(open));
}

function wireBall() {
  makeDraggable($('ball'), $('ball-toggle'));
  $('ball-toggle').addEventListener('click', (e) => {
    if (e.currentTarget.dataset.dragged) return;
    setMenu($('ball-menu').hidden);
  });
  $('menu-metrics').addEventListener('click', () => {
    $('metrics').hidden = !$('metrics').hidden;
    renderMetrics();
  });
  $('menu-fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch((err) => toast(`Fullscreen is not available: ${err.message}`));
  });
  document.addEventListener('fullscreenchange', () => {
    $('menu-fullscreen').textContent = document.fullscreenElement ? 'Exit Fullscreen' : 'Fullscreen';
  });
  $('menu-leave').addEventListener('click', () => {
    const s = session;
    if (!s) return;
    session = null;
    s.leave();
    showJoin();
    toast('You left the collaboration.');
    // Rejoining waits until the relay has let the old connection go.
    setBusy(true, 'Leaving…');
    s.closed.then(() => setBusy(false));
  });
  setInterval(renderMetrics, METRICS_INTERVAL_MS);
}

// ---- the join form -----------------------------------------------------

// The link that opens the page may carry the code and the person's sign-in
// token, best in the fragment (#code=…&token=…), which never reaches server
// logs.  The token is kept for this tab only and taken out of the address
// bar, so it is not copied along with the link.
function readLink() {
  const params = new URLSearchParams(location.search);
  const frag = new URLSearchParams(location.hash.slice(1));
  const code = frag.get('code') || params.get('code');
  const token = frag.get('token') || params.get('token');
  if (code) $('code').value = code;
  if (token) {
    if (acceptLinkToken(token)) {
      sessionStorage.setItem('asp.token', token);
      trustLinkRelays();
    }
    params.delete('token');
    const query = params.toString();
    history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}`);
  }
}

function signInToken() {
  return sessionStorage.getItem('asp.token');
}

function wireJoin() {
  readLink();
  $('name').value = localStorage.getItem('asp.name') || '';
  if (typeof VideoDecoder === 'undefined') {
    $('browser-guidance-join').textContent = guidanceText('WebCodecs (VideoDecoder) is not available.');
    $('browser-guidance-join').hidden = false;
  }
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (session) return;
    const code = $('code').value.trim();
    const name = $('name').value.trim();
    localStorage.setItem('asp.name', name);
    $('join-error').hidden = true;
    setBusy(true, 'Connecting…');
    audio.start(); // inside the click: browsers only allow sound after a gesture
    session = new Session(code, name, signInToken());
  });
}

// What the page has decoded, for support and for the browser tests.
window.asp = Object.freeze({
  stats: () => ({
    videoFrames: session ? session.video.decoded : 0,
    codecString: session ? session.video.codecString : null,
    audioBlocks: audio.blocks,
    audioState: audio.ctx ? audio.ctx.state : 'none',
    control: input.enabled,
    relay: session ? session.viewer.url : null,
    redirects: session ? session.viewer.redirects : 0,
  }),
});

wireJoin();
wireBall();
