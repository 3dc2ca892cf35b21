// Client-side prediction and reconciliation (Gambetta, "Fast-paced multiplayer", part 2),
// and the visual smoothing of corrections. No DOM, no clock, no socket: the caller says
// when an input is sent and when a snapshot arrives, so this runs in Node as-is.
//
// The model: every input the client sends is applied to the predicted state at once with
// the same rule the server uses, and kept until the server acknowledges it (a snapshot's
// `ack_seq`). On each snapshot the predicted state is rewound to the server's state (which
// already includes every input up to `ack_seq`) and the inputs after it are replayed. When
// client and server agree, nothing moves; when they do not (another player pushed us, an
// input arrived late and the server applied the previous one twice), the difference is a
// correction, which `Smoother` spreads over a few frames if small and shows at once if large.

const f32 = Math.fround;

/**
 * glam's `Vec2::clamp_length_max(1.0)` in f32: a direction longer than 1 scaled to 1.
 * A non-finite direction is zero. For the games' prediction steps (games/*.js).
 */
export function clampDirection(x, y) {
  x = f32(x);
  y = f32(y);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return { x: 0, y: 0 };
  const lengthSq = f32(f32(x * x) + f32(y * y));
  if (lengthSq > 1) {
    const length = f32(Math.sqrt(lengthSq));
    return { x: f32(x / length), y: f32(y / length) };
  }
  return { x, y };
}

/** The tick length the server uses for `tickRate` (Duration::as_secs_f32 of 1/rate). */
export function tickSeconds(tickRate) {
  return f32(1 / tickRate);
}

/** The default position of a predicted state: its `pos` field ({x, y}). */
export const defaultPosition = (state) => state.pos;
/** The default way to move a predicted state: a copy with another `pos`. */
export const defaultWithPosition = (state, pos) => ({ ...state, pos });

const DEFAULT_MAX_PENDING = 256;
const MAPPING_WINDOW = 31;

/**
 * The predicted state of the local player.
 *
 * The server (lobby.rs) does not apply every input once: at each tick it applies the
 * newest input that has arrived, and if none has, the previous one again. An input that
 * arrives a little late is therefore seen as a repeat of the previous input at one tick
 * and a skip (the late input superseded by the next) at the following one. Replaying
 * every unacknowledged input once, the textbook rule, would predict one step too far
 * after every repeat and correct it back a tick later. This predictor instead learns
 * which tick each input lands on: every snapshot whose `ack_seq` moved says "input
 * `ack_seq` was applied at `tick`", and the median of `tick - seq` over the last
 * observations is the usual mapping (`lag`). Replaying then walks the ticks after the
 * snapshot and, at each, applies what the server will: the newest pending input due by
 * then, or the last applied one again. On a steady link this is exactly the textbook
 * replay; on a jittery one it absorbs late inputs without correcting back and forth.
 * Until the first acknowledgement it replays every pending input once.
 *
 * States and inputs are the game's values ({field: value}, as the schema decodes them):
 * the game module's `predict` step moves one, and `position(state)` ({x, y}) measures
 * how far a reconciliation moved the prediction.
 *
 * options: {
 *   step(state, input, dt) -> state,   the game's rule (games/*.js `predict`)
 *   position(state) -> {x, y},         where a state is (default: its `pos` field)
 *   zeroInput,                         the idle input (the server's default before the first)
 *   dt,                                seconds per tick
 *   maxPending = 256,                  unacknowledged inputs kept at most (oldest dropped)
 *   correctionEpsilon = 0.05,          a reconciliation moving the prediction less than this
 *                                      (world units) is not a correction (quantization is 0.015)
 *   replay = 'ticks',                  'inputs': the textbook replay, every pending input once
 *                                      (right for a server that queues inputs and applies
 *                                      each exactly once; ticksync applies the newest)
 * }
 */
export class Predictor {
  constructor(options = {}) {
    this.step = options.step;
    this.position = options.position ?? defaultPosition;
    this.zeroInput = options.zeroInput ?? {};
    this.dt = options.dt ?? tickSeconds(30);
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.correctionEpsilon = options.correctionEpsilon ?? 0.05;
    this.replayMode = options.replay ?? 'ticks';
    this.reset();
  }

