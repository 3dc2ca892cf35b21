// The live monitor: asks for the admin token, then polls /admin/api/overview every
// second and draws figures, charts and the lobby and player tables, with kick, close and
// notice actions.

import { ApiError, createApi } from './api.js';
import { Series } from './series.js';
import { drawChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const series = new Series(300); // five minutes of one-second points
let api = null;
let timer = null;

function fmtBytes(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
function fmtDuration(s) {
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}
function fmtUs(us) {
  if (us == null) return '–';
  if (!Number.isFinite(us)) return '> 250 ms';
  return us >= 1000 ? `≤ ${(us / 1000).toFixed(1)} ms` : `≤ ${us} µs`;
}
function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function button(label, onClick, cls = 'danger') {
  const td = document.createElement('td');
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.className = cls;
  b.addEventListener('click', onClick);
  td.append(b);
  return td;
}

function setStatus(text, cls) {
  const el = $('status');
  el.textContent = text;
  el.className = `status ${cls || ''}`;
}

async function act(what, fn) {
  try {
    await fn();
    setStatus(`${what}: done`, 'live');
    await refresh();
  } catch (e) {
    setStatus(`${what} failed: ${e.message}`, 'down');
  }
}

function render(overview, point) {
  $('f-players').textContent = overview.players;
  $('f-lobbies').textContent = overview.lobbies_open;
  if (point) {
    $('f-tick').textContent = fmtUs(point.tickP99);
    $('f-out').textContent = `${point.outKBs.toFixed(1)} kB/s`;
    $('f-in').textContent = `${point.inKBs.toFixed(1)} kB/s`;
    $('f-skipped').textContent = point.skippedPerS.toFixed(0);
  }
  drawChart($('c-players'), series.points, ['players']);
  drawChart($('c-tick'), series.points, ['tickP99']);
  drawChart($('c-bytes'), series.points, ['outKBs', 'inKBs']);

  const lobbyBody = $('lobbies').tBodies[0];
  lobbyBody.replaceChildren(...overview.lobbies.map((l) => {
    const tr = document.createElement('tr');
    tr.dataset.lobby = l.id;
    tr.append(
      cell(String(l.id), 'num'),
      cell(l.private ? `${l.name} (private)` : l.name),
      cell(`${l.players.length} / ${l.max_players}`, 'num'),
      cell(`${fmtUs(l.tick_p50_us)} / ${fmtUs(l.tick_p99_us)}`),
      cell(fmtUs(l.tick_lateness_p99_us), 'num'),
      cell(String(l.inputs_dropped), 'num'),
      button('Close', () => {
        const reason = window.prompt(`Close lobby "${l.name}"? Reason shown to its players:`, 'closed by an operator');
        if (reason !== null) act(`close lobby ${l.id}`, () => api.closeLobby(l.id, reason));
      }),
    );
    return tr;
  }));
  $('no-lobbies').hidden = overview.lobbies.length > 0;

  const players = overview.lobbies.flatMap((l) => l.players.map((p) => ({ ...p, lobby: l })));
  const playerBody = $('players').tBodies[0];
  playerBody.replaceChildren(...players.map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.player = p.player_id;
    tr.append(
      cell(String(p.player_id), 'num'),
      cell(p.connected ? p.name : `${p.name} (away, may resume)`, p.connected ? '' : 'away'),
      cell(`${p.lobby.name} #${p.lobby.id}`),
      cell(p.rtt_ms > 0 ? `${p.rtt_ms.toFixed(1)} ms` : '–', 'num'),
      cell(fmtDuration(p.connected_for_s), 'num'),
      cell(`${fmtBytes(p.bytes_in)} / ${fmtBytes(p.bytes_out)}`, 'num'),
      button('Kick', () => {
        const reason = window.prompt(`Kick ${p.name}? Reason shown to the player:`, 'removed by an operator');
        if (reason !== null) act(`kick ${p.name}`, () => api.kick(p.player_id, reason));
      }),
    );
    return tr;
  }));
  $('no-players').hidden = players.length > 0;

  renderCluster(overview.cluster);

  const scope = $('notice-scope');
  const chosen = scope.value;
  scope.replaceChildren(new Option('everyone', ''), ...overview.lobbies.map((l) => new Option(`lobby ${l.name} #${l.id}`, String(l.id))));
  scope.value = [...scope.options].some((o) => o.value === chosen) ? chosen : '';
}

// Cluster mode only (`overview.cluster` is absent on a single node): this node and every
// live node of the directory.
function renderCluster(cluster) {
  $('cluster').hidden = !cluster;
  if (!cluster) return;
  const redis = cluster.redis_up ? 'Redis up' : 'Redis unreachable: local play only';
  $('cluster-self').textContent = `this node: ${cluster.node} (slot ${cluster.slot})${cluster.draining ? ', draining' : ''} · ${redis}`;
  $('nodes').tBodies[0].replaceChildren(...cluster.nodes.map((n) => {
    const tr = document.createElement('tr');
    tr.dataset.node = n.node;
    tr.append(
      cell(n.node === cluster.node ? `${n.node} (this)` : n.node),
      cell(n.public_url),
      cell(String(n.slot), 'num'),
      cell(String(n.players), 'num'),
      cell(String(n.lobbies), 'num'),
      cell(n.draining ? 'draining' : 'live'),
    );
    return tr;
  }));
  $('drain').disabled = cluster.draining;
}

async function refresh() {
  const overview = await api.overview();
  const point = series.push(overview, performance.now());
  render(overview, point);
  setStatus(`live · up ${fmtDuration(overview.uptime_s)}${overview.draining ? ' · draining' : ''}`, 'live');
  window.__ticksyncMonitor = { overview, points: series.points.length };
}

async function poll() {
  try {
    await refresh();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404)) {
      stop(e.status === 404 ? 'The admin API is off: start the server with --admin-token.' : 'Wrong token.');
      return;
    }
    setStatus(`server unreachable (${e.message}); retrying`, 'down');
  }
  timer = setTimeout(poll, POLL_MS);
}

function stop(message) {
  clearTimeout(timer);
  sessionStorage.removeItem('ticksync-admin-token');
  $('dashboard').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  setStatus('not connected');
}

function start(token) {
  api = createApi(token);
  sessionStorage.setItem('ticksync-admin-token', token);
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('login-error').textContent = '';
  poll();
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  start($('token').value.trim());
});

$('notice').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('notice-text').value.trim();
  const lobby = Number($('notice-scope').value) || null;
  act('notice', async () => {
    const { reached } = await api.notice(text, lobby);
    $('notice-result').textContent = `reached ${reached} player${reached === 1 ? '' : 's'}`;
    $('notice-text').value = '';
  });
});

$('drain').addEventListener('click', () => {
  if (window.confirm('Drain this node? It takes no new players, leaves the listings, and exits once its lobbies are empty (or at --drain-timeout).')) {
    act('drain', () => api.drain());
  }
});

const saved = sessionStorage.getItem('ticksync-admin-token');
if (saved) start(saved);
