// The demo page: wires the client (client.js, the netcode), the controls (input.js), the
// canvas (render.js) and the DOM (ui.js), runs the frame loop on requestAnimationFrame,
// and exposes a read-only `window.__ticksync` for debugging and browser tests.
//
// Page parameters: `?lag=150&jitter=30` (link conditioner, ms each way), `?join=CODE`
// (join a private lobby once connected), `?name=...`, `?server=host:port`, `?token=...`
// (a join token, passed on as /ws?token=...), `?stats=1` (net stats shown at start),
// `?interp=3` (minimum interpolation delay in ticks), `?delta=0` (full snapshots only).

import { ConnState, GameClient } from './client.js';
import { conditionerSettings } from './conditioner.js';
import { serverUrl } from './connection.js';
import { gameModule } from './games/index.js';
import { Controls } from './input.js';
import { Renderer } from './render.js';
import { Ui, cleanName } from './ui.js';

const NAME_KEY = 'ticksync.name';
const params = new URLSearchParams(location.search);

const names = {
  get() {
    try {
      return localStorage.getItem(NAME_KEY);
    } catch {
      return null; // storage disabled
    }
  },
  set(name) {
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      // storage disabled: the name lasts for this page only
    }
  },
};
const defaultName = `player-${100 + Math.floor(Math.random() * 900)}`;
if (params.get('name')) names.set(cleanName(params.get('name')) || defaultName);
const initialName = cleanName(names.get() ?? '') || defaultName;

const canvas = document.getElementById('view');
const url = serverUrl(location);
const conditioner = conditionerSettings(location.search);
const minDelay = Number.parseFloat(params.get('interp') ?? '');
let client = null;
const controls = new Controls({
  keyTarget: window,
  surface: canvas,
  enabled: () => client?.inLobby ?? false,
  mouseAims: () => client?.game?.aims ?? false,
});
const renderer = new Renderer(canvas);

// The world point under the mouse pointer (for games that aim), or null.
function aimAt() {
  const p = controls.pointer;
  const l = renderer.layout;
  if (!p || !l) return null;
  return { x: (p.x - l.ox) / l.scale, y: (p.y - l.oy) / l.scale };
}

let dirty = true;
client = new GameClient({
  url,
  name: initialName,
  controls,
  aimAt,
  conditioner,
  deltaSnapshots: params.get('delta') !== '0',
  interpolation: Number.isFinite(minDelay) && minDelay > 0 ? { minDelayTicks: minDelay } : undefined,
  onChange: () => {
    dirty = true;
  },
  // Game events go to the feed (ui.js renders it), everything else is a toast.
  onEvent: ({ kind, text }) => {
    if (kind !== 'game') ui.toast(kind, text);
  },
});

const ui = new Ui({ client, controls, names, defaultName, url });
if (params.get('stats') === '1') ui.toggleStats(true);

// A shared invite link (?join=CODE): join that lobby as soon as the server welcomes us.
const joinCode = params.get('join');
if (joinCode) client.afterWelcome = () => client.joinCode(joinCode.trim().toUpperCase());

// ---------------------------------------------------------------------------------------
// Frames: rendering runs at the display rate; inputs go out on their own tick timer.

let frameTime = 0;
let lastStats = -Infinity;
let lastStatus = -Infinity;