  /** Forgets everything (a new lobby, or a resumed connection restarting its seq at 1). */
  reset() {
    /** Inputs sent and not yet acknowledged: [{seq, input}], ascending seq. */
    this.pending = [];
    /** The last authoritative state, its tick and the input seq it includes. */
    this.server = null;
    this.serverTick = null;
    this.ackSeq = 0;
    /** The input the server applied last (it repeats it until a newer one arrives). */
    this.lastApplied = this.zeroInput;
    /** Recent `tick - seq` observations, and their median (null until the first). */
    this.lags = [];
    this.lag = null;
    /** The predicted state after every input sent, or null before the first snapshot. */
    this.state = null;
    /** The seq of the last input applied. */
    this.lastSeq = 0;
  }

  /**
   * Applies an input as it is sent. Returns the new predicted state (null while no
   * snapshot has shown where the player is).
   */
  applyInput(seq, input) {
    if (seq <= this.lastSeq) return this.state; // a replay of something already applied
    this.lastSeq = seq;
    this.pending.push({ seq, input });
    if (this.pending.length > this.maxPending) this.pending.shift();
    if (this.state) this.state = this.step(this.state, input, this.dt);
    return this.state;
  }

  /**
   * A snapshot: the server's state at `tick`, which includes the inputs up to `ackSeq`.
   * Rewinds to it and replays what the server will apply after it. Returns
   * {state, delta, correction}: `delta` {dx, dy, size} is how far the prediction for the
   * newest input moved (null for the first snapshot), `correction` the same when it is at
   * least `correctionEpsilon`, else null.
   */
  reconcile(tick, ackSeq, serverState) {
    if (ackSeq < this.ackSeq || (this.serverTick !== null && tick < this.serverTick)) {
      // Older than what was already used: cannot happen on one ordered connection.
      return { state: this.state, delta: null, correction: null };
    }
    if (ackSeq > this.ackSeq) {
      const applied = this.pending.find((p) => p.seq === ackSeq);
      if (applied) this.lastApplied = applied.input;
      this.lags.push(tick - ackSeq);
      if (this.lags.length > MAPPING_WINDOW) this.lags.shift();
      this.lag = median(this.lags);
      this.ackSeq = ackSeq;
    }
    this.server = serverState;
    this.serverTick = tick;
    let drop = 0;
    while (drop < this.pending.length && this.pending[drop].seq <= ackSeq) drop++;
    if (drop > 0) this.pending.splice(0, drop);

    const before = this.state;
    this.state = this.replay();
    if (!before) return { state: this.state, delta: null, correction: null };
    const a = this.position(this.state);
    const b = this.position(before);
    const dx = a.x - b.x;
    const dy = a.y - b.y;
    const size = Math.hypot(dx, dy);
    const delta = { dx, dy, size };
    return { state: this.state, delta, correction: size >= this.correctionEpsilon ? delta : null };
  }

  // The server state plus what the server will do with the pending inputs.
  replay() {
    let state = this.server;
    const pending = this.pending;
    if (pending.length === 0) return state;
    if (this.lag === null || this.replayMode === 'inputs') {
      for (const p of pending) state = this.step(state, p.input, this.dt);
      return state;
    }
    // Tick by tick up to the tick the newest input is due at: at each, the newest input
    // due by then, else the last one again. An input whose tick has already passed
    // unapplied (it arrived late) is superseded by the next one, as on the server; at
    // most one more tick than there are inputs is predicted (a mapping that is off after
    // a change of latency must not run far ahead).
    const last = pending[pending.length - 1].seq + this.lag;
    const end = Math.min(last, this.serverTick + pending.length + 1);
    let current = this.lastApplied;
    let i = 0;
    for (let t = this.serverTick + 1; t <= end; t++) {
      while (i < pending.length && pending[i].seq + this.lag <= t) current = pending[i++].input;
      state = this.step(state, current, this.dt);
    }
    return state;
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1];
}

