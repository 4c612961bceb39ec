/**
 * A simulated long fat link for session tests, on a `FakeClock`: two `Transport` ends joined by a
 * one-way delay and a line rate. A message leaves once the line has serialised everything sent before
 * it (`bytes / bytesPerMs`) and arrives `oneWayDelayMs` later, so a session over it sees a real
 * bandwidth-delay product, deterministic and in simulated time. `send` pushes back while more than
 * `sendBufferBytes` wait for the line (a socket's send buffer), and drains when the line catches up.
 * Used where the kernel cannot delay loopback (no sch_netem): the window growth that long links need
 * is checked here, in the model, instead.
 */
import type { Transport, TransportClose, TransportHandlers } from "../../src/transport/transport.ts";
import type { FakeClock } from "./fake-clock.ts";

export interface LongLinkOptions {
  readonly clock: FakeClock;
  readonly oneWayDelayMs: number;
  /** Line rate, in bytes per simulated millisecond (125,000 is 1 Gbit/s). */
  readonly bytesPerMs: number;
  readonly sendBufferBytes: number;
}

class LongLinkEnd implements Transport {
  peer!: LongLinkEnd;
  #handlers: TransportHandlers | undefined;
  readonly #early: Uint8Array[] = [];
  /** When the line is free to start serialising the next message. */
  #lineFreeAt = 0;
  /** Bytes accepted by `send` that the line has not serialised yet. */
  #unsent = 0;
  #wantDrain = false;
  #closed = false;

  constructor(private readonly o: LongLinkOptions) {}

  get bufferedBytes(): number {
    return this.#unsent;
  }

  setHandlers(handlers: TransportHandlers): void {
    this.#handlers = handlers;
    for (const data of this.#early.splice(0)) handlers.message(data);
  }

  send(parts: readonly Uint8Array[]): boolean {
    if (this.#closed) return false;
    const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      data.set(part, at);
      at += part.length;
    }
    const now = this.o.clock.now();
    this.#lineFreeAt = Math.max(now, this.#lineFreeAt) + data.length / this.o.bytesPerMs;
    this.#unsent += data.length;
    this.o.clock.setTimeout(() => this.#serialised(data.length), this.#lineFreeAt - now);
    this.o.clock.setTimeout(() => this.peer.#receive(data), this.#lineFreeAt - now + this.o.oneWayDelayMs);
    if (this.#unsent <= this.o.sendBufferBytes) return true;
    this.#wantDrain = true;
    return false;
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    const info: TransportClose = { code, reason };
    this.#handlers?.close(info);
    this.peer.#peerClosed(info);
  }

  #serialised(bytes: number): void {
    this.#unsent -= bytes;
    if (this.#wantDrain && this.#unsent <= this.o.sendBufferBytes / 2 && !this.#closed) {
      this.#wantDrain = false;
      this.#handlers?.drain();
    }
  }

  #receive(data: Uint8Array): void {
    if (this.#closed) return;
    if (this.#handlers) this.#handlers.message(data);
    else this.#early.push(data);
  }

  #peerClosed(info: TransportClose): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers?.close(info);
  }
}

export function createLongLinkPair(options: LongLinkOptions): [LongLinkEnd, LongLinkEnd] {
  const a = new LongLinkEnd(options);
  const b = new LongLinkEnd(options);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
