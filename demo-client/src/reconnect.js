// When and how soon to reconnect after a connection ends. Pure (no timers, no DOM): the
// client asks `Backoff.next()` for the delay and arms its own timer.

import { CloseCode, FINAL_CLOSE_CODES, LocalCloseCode, nameOf } from './codec.js';

/**
 * Close codes after which reconnecting would only repeat the failure, so the client
 * stops and shows the reason with a button instead (codec.js, from `close::FINAL`): a
 * version mismatch (reload the page), replaced by a newer connection of the same player
 * (another tab took over; two tabs fighting over one session must not ping-pong), kicked,
 * and the client-fault codes (a policy violation such as a rate limit or a refused join
 * token, a text frame, a protocol error, an oversized message).
 */
export { FINAL_CLOSE_CODES };

/**
 * Whether to reconnect on our own after a close with `code`. Everything else is a
 * vanished link (CONNECTION_LOST), a restart (GOING_AWAY), an idle or slow-consumer
 * timeout, a full server (TRY_AGAIN_LATER): worth another try, later.
 */
export function shouldReconnect(code) {
  return !FINAL_CLOSE_CODES.includes(code);
}

/**
 * Exponential backoff with jitter: 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s... each multiplied by a
 * random factor in [1 - jitter, 1], so that clients cut off together (a server restart)
 * do not all come back in the same millisecond.
 *
 * options: {baseMs = 500, maxMs = 8000, factor = 2, jitter = 0.3, random = Math.random}
 */
export class Backoff {
  constructor(options = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 8000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.3;
    this.random = options.random ?? Math.random;
    this.attempt = 0;
  }

  /** The delay before the next attempt, in ms; counts the attempt. */
  next() {
    const ceiling = Math.min(this.maxMs, this.baseMs * this.factor ** this.attempt);
    this.attempt++;
    return Math.round(ceiling * (1 - this.jitter * this.random()));
  }

  /** A connection worked: start again from the shortest delay. */
  reset() {
    this.attempt = 0;
  }
}

// Codes a browser reports itself (never sent by the server), in words.
const LOCAL_CLOSE_TEXT = {
  [LocalCloseCode.NO_CLOSE_CODE]: 'no close code',
  [LocalCloseCode.CONNECTION_LOST]: 'connection lost',
  [LocalCloseCode.TLS_FAILURE]: 'TLS failure',
};

/** What a close code means, in words: "going away", "connection lost"... */
export function closeCodeText(code) {
  const known = nameOf(CloseCode, code);
  if (known) return known.toLowerCase().replaceAll('_', ' ');
  return LOCAL_CLOSE_TEXT[code] ?? 'closed';
}

/** "Disconnected: 4003 idle timeout (idle timeout)". */
export function describeClose({ code, reason }) {
  return `Disconnected: ${code} ${closeCodeText(code)}${reason ? ` (${reason})` : ''}`;
}
