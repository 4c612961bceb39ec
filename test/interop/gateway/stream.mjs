// @ts-check
/**
 * One stream as the interop gateway sees it (docs/PROTOCOL.md §5.4, §5.5): the gateway opened it, and
 * keeps both windows. `sendCredit` is what the connector granted us (we never exceed it unless a test
 * says `force`); `recvCredit` is what we granted the connector, and DATA beyond it is a connector fault.
 */
import { CODE, encode, INITIAL_WINDOW, MAX_PAYLOAD, T } from "./codec.mjs";
import { DEADLINE_MS, until } from "./wait.mjs";

export class Stream {
  /**
   * @param {import("./tunnel.mjs").Tunnel} tunnel
   * @param {number} id
   * @param {{ app: string, host: string, port: number, autoCredit: boolean }} o
   */
  constructor(tunnel, id, o) {
    this.tunnel = tunnel;
    this.id = id;
    this.app = o.app;
    this.host = o.host;
    this.port = o.port;
    /** Grant credit back as the connector's DATA arrives (§5.5: once half the window is consumed). */
    this.autoCredit = o.autoCredit;
    /** @type {"opening" | "open" | "closed"} */
    this.state = "opening";
    /** @type {import("./codec.mjs").Frame | undefined} */
    this.result = undefined;
    this.sendCredit = INITIAL_WINDOW;
    this.recvCredit = INITIAL_WINDOW;
    this.windowSize = INITIAL_WINDOW;
    this.ungranted = 0;
    /** @type {Buffer[]} */
    this.chunks = [];
    this.received = 0;
    this.finReceived = false;
    this.finSent = false;
    /** @type {import("./codec.mjs").Frame | undefined} */
    this.resetReceived = undefined;
    this.resetSent = false;
    /** DATA frames received: size and CREDIT_EXHAUSTED flag, in order. */
    /** @type {{ bytes: number, creditExhausted: boolean, creditBefore: number }[]} */
    this.dataFrames = [];
    /** @type {{ amount: number, confirmedByPing: number }[]} */
    this.grants = [];
  }

  /** Resolves with the OPEN_RESULT frame (or the RESET that ended the stream first). */
  opened(timeoutMs = DEADLINE_MS) {
    return until(
      this.tunnel.changes,
      `OPEN_RESULT for stream ${this.id} (${this.app} ${this.host}:${this.port})`,
      () => this.result ?? this.resetReceived ?? this.#gone(),
      timeoutMs,
    );
  }

  #gone() {
    if (this.tunnel.closeInfo) throw new Error(`tunnel closed while waiting on stream ${this.id}`);
    return undefined;
  }

  /** Sends `bytes` as DATA within the connector's window, waiting for WINDOW_UPDATEs when it runs out. */
  async write(/** @type {Uint8Array} */ bytes, { maxFrame = MAX_PAYLOAD[T.DATA], timeoutMs = DEADLINE_MS } = {}) {
    let at = 0;
    while (at < bytes.length) {
      await until(
        this.tunnel.changes,
        `send credit on stream ${this.id}`,
        () => this.sendCredit > 0 || this.#gone(),
        timeoutMs,
      );
      const n = Math.min(bytes.length - at, this.sendCredit, maxFrame);
      this.sendCredit -= n;
      this.tunnel.send(encode.data(this.id, bytes.subarray(at, at + n), this.sendCredit === 0));
      at += n;
    }
  }

  fin() {
    this.finSent = true;
    this.tunnel.send(encode.fin(this.id));
    this.#maybeClosed();
  }

  /** @param {number} [code] @param {string} [message] */
  reset(code = CODE.CANCELLED, message = "") {
    this.resetSent = true;
    this.state = "closed";
    this.tunnel.send(encode.reset(this.id, code, message));
  }

  /** Grants `increment` bytes of credit to the connector. */
  grant(/** @type {number} */ increment) {
    this.recvCredit += increment;
    this.grants.push({ amount: increment, confirmedByPing: this.tunnel.pingsSent + 1 });
    this.tunnel.send(encode.windowUpdate(this.id, increment));
  }

  /** Credit granted that the connector may not have received yet (no later PING of ours answered). */
  unconfirmedGrants() {
    return this.grants.filter((g) => g.confirmedByPing > this.tunnel.pongedUpTo).reduce((n, g) => n + g.amount, 0);
  }

  /** Everything received so far. */
  bytes() {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once `n` bytes have arrived. */
  readBytes(/** @type {number} */ n, timeoutMs = DEADLINE_MS) {
    return until(
      this.tunnel.changes,
      `${n} bytes on stream ${this.id} (have ${this.received})`,
      () => (this.received >= n ? this.bytes() : this.#ended(n)),
      timeoutMs,
    );
  }

  /** Resolves with all bytes once the connector's FIN arrived. */
  readToEnd(timeoutMs = DEADLINE_MS) {
    return until(
      this.tunnel.changes,
      `FIN on stream ${this.id} (have ${this.received} bytes)`,
      () => (this.finReceived ? this.bytes() : this.#ended()),
      timeoutMs,
    );
  }

  /** Resolves with the RESET frame the connector sent for this stream. */
  waitReset(timeoutMs = DEADLINE_MS) {
    return until(
      this.tunnel.changes,
      `RESET on stream ${this.id}`,
      () => this.resetReceived ?? this.#gone(),
      timeoutMs,
    );
  }

  /** @param {number} [wanted] */
  #ended(wanted) {
    if (this.resetReceived)
      throw new Error(
        `stream ${this.id} reset (${this.resetReceived.code}) with ${this.received}/${wanted ?? "?"} bytes`,
      );
    if (wanted !== undefined && this.finReceived)
      throw new Error(`stream ${this.id} ended with ${this.received}/${wanted} bytes`);
    return this.#gone();
  }

  /** @param {import("./codec.mjs").Frame} f  a connector DATA frame, already checked by the tunnel */
  onData(f) {
    this.dataFrames.push({
      bytes: f.length,
      creditExhausted: f.creditExhausted === true,
      creditBefore: this.recvCredit,
    });
    this.recvCredit -= f.length;
    this.chunks.push(Buffer.from(f.payload));
    this.received += f.length;
    this.ungranted += f.length;
    if (this.autoCredit && this.ungranted >= this.windowSize / 2) {
      const n = this.ungranted;
      this.ungranted = 0;
      this.grant(n);
    }
  }

  onFin() {
    this.finReceived = true;
    this.#maybeClosed();
  }

  #maybeClosed() {
    if (this.finReceived && this.finSent) this.state = "closed";
  }
}