function frame(time) {
  frameTime = performance.now();
  const view = client.frame(frameTime);
  const inGame = client.inLobby;
  if (dirty || frameTime - lastStatus > 250) {
    // The countdowns and the scoreboard's "it" tag change without a message.
    ui.render(frameTime);
    dirty = false;
    lastStatus = frameTime;
  }
  if (frameTime - lastStats > 250) {
    ui.renderStats(frameTime);
    lastStats = frameTime;
  }
  let message = null;
  if (inGame && view.entities.length === 0) message = 'Waiting for the first snapshot…';
  const game = client.game;
  renderer.draw({
    world: inGame && game ? { width: game.world.width, height: game.world.height } : null,
    backdrop: game ? (gameModule(game.name)?.backdrop ?? null) : null,
    entities: view.entities,
    server: ui.statsVisible ? view.server : null,
    drag: inGame ? controls.drag : null,
    message,
    time,
  });
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// ---------------------------------------------------------------------------------------
// window.__ticksync: a read-only view of the state (fresh copies on every read).

const copy = (p) => (p ? { x: p.x, y: p.y } : null);
const debug = Object.freeze({
  /** The WebSocket URL. */
  get url() {
    return url;
  },
  /** 'idle' | 'connecting' | 'online' | 'reconnecting' | 'disconnected'. */
  get state() {
    return client.state;
  },
  /** True while the WebSocket is open. */
  get connected() {
    return client.connected;
  },
  /** The protocol phase: 'connecting' | 'handshaking' | 'lobbyless' | 'in-lobby' | 'closed'. */
  get phase() {
    return client.session.phase;
  },
  /** 'lobby' (the lobby browser) or 'game'. */
  get screen() {
    return client.inLobby ? 'game' : 'lobby';
  },
  /** The player id and tick rate from Welcome, and the name it welcomed. */
  get playerId() {
    return client.session.playerId;
  },
  get tickRate() {
    return client.session.tickRate;
  },
  get name() {
    return client.welcomedName;
  },
  /** {id, name, code, maxPlayers, seat, joinedTick, game, schemaHash} or null. */
  get lobby() {
    const l = client.session.lobby;
    return l ? { ...l } : null;
  },
  /** The public lobbies last listed: [{id, name, players, max_players}]. */
  get lobbies() {
    return client.session.lobbies.map((l) => ({ ...l }));
  },
  /** The id of the entity this player controls, or null. */
  get myEntity() {
    return client.myEntityId;
  },
  /** This player's seat in the lobby, or null. */
  get seat() {
    return client.session.seat;
  },
  /** What GET /api/game said before joining ({game, title, schema_hash, ...}) or null. */
  get serverGame() {
    return ui.serverGame ? structuredClone(ui.serverGame) : null;
  },
  /** The lobby's game: {name, title, known (has a module), predicts, aims} or null. */
  get game() {
    const g = client.game;
    return g ? { name: g.name, title: g.title, known: g.known, predicts: g.predict !== null, aims: g.aims } : null;
  },
  /** The lobby state and this player's private state ({field: value}). */
  get lobbyState() {
    return structuredClone(client.session.lobbyValues());
  },
  get privateState() {
    return structuredClone(client.session.privateValues());
  },
  /** Recent game events, newest last: [{tick, type, values, text}]. */
  get events() {
    return structuredClone(client.session.events);
  },
  /** The last MatchEnded: {summary, results} or null. */
  get matchEnded() {
    return structuredClone(client.session.matchEnded);
  },
  /** Where the world is on the page: {ox, oy, scale} (CSS pixels of the canvas), or null. */
  get layout() {
    return renderer.layout ? { ...renderer.layout } : null;
  },
  /** The predicted own position after the newest input sent (world units), or null. */
  get predicted() {
    return copy(client.view.predicted);
  },
  /** The own position drawn in the last frame (prediction plus smoothing), or null. */
  get me() {
    return copy(client.view.me);
  },
  /** The own position in the last snapshot, or null. */
  get serverPosition() {
    return copy(client.view.server);
  },
  /**
   * Every entity as drawn in the last frame: [{id, kind, kindName, controlledBy, name, x,
   * y, values, it, me}], world units.
   */
  get entities() {
    return client.view.entities.map((e) => ({ ...e, values: structuredClone(e.values), style: { ...e.style } }));
  },
  /** The render tick of the last frame and how it was made ('interpolate', 'extrapolate'...). */
  get renderTick() {
    return client.view.renderTick;
  },
  get renderMode() {
    return client.view.mode;
  },
  /** The tick of the newest snapshot received, or null. */
  get snapshotTick() {
    return client.buffer.newestTick;
  },
  /** Same as snapshotTick (older name). */
  get tick() {
    return client.buffer.newestTick;
  },
  /** The seq of the last Input sent and the last one the server acknowledged. */
  get inputSeq() {
    return client.inputSeq;
  },
  get ackSeq() {
    return client.ackSeq;
  },
  /** Frames drawn so far (requestAnimationFrame callbacks), and the last one's time (ms). */
  get frame() {
    return client.frameCount;
  },
  get frameTime() {
    return client.lastFrameAt;
  },
  /** The net stats of the overlay (see GameClient.stats). */
  get stats() {
    return client.stats(performance.now());
  },
  /** The players of the lobby: [{seat, playerId, name}]. */
  get players() {
    return [...client.session.players.values()].map((p) => ({ ...p }));
  },
  /** The scoreboard, best first (the game's score field): [{seat, name, score, me}]. */
  get scores() {
    return client.session.scoreboard();
  },
  /** The last Error message: {code, name, message} or null. */
  get lastError() {
    return client.session.lastError ? { ...client.session.lastError } : null;
  },
  /** How the last connection ended: {code, reason, wasClean, codeText, text} or null. */
  get close() {
    const c = client.closeInfo;
    return c ? { code: c.code, reason: c.reason, wasClean: c.wasClean, codeText: c.codeText, text: c.text } : null;
  },
  /** While reconnecting: {attempt, inMs}; else null. */
  get reconnect() {
    if (client.state !== ConnState.Reconnecting || !client.reconnect) return null;
    return { attempt: client.reconnect.attempt, inMs: Math.max(0, client.reconnect.at - performance.now()) };
  },
  /** True after a protocol version mismatch. */
  get versionMismatch() {
    return client.versionMismatch;
  },
  /** The last measured round-trip time in ms, or null. */
  get rttMs() {
    return client.session.rttMs;
  },
  /** The link conditioner settings ({lagMs, jitterMs}) or null. */
  get conditioner() {
    return conditioner ? { ...conditioner } : null;
  },
});
Object.defineProperty(window, '__ticksync', {
  value: debug,
  writable: false,
  configurable: false,
  enumerable: false,
});

client.connect(initialName);
