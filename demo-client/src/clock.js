// The client's estimate of the server's tick clock, and the render tick for entity
// interpolation. No DOM and no clock of its own: every call takes the local time in ms
// (performance.now() in a browser), so tests drive it with synthetic streams.
//
// Both clocks are an offset in ticks against local time: tick(t) = t / period + offset.
//
// - The server clock: the (fractional) tick the server last published, now. Every
//   observation bounds its offset. A snapshot of tick T that arrived at time a was
//   published before it: offset >= T - a / period. A Pong answered while the server's
//   tick was n, somewhere between the Ping leaving (s) and the Pong arriving (r), so the
//   fractional tick was in [n, n + 1) at some time in [s, r]: offset >= n - r / period and
//   offset < n + 1 - s / period. The estimate is the middle of the tightest interval the
//   recent observations allow (on loopback it narrows to a few ms; on a symmetric slow
//   link the middle is right too). Half the interval's width is the one-way delay.
// - The arrival clock: when snapshots arrive. Each snapshot gives a sample
//   `T - a / period`; the median of the last couple of seconds is the typical arrival,
//   and the spread down to a low percentile is how late a snapshot can be (jitter, a
//   lost or delayed one).
//
// The render tick is the server tick now, minus the one-way delay of snapshots, minus the
// interpolation delay. The one-way delay is the server clock minus the arrival clock, so
// the server clock cancels out and the render tick is the arrival clock minus the
// interpolation delay: a clock fitted to the ticks of many snapshots, never the arrival
// of the last one, and valid before the first Pong. The Pong-based server clock phases
// the inputs (client.js) and feeds the stats.
//
// The render tick runs `delay` ticks behind the typical arrival. The delay is at least
// `minDelayTicks` (2 by default: one tick to have a snapshot on each side, one of slack)
// and grows with the measured spread, and after each underrun (the render tick caught up
// with the newest snapshot) by half a tick that fades over the next 10 s. It advances with local time and is steered toward
// its target by at most `maxWarp` (±10% speed), so it never jumps backwards or stutters;
// only a large error (a stall, a resumed session) makes it snap.

/**
 * options: {
 *   tickRate,                    server ticks per second (from Welcome)
 *   windowSize = 60,             arrival samples kept (2 s at 30 Hz)
 *   minDelayTicks = 2,
 *   maxDelayTicks = 12,
 *   lowPercentile = 0.05,        how late a snapshot may be and still be waited for
 *   maxWarp = 0.1,               the render clock runs at 1 ± maxWarp
 *   snapTicks = 6,               an error larger than this is fixed at once
 *   pongWindow = 16,             Pongs considered for the server clock
 *   maxAheadTicks = 1,           how far past the newest snapshot the render tick may run
 * }
 */
export class TickClock {
  constructor(options = {}) {
    this.windowSize = options.windowSize ?? 60;
    this.minDelayTicks = options.minDelayTicks ?? 2;
    this.maxDelayTicks = options.maxDelayTicks ?? 12;
    this.lowPercentile = options.lowPercentile ?? 0.05;
    this.maxWarp = options.maxWarp ?? 0.1;
    this.snapTicks = options.snapTicks ?? 6;
    this.pongWindow = options.pongWindow ?? 16;
    this.maxAheadTicks = options.maxAheadTicks ?? 1;
    /** Recent round trips (ms), the newest last; they do not depend on the lobby. */
    this.rtts = [];
    this.rttMs = null;
    this.setTickRate(options.tickRate ?? 30);
  }

  /** Sets the tick rate and forgets every sample. */
  setTickRate(tickRate) {
    this.tickRate = tickRate;
    this.periodMs = 1000 / tickRate;
    this.resetArrivals();
  }

