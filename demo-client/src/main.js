// The demo page: wires the client (client.js, the netcode), the keyboard (input.js) and
// the canvas (render.js) to the DOM, and exposes a read-only `window.__ticksync` for
// debugging and browser tests.

import { MAX_PLAYER_NAME_BYTES } from './codec.js';
import { GameClient, describeClose } from './client.js';
import { serverUrl } from './connection.js';
import { Keyboard } from './input.js';
import { Renderer, colourOf } from './render.js';
import { Phase } from './session.js';

const NAME_KEY = 'ticksync.name';

const $ = (id) => document.getElementById(id);
const els = {
  canvas: $('view'),
  form: $('connect-form'),
  name: $('name'),
  connect: $('connect'),
  quickJoin: $('quick-join'),
  status: $('status'),
  lobby: $('lobby'),
  scoreboard: $('scoreboard'),
  scores: $('scores'),
  toasts: $('toasts'),
};

// ---------------------------------------------------------------------------------------
// Name, remembered in localStorage.

function storedName() {
  try {
    return localStorage.getItem(NAME_KEY);
  } catch {
    return null; // storage disabled
  }
}

function storeName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // storage disabled: the name lasts for this page only
  }
}

// Trimmed and cut to the protocol's byte limit (at a character boundary).
function cleanName(raw) {
  let name = raw.trim().replace(/\p{Cc}/gu, '');
  const encoder = new TextEncoder();
  while (encoder.encode(name).length > MAX_PLAYER_NAME_BYTES) name = [...name].slice(0, -1).join('');
  return name;
}

const defaultName = `player-${100 + Math.floor(Math.random() * 900)}`;
els.name.value = cleanName(storedName() ?? '') || defaultName;

// ---------------------------------------------------------------------------------------
// The client.

const url = serverUrl(location);
const keyboard = new Keyboard(window);
let dirty = true;

const client = new GameClient({
  url,
  name: els.name.value,
  direction: () => keyboard.direction(),
  onChange: () => {
    dirty = true;
  },
  // A disconnect shows in the status line (and stays there).
  onEvent: ({ kind, text }) => kind !== 'closed' && toast(kind, text),
});
const session = client.session;

function connect() {
  const name = cleanName(els.name.value) || defaultName;
  els.name.value = name;
  storeName(name);
  client.connect(name);
  els.name.blur();
}

els.form.addEventListener('submit', (e) => {
  e.preventDefault();
  connect();
});
els.quickJoin.addEventListener('click', () => {
  client.quickJoin();
  els.quickJoin.blur();
});

// ---------------------------------------------------------------------------------------
// HUD: status line, lobby line, scoreboard, toasts.

function statusOf() {
  switch (session.phase) {
    case Phase.Idle:
      return ['idle', 'Not connected'];
    case Phase.Connecting:
      return ['connecting', `Connecting to ${url}…`];
    case Phase.Handshaking:
      return ['connecting', 'Connected, saying hello…'];
    case Phase.Lobbyless:
      return ['online', 'Connected, not in a lobby'];
    case Phase.InLobby:
      return ['online', 'Playing'];
    case Phase.Closed:
      return ['closed', client.connection?.closeInfo ? describeClose(client.connection.closeInfo) : 'Disconnected'];
    default:
      return ['idle', session.phase];
  }
}

function lobbyText() {
  const l = session.lobby;
  if (!l || session.phase === Phase.Closed) return '';
  const parts = [
    `${l.name}${l.code ? ` · code ${l.code}` : ''}`,
    `${session.players.size}/${l.maxPlayers} players`,
  ];
  if (session.snapshot) parts.push(`tick ${session.snapshot.tick}`);
  if (session.rttMs !== null) parts.push(`${session.rttMs} ms`);
  return parts.join(' · ');
}

let lastScores = '';
function renderScores() {
  const rows = session.scoreboard();
  const key = JSON.stringify(rows) + session.snapshot?.entities.map((e) => e.flags).join();
  if (key === lastScores) return;
  lastScores = key;
  els.scoreboard.hidden = rows.length === 0;
  const it = new Set(session.entities().filter((e) => e.it).map((e) => e.id));
  els.scores.replaceChildren(
    ...rows.map((r) => {
      const li = document.createElement('li');
      if (r.me) li.classList.add('me');
      const dot = document.createElement('span');
      dot.className = 'dot';
      dot.style.background = colourOf(r.entity);
      const name = document.createElement('span');
      name.className = 'who';
      name.textContent = r.name;
      if (it.has(r.entity)) {
        const tag = document.createElement('span');
        tag.className = 'it';
        tag.textContent = 'IT';
        name.append(' ', tag);
      }
      const score = document.createElement('span');
      score.className = 'score';
      score.textContent = String(r.score);
      li.append(dot, name, score);
      return li;
    }),
  );
}

