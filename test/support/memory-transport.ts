/**
 * An in-memory `Transport` pair for tests: what one end sends, the other receives, in order, always
 * asynchronously (a microtask later), like a socket. Each message is copied on `send` (a wire copies
 * too). Optional `capacityBytes` simulates backpressure: `send` returns false while more than that
 * many bytes are sent and not yet delivered, and `drain` follows delivery. By default every delivered
 * buffer is overwritten after its `message` callback returns, so code that keeps a view of a message
 * beyond the call (which the `Transport` contract forbids) fails loudly in tests.
 * Test hooks: `suspend`/`resume` hold delivery to one end (a silent link), `fail` breaks the link.
 */
import type { Transport, TransportClose, TransportHandlers } from "../../src/transport/transport.ts";

export interface MemoryTransportOptions {
  /** Bytes in flight (sent, not delivered) above which `send` returns false. Default: unbounded. */
  readonly capacityBytes?: number;
  /** Overwrite each message buffer after delivery (default true). */
  readonly poison?: boolean;
}

type Inbound = { kind: "message"; data: Uint8Array } | { kind: "close"; info: TransportClose };

export class MemoryTransport implements Transport {
  #peer!: MemoryTransport;
  #handlers: TransportHandlers | undefined;
  readonly #inbox: Inbound[] = [];
  #deliveryScheduled = false;
  #suspended = false;
  #closed = false;
  #closeNotified = false;
  #pendingClose: TransportClose | undefined;
  #wantDrain = false;
  #buffered = 0;
  /** Messages and bytes this end has sent (for assertions). */
  messagesSent = 0;
  bytesSent = 0;

  constructor(private readonly options: MemoryTransportOptions) {}

  static pair(options: MemoryTransportOptions = {}): [MemoryTransport, MemoryTransport] {
    const a = new MemoryTransport(options);
    const b = new MemoryTransport(options);
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Messages waiting to be delivered to this end (e.g. while suspended). */
  get pendingMessages(): number {
    return this.#inbox.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#handlers = handlers;
    this.#scheduleDelivery();
    const closed = this.#pendingClose;
    if (closed) queueMicrotask(() => handlers.close(closed));
  }

  send(parts: readonly Uint8Array[]): boolean {
    if (this.#closed) return false;
    let size = 0;
    for (const part of parts) size += part.length;
    const data = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      data.set(part, at);
      at += part.length;
    }
    this.#buffered += size;
    this.messagesSent++;
    this.bytesSent += size;
    this.#peer.#enqueue({ kind: "message", data });
    if (this.#buffered <= (this.options.capacityBytes ?? Infinity)) return true;
    this.#wantDrain = true;
    return false;
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#peer.#enqueue({ kind: "close", info: { code, reason } });
    queueMicrotask(() => this.#notifyClose({ code, reason }));
  }

  /** Breaks the link at once: both ends see an abnormal close (1006); undelivered messages are lost. */
  fail(error = new Error("link failed")): void {
    for (const end of [this, this.#peer]) {
      end.#closed = true;
      end.#inbox.length = 0;
      queueMicrotask(() => end.#notifyClose({ code: 1006, reason: "", error }));
    }
  }

  /** Holds delivery of incoming messages to this end until `resume`. */
  suspend(): void {
    this.#suspended = true;
  }

  resume(): void {
    this.#suspended = false;
    this.#scheduleDelivery();
  }

  /** Delivers exactly one pending message now (even while suspended); false when none is waiting. */
  step(): boolean {
    const item = this.#inbox.shift();
    if (!item) return false;
    this.#deliver(item);
    return true;
  }

  #enqueue(item: Inbound): void {
    this.#inbox.push(item);
    this.#scheduleDelivery();
  }

  #scheduleDelivery(): void {
    if (this.#deliveryScheduled || this.#suspended || !this.#handlers || this.#inbox.length === 0) return;
    this.#deliveryScheduled = true;
    queueMicrotask(() => {
      this.#deliveryScheduled = false;
      while (!this.#suspended && this.#handlers && this.#inbox.length > 0) this.#deliver(this.#inbox.shift()!);
    });
  }

  #deliver(item: Inbound): void {
    if (item.kind === "close") {
      this.#closed = true;
      this.#notifyClose(item.info);
      return;
    }
    if (this.#closeNotified) return;
    try {
      this.#handlers?.message(item.data);
    } finally {
      if (this.options.poison ?? true) item.data.fill(0xee);
      this.#peer.#delivered(item.data.length);
    }
  }

  /** The peer took `size` of our bytes: maybe signal drain. */
  #delivered(size: number): void {
    this.#buffered -= size;
    if (!this.#wantDrain || this.#closed || this.#buffered > (this.options.capacityBytes ?? Infinity)) return;
    this.#wantDrain = false;
    queueMicrotask(() => {
      if (!this.#closeNotified) this.#handlers?.drain();
    });
  }

  #notifyClose(info: TransportClose): void {
    if (this.#closeNotified) return;
    this.#closeNotified = true;
    if (this.#handlers) this.#handlers.close(info);
    else this.#pendingClose = info;
  }
}

/** Two connected in-memory transports. */
export function createMemoryTransportPair(options: MemoryTransportOptions = {}): [MemoryTransport, MemoryTransport] {
  return MemoryTransport.pair(options);
}