/**
 * What the player sees of its own entity, drawn at the display rate although inputs go
 * out at the tick rate.
 *
 * An input sent at time t_k is applied by the server over the tick after it, so the
 * drawn position starts from the prediction *before* the newest input and advances,
 * frame by frame, with the direction held right now: one tick later, when the next input
 * goes out, it has reached the prediction after the newest one. Because it uses the held
 * direction and not the last input sent, a key press shows on the very next frame. The
 * small mismatches this leaves (a key pressed between two inputs) and the corrections
 * from reconciliation go into an offset that decays over `smoothingMs`, so the entity
 * glides instead of jumping; a jump larger than `snapDistance` (a teleport, a resumed
 * session) is shown at once.
 *
 * options: {
 *   step(state, input, dt),   the game's rule, used to advance within a tick
 *   position(state),          where a state is (default: its `pos`)
 *   withPosition(state, p),   the state moved to p (default: `pos` replaced)
 *   tickSeconds,              the tick length
 *   maxAheadTicks = 2,        the longest it advances past the newest input, in ticks: one
 *                             tick, plus one for an input timer that fires late (a frame
 *                             must never find the player stuck waiting for it)
 *   smoothingMs = 100,        the offset's time constant (63% gone after this long)
 *   snapDistance = 60,        world units
 * }
 */
export class Smoother {
  constructor(options = {}) {
    this.step = options.step;
    this.positionOf = options.position ?? defaultPosition;
    this.withPosition = options.withPosition ?? defaultWithPosition;
    this.tickSeconds = options.tickSeconds ?? tickSeconds(30);
    this.maxAheadTicks = options.maxAheadTicks ?? 2;
    this.smoothingMs = options.smoothingMs ?? 100;
    this.snapDistance = options.snapDistance ?? 60;
    this.reset();
  }

  reset() {
    /** The prediction before the newest input, advanced by the held input. */
    this.ghost = null;
    /** Seconds the ghost has advanced since the newest input. */
    this.advanced = 0;
    /** Visual offset added to the ghost. */
    this.offset = { x: 0, y: 0 };
    /** Jumps shown at once (over `snapDistance`). */
    this.snaps = 0;
  }

  /** The position drawn (ghost + offset), or null before the first prediction. */
  get position() {
    if (!this.ghost) return null;
    const p = this.positionOf(this.ghost);
    return { x: p.x + this.offset.x, y: p.y + this.offset.y };
  }

  /** The state drawn: the ghost at the drawn position (null before the first prediction). */
  get state() {
    if (!this.ghost) return null;
    return this.withPosition(this.ghost, this.position);
  }

  /**
   * An input was sent: `before` is the prediction before it was applied (null before the
   * first snapshot). The ghost restarts from there.
   */
  input(before) {
    if (!before) return;
    this.moveGhost(before);
    this.advanced = 0;
  }

  /**
   * Reconciliation moved the prediction by (dx, dy), or placed it for the first time at
   * `state` (when there is no ghost yet).
   */
  correct(dx, dy, state) {
    if (!this.ghost) {
      if (state) {
        this.ghost = state;
        // The state already includes the newest input: nothing to advance until the next.
        this.advanced = this.tickSeconds;
      }
      return;
    }
    const p = this.positionOf(this.ghost);
    this.moveGhost(this.withPosition(this.ghost, { x: p.x + dx, y: p.y + dy }));
  }

  // Moves the ghost while the drawn position stays put (the offset takes the difference),
  // unless the difference is too large to hide.
  moveGhost(next) {
    const shown = this.position;
    this.ghost = next;
    if (!shown) return;
    const p = this.positionOf(next);
    const ox = shown.x - p.x;
    const oy = shown.y - p.y;
    if (Math.hypot(ox, oy) > this.snapDistance) {
      this.offset = { x: 0, y: 0 };
      this.snaps++;
    } else {
      this.offset = { x: ox, y: oy };
    }
  }

  /**
   * Advances one frame of `frameMs` with the input held now (the game's input values,
   * or null: not playing); returns the position to draw (null before the first prediction).
   */
  frame(frameMs, held) {
    if (!this.ghost) return null;
    const ms = Math.max(0, frameMs);
    const seconds = Math.min(ms / 1000, Math.max(0, this.maxAheadTicks * this.tickSeconds - this.advanced));
    if (seconds > 0 && held) this.ghost = this.step(this.ghost, held, seconds);
    this.advanced += seconds;
    const decay = Math.exp(-ms / this.smoothingMs);
    const ox = this.offset.x * decay;
    const oy = this.offset.y * decay;
    this.offset = Math.abs(ox) < 1e-3 && Math.abs(oy) < 1e-3 ? { x: 0, y: 0 } : { x: ox, y: oy };
    return this.position;
  }
}
