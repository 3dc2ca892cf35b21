// A link conditioner for demos and tests: delays this client's messages in each direction
// by `lagMs` plus a random `±jitterMs`, keeping their order (a WebSocket is one ordered TCP
// stream, so a late message holds back the ones behind it, as on a real link). Open the
// page with `?lag=150&jitter=30` to see prediction and interpolation at work on a fast
// network. No DOM: the timer functions are injectable.

/**
 * The conditioner settings in a page's query string: `lag` (ms added in each direction,
 * so the round trip grows by twice that) and `jitter` (ms, ± around the lag). Returns
 * null when neither is set (or both are 0).
 */
export function conditionerSettings(search) {
  const params = new URLSearchParams(search);
  const number = (key) => {
    const v = Number.parseFloat(params.get(key) ?? '');
    return Number.isFinite(v) && v > 0 ? Math.min(v, 10_000) : 0;
  };
  const lagMs = number('lag');
  const jitterMs = Math.min(number('jitter'), lagMs > 0 ? lagMs : Infinity);
  if (lagMs === 0 && jitterMs === 0) return null;
  return { lagMs, jitterMs };
}

/**
 * Two FIFO queues ('in' and 'out'), each released by one timer.
 *
 * options: {lagMs, jitterMs, random = Math.random, now, setTimeout, clearTimeout}
 */
export class LinkConditioner {
  constructor(options) {
    this.lagMs = options.lagMs ?? 0;
    this.jitterMs = options.jitterMs ?? 0;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout ?? ((id) => clearTimeout(id));
    this.queues = { in: [], out: [] };
    this.timers = { in: null, out: null };
    this.last = { in: -Infinity, out: -Infinity };
  }

  /** Messages waiting in each direction. */
  get pending() {
    return { in: this.queues.in.length, out: this.queues.out.length };
  }

  /** Runs `fn` after this direction's delay, after everything queued before it. */
  delay(direction, fn) {
    const jitter = this.jitterMs * (2 * this.random() - 1);
    const at = Math.max(this.now() + Math.max(0, this.lagMs + jitter), this.last[direction]);
    this.last[direction] = at;
    this.queues[direction].push({ at, fn });
    if (this.timers[direction] === null) this.arm(direction);
  }

  arm(direction) {
    const queue = this.queues[direction];
    if (queue.length === 0) {
      this.timers[direction] = null;
      return;
    }
    const wait = Math.max(0, queue[0].at - this.now());
    this.timers[direction] = this.setTimer(() => this.release(direction), wait);
  }

  release(direction) {
    const queue = this.queues[direction];
    const now = this.now();
    // Timers may fire a little early or late; release everything due (1 ms of slack).
    while (queue.length > 0 && queue[0].at <= now + 1) {
      const { fn } = queue.shift();
      fn();
      if (this.queues[direction] !== queue) return; // cancelled by what fn did
    }
    this.arm(direction);
  }

  /** Drops everything still queued (the connection is gone). */
  cancel() {
    for (const direction of ['in', 'out']) {
      if (this.timers[direction] !== null) this.clearTimer(this.timers[direction]);
      this.timers[direction] = null;
      this.queues[direction] = [];
    }
  }
}
