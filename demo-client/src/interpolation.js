// Entity interpolation (Gambetta, part 3; Source's `cl_interp`): other players are drawn
// a little in the past, between the two received snapshots around a render tick that
// `TickClock` keeps behind the newest one. No DOM, no clock of its own: runs in Node.
//
// What interpolates follows the schema's declared field types (`fieldMixer`): Vec2 and
// F32 fields are interpolated linearly, Angle fields along the shorter arc, and Int,
// Enum, Bool, Str and Player fields snap (the earlier snapshot's value until the render
// tick reaches the later one).
//
// Snapshots are kept by tick, so a dropped or late snapshot only widens the gap the
// render tick crosses (the positions on either side are still exact). Past the newest
// snapshot the entities are extrapolated along their last velocity for at most
// `maxExtrapolationTicks`, then held: a stalled stream never sends anyone flying off.

/**
 * A buffer of snapshots in world units.
 *
 * Entities are {id, kind, controlledBy, values} (values: the decoded fields by name).
 *
 * options: {
 *   capacity = 64,               snapshots kept at most (2 s at 30 Hz)
 *   maxExtrapolationTicks = 3,   how far past the newest snapshot entities keep moving
 *   mix(kind, a, b, alpha),      the values between two snapshots' (default: a's)
 *   extrapolate(entity, secs),   the values `secs` past the newest snapshot (default: none,
 *                                the entity holds still)
 * }
 */
export class SnapshotBuffer {
  constructor(options = {}) {
    this.capacity = options.capacity ?? 64;
    this.maxExtrapolationTicks = options.maxExtrapolationTicks ?? 3;
    this.mix = options.mix ?? ((kind, a) => a);
    this.extrapolateFn = options.extrapolate ?? null;
    this.clear();
  }

  clear() {
    /** [{tick, entities: Map id -> {id, kind, controlledBy, values}}], ascending tick. */
    this.snapshots = [];
  }

  get size() {
    return this.snapshots.length;
  }

  /** The tick of the newest snapshot, or null. */
  get newestTick() {
    return this.snapshots.length ? this.snapshots[this.snapshots.length - 1].tick : null;
  }

  /** The tick of the oldest snapshot kept, or null. */
  get oldestTick() {
    return this.snapshots.length ? this.snapshots[0].tick : null;
  }

  /** The newest snapshot ({tick, entities}), or null. */
  get newest() {
    return this.snapshots.length ? this.snapshots[this.snapshots.length - 1] : null;
  }

  /**
   * Adds a snapshot: `entities` [{id, kind, controlledBy, values}]. A tick already held
   * is ignored; an older one is put in its place. Returns false when ignored.
   */
  push(tick, entities) {
    const snap = { tick, entities: new Map(entities.map((e) => [e.id, e])) };
    const list = this.snapshots;
    let i = list.length;
    while (i > 0 && list[i - 1].tick > tick) i--;
    if (i > 0 && list[i - 1].tick === tick) return false;
    list.splice(i, 0, snap);
    if (list.length > this.capacity) list.splice(0, list.length - this.capacity);
    return true;
  }

  /**
   * Drops the snapshots no longer needed to draw `renderTick`: all but the newest one at
   * or before it.
   */
  discardBefore(renderTick) {
    const list = this.snapshots;
    let keep = 0;
    while (keep + 1 < list.length && list[keep + 1].tick <= renderTick) keep++;
    if (keep > 0) list.splice(0, keep);
  }

  /**
   * The entities at `renderTick` (fractional), with `tickSeconds` the tick length (for
   * extrapolation). Returns {
   *   mode: 'empty' | 'interpolate' | 'extrapolate' | 'hold' | 'early',
   *   from, to,        the ticks used (to === from when not interpolating)
   *   alpha,           0..1 between them
   *   entities: [{id, kind, controlledBy, values}],
   * }
   * An entity is drawn from the earlier snapshot's view of it: one that appears only in
   * the later snapshot shows up when the render tick reaches it; one missing from the
   * later snapshot (it left) is drawn where it was until then.
   */
  sample(renderTick, tickSeconds) {
    const list = this.snapshots;
    if (list.length === 0) return { mode: 'empty', from: null, to: null, alpha: 0, entities: [] };
    const first = list[0];
    if (renderTick <= first.tick) {
      return { mode: list.length > 1 || renderTick < first.tick ? 'early' : 'hold', ...still(first) };
    }
    const last = list[list.length - 1];
    if (renderTick >= last.tick) {
      const ahead = Math.min(renderTick - last.tick, this.maxExtrapolationTicks);
      if (ahead <= 0 || !(tickSeconds > 0) || !this.extrapolateFn) return { mode: 'hold', ...still(last) };
      const t = ahead * tickSeconds;
      const entities = [];
      for (const e of last.entities.values()) entities.push({ ...e, values: this.extrapolateFn(e, t) });
      const mode = renderTick - last.tick > this.maxExtrapolationTicks ? 'hold' : 'extrapolate';
      return { mode, from: last.tick, to: last.tick, alpha: 0, entities };
    }
    // first.tick < renderTick < last.tick: find a.tick <= renderTick < b.tick.
    let j = list.length - 1;
    while (list[j - 1].tick > renderTick) j--;
    const a = list[j - 1];
    const b = list[j];
    const alpha = (renderTick - a.tick) / (b.tick - a.tick);
    const entities = [];
    for (const ea of a.entities.values()) {
      const eb = b.entities.get(ea.id);
      if (!eb) {
        entities.push({ ...ea });
        continue;
      }
      // A new life of the id (another kind or controller) is not interpolated into.
      if (eb.kind !== ea.kind || eb.controlledBy !== ea.controlledBy) {
        entities.push({ ...ea });
        continue;
      }
      entities.push({ ...ea, values: this.mix(ea.kind, ea.values, eb.values, alpha) });
    }
    return { mode: 'interpolate', from: a.tick, to: b.tick, alpha, entities };
  }
}

function still(snap) {
  return {
    from: snap.tick,
    to: snap.tick,
    alpha: 0,
    entities: [...snap.entities.values()].map((e) => ({ ...e })),
  };
}

const TAU = 2 * Math.PI;

/** `a` to `b` (radians) by `alpha` along the shorter arc, in 0..2π. */
export function lerpAngle(a, b, alpha) {
  let d = (b - a) % TAU;
  if (d > Math.PI) d -= TAU;
  else if (d < -Math.PI) d += TAU;
  const v = (a + d * alpha) % TAU;
  return v < 0 ? v + TAU : v;
}

/**
 * The mix function of a codec (state/codec.js): for entity kind `kind`, the values
 * between `a` and `b` by `alpha`, each field as its declared type says.
 */
export function fieldMixer(codec) {
  const plans = codec.kinds.map((row) => row.fields.map((f) => [f.name, f.type]));
  return (kind, a, b, alpha) => {
    const out = { ...a };
    for (const [name, type] of plans[kind] ?? []) {
      const x = a[name];
      const y = b[name];
      if (type === 'Vec2') out[name] = { x: x.x + (y.x - x.x) * alpha, y: x.y + (y.y - x.y) * alpha };
      else if (type === 'F32') out[name] = x + (y - x) * alpha;
      else if (type === 'Angle') out[name] = lerpAngle(x, y, alpha);
    }
    return out;
  };
}
