// What the netcode asks of a game, and the defaults for what a game module leaves out.
// The netcode (client.js) knows no game: it finds the module by the schema's name
// (games/index.js), and falls back to these defaults for a game it has no module for,
// which still plays: inputs built from the declaration, every entity interpolated, no
// prediction.
//
// A game module (games/arena.js is the smallest) may give:
//   name                      the schema's game name
//   title, blurb, hint        texts of the page
//   controlled                the entity kind the player controls and predicts (default:
//                             whichever entity the player controls)
//   predict(state, input, dt) the movement rule of the controlled entity, as the server's
//                             (states and inputs are values by field name); no prediction
//                             without it
//   position(values)          where an entity is ({x, y}; default its `pos` field)
//   extrapolate               {positionField: velocityField}: how entities move past the
//                             newest snapshot (default: they hold still)
//   radius                    {kind: world units} for drawing (default 12)
//   score                     the field of the controlled kind that is the player's score
//   controls                  {inputField: 'move' | 'aim' | 'primary' | 'secondary'}
//                             (default: by type, see defaultControls)
//   describeEvent(event, names)  a line for the event feed, or null (default: the
//                             event's name and fields, player fields by name)
//   actions                   [{message, label, key}]: buttons (and digit keys) that send
//                             a game message without fields (default: one per such
//                             message type, keys 1 to 9 in schema order)
//   style(entity)             {colour, ring, badge, label} drawing hints, optional
//                             (default colour: the controlling player's, else the
//                             `owner` field's, else the entity kind's)

import { clampDirection } from './prediction.js';

/** The default control of each input field: the first Vec2 moves, the first Angle aims,
 *  Buttons are the primary then the secondary button. */
export function defaultControls(inputRow) {
  const out = {};
  let move = false;
  let aim = false;
  const buttons = ['primary', 'secondary'];
  for (const f of inputRow.fields) {
    if (f.type === 'Vec2' && !move) {
      out[f.name] = 'move';
      move = true;
    } else if (f.type === 'Angle' && !aim) {
      out[f.name] = 'aim';
      aim = true;
    } else if (f.type === 'Button' && buttons.length) {
      out[f.name] = buttons.shift();
    }
  }
  return out;
}

/** The first Vec2 field of a row named `pos`, or the first Vec2 at all, or null. */
function positionField(row) {
  return row.fields.find((f) => f.type === 'Vec2' && f.name === 'pos') ?? row.fields.find((f) => f.type === 'Vec2') ?? null;
}

/**
 * The game as the netcode uses it: the module's hooks, completed with defaults, and what
 * the schema says (world bounds, the controlled kind, the score field).
 */
export function resolveGame(module, codec) {
  const m = module ?? {};
  const kinds = codec.kinds;
  // Kind names compare without case: a derived kind is named after its variant ("Ship").
  const lower = (n) => String(n).toLowerCase();
  const controlledKind = m.controlled !== undefined ? kinds.findIndex((k) => lower(k.name) === lower(m.controlled)) : -1;
  const radii = new Map(Object.entries(m.radius ?? {}).map(([k, r]) => [lower(k), r]));
  const mainRow = kinds[controlledKind] ?? kinds.find((k) => positionField(k)) ?? null;
  const pf = mainRow ? positionField(mainRow) : null;
  const posName = pf?.name ?? 'pos';
  const world = m.world ?? (pf ? { width: pf.ty.max_x, height: pf.ty.max_y, minX: pf.ty.min_x, minY: pf.ty.min_y } : { width: 1000, height: 1000 });
  const controls = m.controls ?? defaultControls(codec.input);
  const position = m.position ?? ((values) => values[posName] ?? values.pos ?? { x: 0, y: 0 });
  const withPosition = m.withPosition ?? ((values, p) => ({ ...values, [posName]: p }));
  const extrapolate = m.extrapolate ?? null;
  let extrapolateFn = null;
  if (extrapolate) {
    extrapolateFn = (e, secs) => {
      const v = { ...e.values };
      for (const [p, vel] of Object.entries(extrapolate)) {
        if (v[p] && v[vel]) {
          const x = Math.min(Math.max(v[p].x + v[vel].x * secs, world.minX ?? 0), world.width);
          const y = Math.min(Math.max(v[p].y + v[vel].y * secs, world.minY ?? 0), world.height);
          v[p] = { x, y };
        }
      }
      return v;
    };
  }
  let score = m.score ?? null;
  if (!score && mainRow?.index.has('score')) score = 'score';
  return {
    name: codec.schema.game,
    known: module !== null && module !== undefined,
    title: m.title ?? codec.schema.game,
    blurb: m.blurb ?? '',
    hint: m.hint ?? 'Move with WASD or the arrows',
    controlled: controlledKind,
    predict: m.predict ?? null,
    position,
    withPosition,
    extrapolate: extrapolateFn,
    radius: (kind) => radii.get(lower(kinds[kind]?.name ?? '')) ?? 12,
    score,
    controls,
    aims: Object.values(controls).includes('aim'),
    world,
    describeEvent: m.describeEvent ?? ((event, nameOf) => describeGeneric(codec, event, nameOf)),
    actions: m.actions ?? defaultActions(codec),
    style: m.style ?? (() => ({})),
  };
}

