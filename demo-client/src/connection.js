// The transport: one WebSocket, binary frames only, one encoded message per frame, with
// an optional link conditioner (conditioner.js) between the socket and the client. Knows
// the codec and nothing about the game. No DOM: the WebSocket class is injectable, so it
// runs in Node with a fake one.

import { CloseCode, CodecError, decodeServer, encodeClient } from './codec.js';

/**
 * The server's WebSocket URL: `ws(s)://<host>/ws` of the page, or the `?server=` query
 * parameter (`host:port` or a full `ws://` URL), for a page served from elsewhere. A
 * `?token=` parameter of the page (a join token from the game's backend, for servers
 * that require one) is passed on as `/ws?token=...`.
 */
export function serverUrl(loc = globalThis.location) {
  const secure = loc.protocol === 'https:';
  const params = new URLSearchParams(loc.search);
  const override = params.get('server');
  let url;
  if (override) {
    url = /^wss?:\/\//.test(override) ? override : `${secure ? 'wss' : 'ws'}://${override}/ws`;
  } else {
    url = `${secure ? 'wss' : 'ws'}://${loc.host}/ws`;
  }
  const token = params.get('token');
  if (token) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  return url;
}

/**
 * Where a `Redirect` (cluster mode) sends the client: its `url` as an absolute `ws:` or
 * `wss:` URL, or null for anything else (another scheme, not a URL at all). A relative
 * `url` (`/b/ws`, nodes behind one reverse proxy) is resolved against the page's origin
 * (`http:` becomes `ws:`, `https:` `wss:`), or against `current` (the URL connected to now)
 * where there is no page.
 */
export function resolveRedirectUrl(url, pageOrigin, current) {
  let base = current;
  if (pageOrigin && /^https?:\/\//.test(pageOrigin)) base = pageOrigin.replace(/^http/, 'ws');
  let resolved;
  try {
    resolved = new URL(url, base);
  } catch {
    return null;
  }
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') return null;
  return resolved.href;
}

/**
 * A connection to a ticksync server.
 *
 * handlers: {
 *   onOpen(),                          the socket is open (send Hello now)
 *   onMessage(message, byteLength),    one decoded server message
 *   onClose({code, reason, wasClean}), the connection is gone (after every message before it)
 *   onProtocolError(error),            an undecodable server message (the connection is closed)
 *   onBytes(direction, byteLength),    a frame crossed the wire ('in' or 'out'), for stats
 * }
 * conditioner: a LinkConditioner (or null): delays messages both ways and the close.
 */
export class Connection {
  constructor(url, handlers = {}, WebSocketImpl = globalThis.WebSocket, conditioner = null) {
    this.url = url;
    this.handlers = handlers;
    this.conditioner = conditioner;
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.messagesIn = 0;
    this.messagesOut = 0;
    this.closeInfo = null;
    this.failed = false;
    const ws = new WebSocketImpl(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => this.handlers.onOpen?.();
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => {
      const info = { code: event.code, reason: event.reason, wasClean: event.wasClean };
      this.later(() => {
        this.closeInfo = info;
        this.conditioner?.cancel();
        this.handlers.onClose?.(info);
      });
    };
    // An error is always followed by a close event, which carries what there is to know.
    ws.onerror = () => {};
    this.ws = ws;
  }

  /** True while messages can be sent. */
  get open() {
    return this.ws.readyState === 1 && this.closeInfo === null;
  }

  later(fn) {
    if (this.conditioner) this.conditioner.delay('in', fn);
    else fn();
  }

  receive(data) {
    if (this.failed) return;
    if (!(data instanceof ArrayBuffer)) {
      this.fail(new CodecError('Decode', 'the server sent a text frame'));
      return;
    }
    this.bytesIn += data.byteLength;
    this.messagesIn++;
    this.handlers.onBytes?.('in', data.byteLength);
    let message;
    try {
      message = decodeServer(data);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.later(() => this.handlers.onMessage?.(message, data.byteLength));
  }

  fail(error) {
    this.failed = true;
    this.handlers.onProtocolError?.(error);
    // Browsers let a client close only with 1000 or 3000-4999.
    this.close(CloseCode.NORMAL, 'undecodable server message');
  }

  /**
   * Encodes and sends one client message (after the conditioner's delay, if any).
   * Returns false when the socket is not open. Throws CodecError for a message that
   * cannot be encoded.
   */
  send(message) {
    const bytes = encodeClient(message);
    if (!this.open) return false;
    const write = () => {
      if (this.ws.readyState !== 1) return;
      this.ws.send(bytes);
      this.bytesOut += bytes.length;
      this.messagesOut++;
      this.handlers.onBytes?.('out', bytes.length);
    };
    if (this.conditioner) this.conditioner.delay('out', write);
    else write();
    return true;
  }

  /** Closes the connection now, dropping what the conditioner still holds (idempotent). */
  close(code = CloseCode.NORMAL, reason = '') {
    this.conditioner?.cancel();
    if (this.ws.readyState === 0 || this.ws.readyState === 1) this.ws.close(code, reason);
  }
}
