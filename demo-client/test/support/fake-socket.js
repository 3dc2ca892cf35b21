// A WebSocket stand-in for the client: records what it sends (decoded) and lets a test
// open it, deliver server messages (encoded for real) and close or drop it.

import { decodeClient, encodeServer } from '../../src/codec.js';

/** A fresh FakeSocket class; `Socket.all` lists its instances, newest last. */
export function fakeSocketClass() {
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
      this.sent.push(decodeClient(bytes));
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