/** "Collected: by ann": the event's name, then each field (a player field by its name). */
export function describeGeneric(codec, event, nameOf = (seat) => `#${seat}`) {
  const row = codec.events?.find((t) => t.name === event.type);
  const typeOf = new Map((row?.fields ?? []).map((f) => [f.name, f.type]));
  const parts = Object.entries(event.values).map(([k, v]) => {
    if (typeOf.get(k) === 'Player') return `${k} ${nameOf(v)}`;
    if (v && typeof v === 'object') return `${k} ${JSON.stringify(v)}`;
    return `${k} ${v}`;
  });
  return `${event.type}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/** A button per message type without fields ("Drop"), with the keys 1 to 9 in order. */
export function defaultActions(codec) {
  return (codec.messages ?? [])
    .filter((t) => t.fields.length === 0)
    .slice(0, 9)
    .map((t, i) => ({ message: t.name, label: t.name.replace(/_/g, ' '), key: `Digit${i + 1}` }));
}

/**
 * The input values to send: each input field from its control. `controls` is the
 * Controls of input.js (or anything with sample(), direction(), button(name)), `held`
 * true for what is held right now (drawing) rather than the next tick's sample; `aim` is
 * the aim angle (radians) or null to keep `lastAim`.
 */
export function buildInput(inputRow, mapping, controls, { held = false, aim = null, lastAim = 0 } = {}) {
  const out = {};
  for (const f of inputRow.fields) {
    const control = mapping[f.name];
    if (control === 'move' && f.type === 'Vec2') {
      const d = held ? controls.direction() : controls.sample();
      out[f.name] = clampDirection(d.x, d.y);
    } else if (control === 'aim' && (f.type === 'Angle' || f.type === 'F32')) {
      out[f.name] = aim ?? lastAim;
    } else if ((control === 'primary' || control === 'secondary') && f.type === 'Button') {
      out[f.name] = controls.button(control);
    } else if (control === 'primary' || control === 'secondary') {
      out[f.name] = controls.button(control).held;
    }
  }
  return out;
}

/** `key=value` pairs, comma separated (a form field), as the protocol's [[key, value]]. */
export function parseOptions(raw) {
  return String(raw ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const at = p.indexOf('=');
      return at < 0 ? [p, ''] : [p.slice(0, at).trim(), p.slice(at + 1).trim()];
    });
}

/**
 * The HTTP URL of the server's `/api/game` (which game it runs), from its WebSocket URL.
 * A server on another origin than the page (`?server=` naming another node of the
 * cluster) is asked at the page's own origin instead: the page may fetch only from its
 * own origin (its CSP lets it open WebSockets to the cluster's nodes, nothing more), and
 * the nodes of one cluster run one game.
 */
export function gameInfoUrl(wsUrl, pageOrigin = null) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = '/api/game';
  u.search = '';
  u.hash = '';
  if (pageOrigin && u.origin !== pageOrigin) return new URL('/api/game', pageOrigin).toString();
  return u.toString();
}

/**
 * What the lobby screen calls the server's game before joining: the game module's title
 * when the client has one, else the server's (`/api/game`), else null.
 */
export function serverGameTitle(info, module) {
  if (!info || typeof info.game !== 'string') return null;
  return module?.title ?? (typeof info.title === 'string' && info.title ? info.title : info.game);
}