function renderHud() {
  const [state, text] = statusOf();
  els.status.dataset.state = state;
  els.status.textContent = text;
  els.lobby.textContent = lobbyText();
  els.connect.textContent = client.connected ? 'Reconnect' : 'Connect';
  els.quickJoin.hidden = session.phase !== Phase.Lobbyless;
  renderScores();
}

function toast(kind, text) {
  const div = document.createElement('div');
  div.className = `toast ${kind}`;
  div.textContent = text;
  els.toasts.append(div);
  while (els.toasts.children.length > 4) els.toasts.firstElementChild.remove();
  setTimeout(() => div.remove(), 8000);
}

// ---------------------------------------------------------------------------------------
// Frames.

const renderer = new Renderer(els.canvas);

function frame(time) {
  if (dirty) {
    renderHud();
    dirty = false;
  }
  const l = session.lobby;
  let message = null;
  if (session.phase === Phase.Closed) message = 'Disconnected. Press Connect to play again.';
  else if (!l) message = session.phase === Phase.Lobbyless ? 'Not in a lobby.' : 'Connecting…';
  else if (!session.snapshot) message = 'Waiting for the first snapshot…';
  renderer.draw({
    world: l ? { width: l.worldWidth, height: l.worldHeight } : null,
    entities: session.entities(),
    message,
    time,
  });
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// ---------------------------------------------------------------------------------------
// window.__ticksync: a read-only view of the state (fresh copies on every read).

const debug = Object.freeze({
  /** The WebSocket URL. */
  get url() {
    return url;
  },
  /** True while the WebSocket is open. */
  get connected() {
    return client.connected;
  },
  /** 'idle' | 'connecting' | 'handshaking' | 'lobbyless' | 'in-lobby' | 'closed'. */
  get phase() {
    return session.phase;
  },
  /** The player id from Welcome. */
  get playerId() {
    return session.playerId;
  },
  /** The tick rate from Welcome. */
  get tickRate() {
    return session.tickRate;
  },
  /** {id, name, code, maxPlayers, worldWidth, worldHeight, maxSpeed, joinedTick} or null. */
  get lobby() {
    return session.lobby ? { ...session.lobby } : null;
  },
  /** This player's entity id in the lobby, or null. */
  get myEntity() {
    return session.myEntity;
  },
  /** The tick of the latest snapshot, or null. */
  get tick() {
    return session.snapshot?.tick ?? null;
  },
  /** Same as tick. */
  get snapshotTick() {
    return session.snapshot?.tick ?? null;
  },
  /** The ack_seq of the latest snapshot, or null. */
  get ackSeq() {
    return session.snapshot?.ack_seq ?? null;
  },
  /** The seq of the last Input sent (0: none yet). */
  get inputSeq() {
    return client.inputSeq;
  },
  /** The latest snapshot's entities in world units: [{id, name, x, y, vx, vy, flags, it, me}]. */
  get entities() {
    return session.entities();
  },
  /** The players of the lobby: [{entity, playerId, name}]. */
  get players() {
    return [...session.players.values()].map((p) => ({ ...p }));
  },
  /** The scoreboard, best first: [{entity, name, score, me}]. */
  get scores() {
    return session.scoreboard();
  },
  /** The last Error message: {code, name, message} or null. */
  get lastError() {
    return session.lastError ? { ...session.lastError } : null;
  },
  /** The close code and reason once disconnected: {code, reason, wasClean} or null. */
  get close() {
    const info = client.connection?.closeInfo;
    return info ? { ...info } : null;
  },
  /** The last measured round-trip time in ms, or null. */
  get rttMs() {
    return session.rttMs;
  },
});
Object.defineProperty(window, '__ticksync', {
  value: debug,
  writable: false,
  configurable: false,
  enumerable: false,
});

connect();
