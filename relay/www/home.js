// The client's home page: the signed-in user's cloud desktops (the
// resource list, each opening the desktop's own client) and, at the upper
// right, the Shared Collaboration icon that opens the join form.  The
// join itself is app.js's.

import { $, api, relayQuery, storedToken } from './ui.js';

export function openJoinForm(open = true) {
  $('join-form').hidden = !open;
  $('collab-icon').setAttribute('aria-expanded', String(open));
  if (open) $('code').focus();
}

function stateWords(d) {
  if (!d.online) return 'Offline';
  if (d.guest) return d.guest_kind === 'assist' ? `Online, ${d.guest} assisting` : `Online, shared with ${d.guest}`;
  return d.collaboration ? 'Online, collaboration code standing' : 'Online';
}

async function loadDesktops() {
  const token = storedToken();
  const list = $('desktop-list');
  if (!token) {
    $('resources-status').textContent = 'Sign in with the link you were given to see your desktops.';
    return;
  }
  try {
    const r = await api(token, 'GET', '/me/desktops');
    list.replaceChildren();
    for (const d of r.desktops) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = `owner.html${relayQuery()}#key=${encodeURIComponent(d.owner_key)}`;
      a.textContent = d.name || d.desktop;
      const state = document.createElement('span');
      state.className = 'hint';
      state.textContent = ` ${d.desktop} · ${stateWords(d)}`;
      li.append(a, state);
      list.append(li);
    }
    $('resources-status').textContent = r.desktops.length ? '' : `No cloud desktop of ${r.user} is connected.`;
  } catch (e) {
    $('resources-status').textContent = e.message;
  }
}

// A tab opened from the owner's client's Join Collaboration brings the
// code and name in its copy of session storage: join at once.
function takeHandoff() {
  const raw = sessionStorage.getItem('asp.join');
  if (!raw) return;
  sessionStorage.removeItem('asp.join');
  let j;
  try { j = JSON.parse(raw); } catch { return; }
  openJoinForm();
  $('code').value = j.code || '';
  $('name').value = j.name || '';
  setTimeout(() => $('join-form').requestSubmit(), 0);
}

$('collab-icon').addEventListener('click', () => openJoinForm($('join-form').hidden));
if (new URLSearchParams(location.hash.slice(1)).get('code') || new URLSearchParams(location.search).get('code')) {
  openJoinForm();
}
setTimeout(() => { loadDesktops(); takeHandoff(); }, 0);
