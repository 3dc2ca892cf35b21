// A manual clock and timers for driving the client without waiting: `now()`,
// `setTimeout`, `clearTimeout`, and `advance(ms)`, which runs every timer due in order.

export class FakeTime {
  constructor(start = 1000) {
    this.t = start;
    this.timers = new Map(); // id -> {at, fn, seq}
    this.nextId = 1;
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.t + Math.max(0, ms), fn, seq: id });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  /** Pending timers. */
  get pending() {
    return this.timers.size;
  }

  /** Moves the clock forward by `ms`, running each timer that comes due, in order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (!next || timer.at < next[1].at || (timer.at === next[1].at && timer.seq < next[1].seq))) {
          next = [id, timer];
        }
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}
