// Sliding-window rates for the net stats overlay (snapshots/s, bytes/s, corrections/s).
// No DOM, no clock of its own.

/** Events with a value over the last `windowMs`: count, sum, rate per second, mean. */
export class RateMeter {
  constructor(windowMs = 1000) {
    this.windowMs = windowMs;
    this.events = []; // [{at, value}]
    this.head = 0;
    this.sum = 0;
    this.start = null;
  }

  add(nowMs, value = 1) {
    if (this.start === null) this.start = nowMs;
    this.events.push({ at: nowMs, value });
    this.sum += value;
    this.trim(nowMs);
  }

  trim(nowMs) {
    const cutoff = nowMs - this.windowMs;
    while (this.head < this.events.length && this.events[this.head].at <= cutoff) {
      this.sum -= this.events[this.head].value;
      this.head++;
    }
    // Compact now and then rather than shifting on every event.
    if (this.head > 256 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
    if (this.head === this.events.length) this.sum = 0; // no drift from float sums
  }

  /** Events in the window. */
  count(nowMs) {
    this.trim(nowMs);
    return this.events.length - this.head;
  }

  /** Sum of the values per second over the window (or over the time since the first event, if shorter). */
  rate(nowMs) {
    this.trim(nowMs);
    if (this.start === null) return 0;
    const span = Math.min(this.windowMs, Math.max(nowMs - this.start, 1));
    return (this.sum * 1000) / span;
  }

  /** Events per second. */
  eventRate(nowMs) {
    const n = this.count(nowMs);
    if (this.start === null) return 0;
    const span = Math.min(this.windowMs, Math.max(nowMs - this.start, 1));
    return (n * 1000) / span;
  }

  /** Mean value of the events in the window, or null when there are none. */
  mean(nowMs) {
    const n = this.count(nowMs);
    return n === 0 ? null : this.sum / n;
  }

  /** Largest value in the window, or null. */
  max(nowMs) {
    this.trim(nowMs);
    let best = null;
    for (let i = this.head; i < this.events.length; i++) {
      if (best === null || this.events[i].value > best) best = this.events[i].value;
    }
    return best;
  }

  reset() {
    this.events = [];
    this.head = 0;
    this.sum = 0;
    this.start = null;
  }
}