  /** Forgets the snapshot stream (a new lobby: its ticks count from another origin). */
  resetArrivals() {
    /** Arrival offsets (T - a / period), in arrival order. */
    this.arrivals = [];
    this.lastSnapshotTick = null;
    this.lastSnapshotAt = null;
    // Pong ticks count in the lobby's ticks too: those of another lobby are meaningless.
    this.pongs = [];
    this.render = null; // {tick, at}
    /** Extra delay after underruns (the render tick ran past the newest snapshot), in ticks. */
    this.boost = 0;
    this.starved = false;
    this.stats = {
      arrivalOffset: null, // median arrival offset
      spreadTicks: 0, // median - low percentile
      delayTicks: this.minDelayTicks, // target delay behind the typical arrival
      warp: 0,
      snaps: 0,
      underruns: 0,
    };
  }

  // The delay wanted now: the arrival statistics, plus the underrun boost.
  delay() {
    return Math.min(this.stats.delayTicks + this.boost, this.maxDelayTicks);
  }

  /** A snapshot of `tick` arrived at local time `nowMs`. */
  onSnapshot(tick, nowMs) {
    this.arrivals.push(tick - nowMs / this.periodMs);
    if (this.arrivals.length > this.windowSize) this.arrivals.shift();
    this.lastSnapshotTick = tick;
    this.lastSnapshotAt = nowMs;
    const sorted = [...this.arrivals].sort((a, b) => a - b);
    const median = quantile(sorted, 0.5);
    const low = quantile(sorted, this.lowPercentile);
    this.stats.arrivalOffset = median;
    this.stats.spreadTicks = median - low;
    // While the window fills, the median and spread rest on a few samples: a tick of
    // margin until there are enough keeps the first second from starving.
    const warmup = this.arrivals.length < WARMUP_SAMPLES ? 1 : 0;
    this.stats.delayTicks = clamp(1 + this.stats.spreadTicks + 0.25 + warmup, this.minDelayTicks + warmup, this.maxDelayTicks);
  }

  /**
   * A Pong: the Ping left at `sentMs`, the Pong arrived at `nowMs`, and `serverTick` is
   * the Pong's `server_tick`: the tick number of the lobby's next snapshot when the
   * server answered, so the newest snapshot it had published was `serverTick - 1` (0
   * outside a lobby: ignored).
   */
  onPong(sentMs, nowMs, serverTick) {
    const rtt = nowMs - sentMs;
    if (!(rtt >= 0)) return;
    this.rttMs = rtt;
    this.rtts.push(rtt);
    if (this.rtts.length > this.pongWindow) this.rtts.shift();
    if (serverTick > 0) {
      const published = serverTick - 1;
      this.pongs.push({
        low: published - nowMs / this.periodMs,
        high: published + 1 - sentMs / this.periodMs,
      });
      if (this.pongs.length > this.pongWindow) this.pongs.shift();
    }
  }

  /** The shortest round trip of the recent Pongs, in ms, or null. */
  minRttMs() {
    return this.rtts.length ? Math.min(...this.rtts) : null;
  }

  /**
   * The server clock's offset as an interval {low, high, offset}: `offset` the estimate,
   * or null before any snapshot or Pong of this lobby.
   */
  serverOffset() {
    let low = this.arrivals.length ? Math.max(...this.arrivals) : -Infinity;
    let high = Infinity;
    for (const p of this.pongs) {
      if (p.low > low) low = p.low;
      if (p.high < high) high = p.high;
    }
    if (low === -Infinity) return null;
    // Bounds that cross (clock drift over the window, a server stall) mean the newest
    // evidence wins: snapshots cannot arrive before they are published.
    if (high === Infinity || high < low) return { low, high: low, offset: low };
    return { low, high, offset: (low + high) / 2 };
  }

  /** The server's tick now (fractional), or null before any snapshot or Pong. */
  serverTick(nowMs) {
    const o = this.serverOffset();
    return o === null ? null : nowMs / this.periodMs + o.offset;
  }

  /**
   * How long a message takes to reach the server, in ticks: half the server clock's
   * uncertainty when Pongs bound it, else half the shortest round trip; null if unknown.
   */
  upstreamTicks() {
    const o = this.serverOffset();
    if (o !== null && o.high > o.low) return (o.high - o.low) / 2;
    const rtt = this.minRttMs();
    return rtt === null ? null : rtt / 2 / this.periodMs;
  }

