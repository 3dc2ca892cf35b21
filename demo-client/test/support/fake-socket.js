// A WebSocket stand-in for the client: records what it sends (decoded) and lets a test
// open it, deliver server messages (encoded for real) and close or drop it.

import { decodeClient, encodeServer } from '../../src/codec.js';

/**
 * A fresh FakeSocket class; `Socket.all` lists its instances, newest last. `frames`
 * decodes the client's game frames for the tests ({type: 'Input', bytes} -> whatever it
 * returns, e.g. the input's seq and values).
 */
export function fakeSocketClass(frames = (m) => m) {
  return class FakeSocket {
    static all = [];

    static get last() {
      return FakeSocket.all.at(-1);
    }

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.binaryType = 'blob';
      FakeSocket.all.push(this);
    }

    send(bytes) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      const m = decodeClient(bytes);
      this.sent.push(m.bytes ? frames(m) : m);
    }

    close(code, reason) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.closedBy = { code, reason };
      this.onclose?.({ code: 1005, reason: '', wasClean: true });
    }

    // Test side.
    open() {
      this.readyState = 1;
      this.onopen?.();
    }

    deliver(message) {
      const bytes = encodeServer(message);
      this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) });
    }

    /** The server closes (or the link drops) with `code`. */
    drop(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }

    /** Messages sent of one type. */
    ofType(type) {
      return this.sent.filter((m) => m.type === type);
    }
  };
}
