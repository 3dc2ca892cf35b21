// The page's DOM: the lobby screen, the in-game bar and scoreboard, the connection card,
// the net stats overlay and the toasts. Reads the client's state and turns buttons into
// client calls; knows nothing of the netcode beyond that.

import { MAX_LOBBY_NAME_BYTES, MAX_PLAYER_NAME_BYTES, PROTOCOL_VERSION } from './codec.js';
import { ConnState } from './client.js';
import { gameInfoUrl, parseOptions, serverGameTitle } from './game.js';
import { gameModule } from './games/index.js';
import { colourOf } from './render.js';

const $ = (id) => document.getElementById(id);

/** Trimmed, control characters removed, cut to `maxBytes` of UTF-8 at a character boundary. */
export function cleanName(raw, maxBytes = MAX_PLAYER_NAME_BYTES) {
  let name = raw.trim().replace(/\p{Cc}/gu, '');
  const encoder = new TextEncoder();
  while (encoder.encode(name).length > maxBytes) name = [...name].slice(0, -1).join('');
  return name.trim();
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'style') Object.assign(e.style, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export class Ui {
  /**
   * client: the GameClient; controls: the Controls (released when leaving the game);
   * names: {get(), set(name)} (localStorage); defaultName.
   */
  constructor({ client, controls, names, defaultName, url }) {
    this.client = client;
    this.controls = controls;
    this.names = names;
    this.defaultName = defaultName;
    this.url = url;
    this.statsVisible = false;
    this.els = {
      name: $('name'),
      nameForm: $('name-form'),
      lobbyHeading: $('lobby-heading'),
      serverGame: $('server-game'),
      joinOptions: $('join-options'),
      actions: $('actions'),
      quickPlay: $('quick-play'),
      lobbyList: $('lobby-list'),
      lobbyEmpty: $('lobby-empty'),
      lobbyCount: $('lobby-count'),
      createForm: $('create-form'),
      createName: $('create-name'),
      createMax: $('create-max'),
      createPrivate: $('create-private'),
      createOptions: $('create-options'),
      create: $('create'),
      codeForm: $('code-form'),
      code: $('code'),
      codeJoin: $('code-join'),
      hud: $('hud'),
      hudLobby: $('hud-lobby'),
      hudCodeWrap: $('hud-code-wrap'),
      hudCode: $('hud-code'),
      hudCopy: $('hud-copy'),
      hudPlayers: $('hud-players'),
      status: $('status'),
      statsToggle: $('stats-toggle'),
      leave: $('leave'),
      scoreboard: $('scoreboard'),
      scores: $('scores'),
      gameTitle: $('game-title'),
      gameState: $('game-state'),
      feed: $('feed'),
      results: $('results'),
      resultsSummary: $('results-summary'),
      resultsList: $('results-list'),
      resultsClose: $('results-close'),
      hint: $('hint-text'),
      netstats: $('netstats'),
      netstatsList: $('netstats-list'),
      conn: $('conn'),
      connTitle: $('conn-title'),
      connDetail: $('conn-detail'),
      connRetry: $('conn-retry'),
      connReload: $('conn-reload'),
      toasts: $('toasts'),
    };
    this.lastLobbies = '';
    this.lastScores = '';
    this.lastFeed = '';
    this.lastResults = null;
    this.resultsDismissed = null;
    this.statRows = new Map();
    /** What `/api/game` said about the server's game ({game, title, ...}), or null. */
    this.serverGame = null;
    this.lastActions = '';
    this.wire();
    this.fetchServerGame();
  }

  /** Asks the server which game it runs, to name it on the lobby screen before joining. */
  async fetchServerGame() {
    try {
      const response = await fetch(gameInfoUrl(this.url, location.origin), { cache: 'no-store' });
      if (!response.ok) return;
      this.serverGame = await response.json();
      this.renderGame();
    } catch {
      // An older server without /api/game: the lobby screen stays generic.
    }
  }

  /** The join options of the lobby screen, sent with every join. */
  joinOptions() {
    return parseOptions(this.els.joinOptions?.value);
  }

  wire() {
    const { els, client } = this;
    els.name.value = cleanName(this.names.get() ?? '') || this.defaultName;
    els.createName.placeholder = `${els.name.value}'s lobby`.slice(0, MAX_LOBBY_NAME_BYTES);

    const commitName = () => {
      const name = cleanName(els.name.value) || this.defaultName;
      els.name.value = name;
      this.names.set(name);
      client.setName(name);
      els.createName.placeholder = cleanName(`${name}'s lobby`, MAX_LOBBY_NAME_BYTES);
    };
    els.name.addEventListener('change', commitName);
    els.nameForm.addEventListener('submit', (e) => {
      e.preventDefault();
      commitName();
      client.quickJoin(this.joinOptions());
    });
    els.createForm.addEventListener('submit', (e) => {
      e.preventDefault();
      commitName();
      const name = cleanName(els.createName.value, MAX_LOBBY_NAME_BYTES) || els.createName.placeholder;
      const max = Math.min(64, Math.max(1, Math.round(Number(els.createMax.value) || 8)));
      els.createMax.value = String(max);
      client.createLobby({ name, maxPlayers: max, private: els.createPrivate.checked, options: this.gameOptions() });
    });
    els.codeForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const code = els.code.value.trim().toUpperCase();
      if (!code) {
        els.code.focus();
        return;
      }
      commitName();
      client.joinCode(code, this.joinOptions());
    });
    els.lobbyList.addEventListener('click', (e) => {
      const row = e.target.closest('li[data-lobby-id]');
      if (!row || row.dataset.full === 'true') return;
      commitName();
      client.joinLobby(Number(row.dataset.lobbyId), this.joinOptions());
    });
    els.leave.addEventListener('click', () => {
      client.leaveLobby();
      els.leave.blur();
    });
    els.statsToggle.addEventListener('click', () => {
      this.toggleStats();
      els.statsToggle.blur();
    });
    els.hudCopy.addEventListener('click', () => this.copyInvite());
    els.resultsClose.addEventListener('click', () => {
      this.resultsDismissed = this.client.session.matchEnded;
      els.results.hidden = true;
    });
    els.actions.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-message]');
      if (!button) return;
      client.sendGameMessage(button.dataset.message);
      button.blur();
    });
    els.connRetry.addEventListener('click', () => client.reconnectNow());
    els.connReload.addEventListener('click', () => location.reload());
    window.addEventListener('keydown', (e) => {
      if (e.target instanceof Element && e.target.closest('input, textarea')) return;
      if ((e.code === 'KeyN' || e.code === 'Backquote') && !e.ctrlKey && !e.metaKey && !e.altKey) {
        this.toggleStats();
        e.preventDefault();
        return;
      }
      // The game's actions: a digit key sends its message.
      const action = client.inLobby && !e.repeat ? client.session.game?.actions.find((a) => a.key === e.code) : null;
      if (action && !e.ctrlKey && !e.metaKey && !e.altKey) {
        client.sendGameMessage(action.message);
        e.preventDefault();
      }
    });
  }

  /** The game options of the create form (`key=value` pairs, comma separated) as [[key, value]]. */
  gameOptions() {
    return parseOptions(this.els.createOptions?.value);
  }

  toggleStats(on = !this.statsVisible) {
    this.statsVisible = on;
    this.els.netstats.hidden = !on || !this.client.inLobby;
    this.els.statsToggle.setAttribute('aria-pressed', String(on));
  }

  inviteLink(code) {
    const u = new URL(location.href);
    for (const key of ['join', 'lag', 'jitter']) u.searchParams.delete(key);
    u.searchParams.set('join', code);
    return u.toString();
  }

  async copyInvite() {
    const code = this.client.session.lobby?.code;
    if (!code) return;
    const link = this.inviteLink(code);
    try {
      await navigator.clipboard.writeText(link);
      this.toast('info', 'Invite link copied.');
    } catch {
      this.toast('info', `Invite link: ${link}`);
    }
  }

  toast(kind, text) {
    const div = el('div', { class: `toast ${kind}`, textContent: text });
    this.els.toasts.append(div);
    while (this.els.toasts.children.length > 4) this.els.toasts.firstElementChild.remove();
    setTimeout(() => div.remove(), kind === 'notice' ? 12000 : 7000);
  }

  /** Updates everything that depends on the client state (call when it changed). */
  render(now) {
    const { els, client } = this;
    const session = client.session;
    const inGame = client.inLobby;
    document.body.dataset.screen = inGame ? 'game' : 'lobby';
    document.body.dataset.conn = client.state;
    if (!inGame) this.controls.release();

    // Bar.
    els.hud.hidden = !inGame;
    els.leave.hidden = !inGame;
    els.statsToggle.hidden = !inGame;
    els.netstats.hidden = !this.statsVisible || !inGame;
    if (inGame) {
      const l = session.lobby;
      setText(els.hudLobby, l.name);
      els.hudCodeWrap.hidden = !l.code;
      setText(els.hudCode, l.code ?? '');
      setText(els.hudPlayers, `${session.players.size}/${l.maxPlayers} players`);
    }
    this.renderStatus(now);

    // Lobby screen.
    const busy = client.busy;
    const usable = !busy && client.state !== ConnState.Disconnected;
    for (const b of [els.quickPlay, els.create, els.codeJoin]) b.disabled = !usable;
    els.quickPlay.textContent = busy && client.pendingOp.kind === 'quick' ? 'Joining…' : 'Quick play';
    this.renderLobbies(!usable);
    this.renderScores();
    this.renderGame();
  }

  // The game's title and hint, its lobby and private state, the event feed, the results.
  renderGame() {
    const { els, client } = this;
    const session = client.session;
    const game = session.game;
    // Before joining, the server's game (GET /api/game) names the page.
    const before = serverGameTitle(this.serverGame, gameModule(this.serverGame?.game));
    // A game without a module is titled as the server titles it.
    const inGameTitle = game && !game.known && before && this.serverGame.game === game.name ? before : game?.title;
    const named = inGameTitle ?? before;
    const title = named ? `ticksync ${named}` : 'ticksync';
    if (document.title !== title) document.title = title;
    setText(els.gameTitle, inGameTitle ?? '');
    if (before) {
      const heading = `${before} `;
      if (els.lobbyHeading.firstChild?.textContent !== heading) {
        els.lobbyHeading.replaceChildren(heading, el('span', { class: 'muted', textContent: '— on ticksync' }));
      }
      const blurb = gameModule(this.serverGame.game)?.blurb;
      setText(els.serverGame, blurb ? `This server plays ${before}: ${blurb}` : `This server plays ${before}.`);
      els.serverGame.hidden = false;
      document.body.dataset.serverGame = this.serverGame.game;
    }
    const actions = game?.actions ?? [];
    const actionKey = client.inLobby ? actions.map((a) => `${a.message}:${a.key}`).join('|') : '';
    if (actionKey !== this.lastActions) {
      this.lastActions = actionKey;
      els.actions.replaceChildren(
        ...(client.inLobby ? actions : []).map((a) =>
          el('button', { type: 'button', class: 'small', textContent: `${a.key.replace('Digit', '')} ${a.label}`, dataset: { message: a.message } }),
        ),
      );
    }
    els.actions.hidden = !client.inLobby || actions.length === 0;
    setText(els.hint, game ? game.hint : 'Move with WASD or the arrows');
    document.body.dataset.game = game?.name ?? '';
    const parts = [];
    if (session.codec) {
      const describe = (row, values) => {
        for (const f of row.fields) {
          const label = f.name.replace(/_/g, ' ');
          let v = values[f.name];
          if (f.type === 'Bool') {
            if (v) parts.push(label);
            continue;
          }
          if (f.type === 'Enum') v = f.ty.variants[v] ?? v;
          else if (typeof v === 'object') continue;
          parts.push(`${label} ${v}`);
        }
      };
      describe(session.codec.lobby, session.lobbyValues());
      describe(session.codec.private, session.privateValues());
    }
    setText(els.gameState, parts.join(' · '));
    els.gameState.hidden = parts.length === 0;

    const lines = session.events.filter((e) => e.text).slice(-5);
    const key = lines.map((e) => `${e.tick}:${e.text}`).join('|');
    if (key !== this.lastFeed) {
      this.lastFeed = key;
      els.feed.replaceChildren(...lines.map((e) => el('li', { textContent: e.text })));
      els.feed.hidden = lines.length === 0;
    }

    const ended = session.matchEnded;
    if (ended !== this.lastResults) {
      this.lastResults = ended;
      if (ended) {
        setText(els.resultsSummary, ended.summary);
        els.resultsList.replaceChildren(
          ...[...ended.results]
            .sort((a, b) => a.place - b.place)
            .map((r) =>
              el('li', { class: r.seat === session.seat ? 'me' : '' },
                el('span', { class: 'place', textContent: `${r.place}.` }),
                el('span', { class: 'who', textContent: r.name }),
                el('span', { class: 'score', textContent: String(r.score) })),
            ),
        );
      }
    }
    els.results.hidden = !ended || ended === this.resultsDismissed;
  }

  renderStatus(now) {
    const { els, client } = this;
    const state = client.state;
    let text;
    switch (state) {
      case ConnState.Idle:
        text = 'Not connected';
        break;
      case ConnState.Connecting:
        text = 'Connecting…';
        break;
      case ConnState.Online:
        text = client.inLobby ? `Playing as ${client.welcomedName}` : `Online as ${client.welcomedName}`;
        break;
      case ConnState.Reconnecting:
        text = `Reconnecting in ${Math.ceil(client.reconnectIn(now) ?? 0)} s`;
        break;
      default:
        text = client.versionMismatch ? 'Version mismatch' : `Disconnected (${client.closeInfo?.code ?? '?'})`;
    }
    els.status.dataset.state = state;
    setText(els.status, text);
    this.renderConnCard(now);
  }

  // The connection card: what is going on with the connection, in plain words.
  renderConnCard(now) {
    const { els, client } = this;
    const state = client.state;
    const close = client.closeInfo;
    let title = '';
    let detail = '';
    let retry = false;
    let reload = false;
    if (state === ConnState.Connecting) {
      const again = client.resuming || close;
      title = again ? 'Reconnecting…' : 'Connecting to the server…';
      detail = again && close ? `Last connection: ${close.code} ${close.codeText}${close.reason ? ` (${close.reason})` : ''}` : this.url;
    } else if (state === ConnState.Reconnecting) {
      const secs = Math.ceil(client.reconnectIn(now) ?? 0);
      title =
        client.session.playerId === null
          ? `Cannot reach the server — retrying in ${secs} s`
          : `Connection lost — reconnecting in ${secs} s`;
      detail = `${close.code} ${close.codeText}${close.reason ? `: ${close.reason}` : ''}`;
      if (close.error) detail += ` — ${close.error.message}`;
      detail += ` (attempt ${client.reconnect?.attempt ?? 1})`;
      // A restarting server keeps no places; a dropped link does, for the resume grace.
      if (client.inLobby && close.code !== 1001) detail += '. Your place in the lobby is kept for 15 s.';
      retry = true;
    } else if (state === ConnState.Disconnected) {
      if (client.versionMismatch) {
        title = 'Protocol version mismatch';
        detail =
          `This page speaks ticksync protocol version ${PROTOCOL_VERSION} and the server does not` +
          `${close?.error ? ` (“${close.error.message}”)` : ''}. Reload the page to get the client that ` +
          'matches the server.';
        reload = true;
      } else {
        title = 'Disconnected';
        detail = `${close?.code ?? ''} ${close?.codeText ?? ''}${close?.reason ? `: ${close.reason}` : ''}`;
        if (close?.error) detail += ` — ${close.error.message}`;
        retry = true;
      }
    }
    els.conn.hidden = title === '';
    setText(els.connTitle, title);
    setText(els.connDetail, detail);
    els.connRetry.hidden = !retry;
    setText(els.connRetry, state === ConnState.Reconnecting ? 'Reconnect now' : 'Reconnect');
    els.connReload.hidden = !reload;
  }

  renderLobbies(disabled) {
    const { els, client } = this;
    const lobbies = client.session.lobbies;
    const key = JSON.stringify(lobbies) + disabled;
    if (key === this.lastLobbies) return;
    this.lastLobbies = key;
    els.lobbyEmpty.hidden = lobbies.length > 0;
    setText(els.lobbyCount, lobbies.length ? `${lobbies.length} open` : '');
    els.lobbyList.replaceChildren(
      ...lobbies.map((l) => {
        const full = l.players >= l.max_players;
        const fill = el('span', { style: { width: `${Math.round((100 * l.players) / Math.max(1, l.max_players))}%` } });
        return el(
          'li',
          { dataset: { lobbyId: String(l.id), full: String(full) } },
          el('span', { class: 'lname', textContent: l.name }),
          el('span', { class: 'fill' }, fill),
          el('span', { class: 'count', textContent: `${l.players}/${l.max_players}` }),
          el('button', { type: 'button', class: 'small', textContent: full ? 'Full' : 'Join', disabled: full || disabled }),
        );
      }),
    );
  }

  renderScores() {
    const { els, client } = this;
    const session = client.session;
    const rows = session.lobby ? session.scoreboard() : [];
    const it = new Set(client.view.entities.filter((e) => e.it).map((e) => e.controlledBy));
    const key = JSON.stringify(rows) + [...it].join();
    if (key === this.lastScores) return;
    this.lastScores = key;
    els.scoreboard.hidden = rows.length === 0;
    els.scores.replaceChildren(
      ...rows.map((r) => {
        const name = el('span', { class: 'who', textContent: r.name });
        if (it.has(r.seat)) name.append(' ', el('span', { class: 'it', textContent: 'IT' }));
        return el(
          'li',
          { class: r.me ? 'me' : '' },
          el('span', { class: 'dot', style: { background: colourOf(r.seat) } }),
          name,
          el('span', { class: 'score', textContent: String(r.score) }),
        );
      }),
    );
  }

  /** The net stats overlay (call a few times a second while it is shown). */
  renderStats(now) {
    if (!this.statsVisible || !this.client.inLobby) return;
    const s = this.client.stats(now);
    const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);
    const num = (v, digits = 1) => (v === null || v === undefined ? '–' : v.toFixed(digits));
    const rows = [
      ['RTT', s.rttMs === null ? '–' : `${s.rttMs} ms (min ${ms(s.minRttMs)})`],
      ['snapshots', `${num(s.snapshotsPerSec, 0)}/s of ${s.tickRate}${s.snapshotGaps ? ` · ${s.snapshotGaps} missed` : ''}`],
      ['deltas', s.deltaShare === null ? '–' : `${Math.round(100 * s.deltaShare)}% of snapshots`],
      ['in', `${num(s.kbInPerSec, 2)} kB/s`],
      ['out', `${num(s.kbOutPerSec, 2)} kB/s`],
      [
        'corrections',
        `${num(s.correctionsPerSec)}/s${s.correctionAvg !== null ? ` · avg ${num(s.correctionAvg, 2)} max ${num(s.correctionMax, 2)}` : ''}`,
        s.correctionsPerSec > 5,
      ],
      ['interp delay', `${ms(s.interpDelayMs)} (target ${ms(s.interpTargetMs)})`],
      ['jitter', ms(s.jitterMs)],
      ['render', `${s.renderMode}${s.underruns ? ` · ${s.underruns} underruns` : ''}`, s.renderMode !== 'interpolate'],
      ['server tick', s.serverTick === null ? '–' : String(s.serverTick)],
      ['snapshot tick', s.snapshotTick === null ? '–' : String(s.snapshotTick)],
      ['inputs', `seq ${s.inputSeq} · ack ${s.ackSeq} · ${s.pendingInputs} pending`],
      ['link', s.conditioner ? `+${s.conditioner.lagMs} ±${s.conditioner.jitterMs} ms each way` : 'as is'],
    ];
    const list = this.els.netstatsList;
    for (const [label, value, warn] of rows) {
      let row = this.statRows.get(label);
      if (!row) {
        row = { dt: el('dt', { textContent: label }), dd: el('dd') };
        list.append(row.dt, row.dd);
        this.statRows.set(label, row);
      }
      setText(row.dd, value);
      row.dd.classList.toggle('warn', Boolean(warn));
    }
  }
}