  /**
   * How far (in ticks, -0.5..0.5) an input sent at `nowMs` would arrive from the middle
   * of a server tick: 0 is ideal (the input is applied at the next tick, far from either
   * edge); positive means it would arrive late in the tick. Null when unknown.
   */
  inputPhaseError(nowMs) {
    const server = this.serverTick(nowMs);
    const up = this.upstreamTicks();
    if (server === null || up === null) return null;
    const arrival = server + up;
    const phase = arrival - Math.floor(arrival); // 0..1 within the tick
    return phase - 0.5;
  }

  /** Estimated one-way delay of snapshots (server publish to client), in ms, or null. */
  latencyMs(nowMs) {
    const server = this.serverTick(nowMs);
    if (server === null || this.stats.arrivalOffset === null) return null;
    const arrival = nowMs / this.periodMs + this.stats.arrivalOffset;
    return Math.max(0, (server - arrival) * this.periodMs);
  }

  /** Where the render tick should be now, or null before the first snapshot. */
  targetRenderTick(nowMs) {
    if (this.stats.arrivalOffset === null) return null;
    return nowMs / this.periodMs + this.stats.arrivalOffset - this.delay();
  }

  /**
   * The render tick for a frame at `nowMs` (call once per frame, with non-decreasing
   * times). `newestTick` (optional) caps it a little past the newest snapshot, so that a
   * stalled stream stops the clock rather than running away from it.
   */
  renderTick(nowMs, newestTick = null) {
    const target = this.targetRenderTick(nowMs);
    if (target === null) return null;
    let tick;
    const elapsed = this.render ? Math.max(0, nowMs - this.render.at) / this.periodMs : 0;
    // Where the render tick would be running at exactly the local clock's pace.
    const free = this.render ? this.render.tick + elapsed : null;
    if (free === null || Math.abs(target - free) > this.snapTicks) {
      if (this.render) this.stats.snaps++;
      tick = target;
      this.stats.warp = 0;
    } else {
      // Run a little faster or slower toward the target: an error of e ticks changes the
      // pace by e / 10 (a tick of error is closed in about 10 ticks), never by more than
      // maxWarp, so remote players never visibly speed up or slow down by more than that.
      const warp = clamp((target - free) / WARP_TICKS, -this.maxWarp, this.maxWarp);
      this.stats.warp = warp;
      tick = free + elapsed * warp;
    }
    if (newestTick !== null && tick > newestTick + this.maxAheadTicks) {
      tick = Math.max(this.render?.tick ?? -Infinity, newestTick + this.maxAheadTicks);
    }
    // An underrun: nothing to interpolate toward. Whatever the cause (network jitter the
    // statistics missed, a busy main thread delivering snapshots late), wait half a tick
    // longer from now on; the extra delay fades by half a tick every 10 s without one.
    const starved = newestTick !== null && tick > newestTick;
    if (starved && !this.starved) {
      this.stats.underruns++;
      this.boost = Math.min(this.boost + UNDERRUN_BOOST, MAX_BOOST);
    }
    this.starved = starved;
    if (this.render && this.boost > 0) {
      this.boost = Math.max(0, this.boost - (elapsed * this.periodMs * BOOST_DECAY_PER_MS));
    }
    this.render = { tick, at: nowMs };
    return tick;
  }
}

/** Arrival samples below which the delay keeps an extra tick of margin. */
const WARMUP_SAMPLES = 15;
/** The render clock closes an error of one tick in about this many ticks. */
const WARP_TICKS = 10;
/** Extra delay per underrun, its cap, and how fast it fades (ticks per ms). */
const UNDERRUN_BOOST = 0.5;
const MAX_BOOST = 4;
const BOOST_DECAY_PER_MS = 0.5 / 10_000;

function clamp(v, lo, hi) {
  return Math.min(Math.max(v, lo), hi);
}

/** The q-quantile of an ascending array (linear interpolation). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
