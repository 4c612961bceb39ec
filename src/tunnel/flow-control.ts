/**
 * Credit accounting of one stream (§5.5), one class per direction, no I/O and no events:
 * - `SendBuffer`: chunks queued by the writer and the credit the peer granted. Bytes leave only as
 *   views and only within credit, so the peer never receives more than it allowed.
 * - `ReceiveWindow`: the credit we granted, the bytes our consumer has not delivered yet, and when to
 *   grant more. Credit comes back only for delivered bytes, so a slow consumer bounds memory.
 */
import { WINDOW_UPDATE_FRACTION } from "./config.ts";
import { INITIAL_WINDOW, MAX_CREDIT, MAX_WINDOW } from "./const.ts";

/**
 * Below this round trip (a LAN, loopback) the initial window already covers the bandwidth-delay
 * product: 256 KiB per millisecond is 2 Gbit/s per stream. Growing there only queues more of a bulk
 * stream in socket buffers ahead of everyone else's frames (measured: 1 KiB echoes under bulk load
 * went from ~3x to ~15x their idle latency), so windows grow only on links slower than this.
 */
export const MIN_RTT_FOR_GROWTH_MS = 1;

const NO_CHUNKS: Uint8Array[] = [];
const SPENT = new Uint8Array(0);

export class SendBuffer {
  #chunks: Uint8Array[] = NO_CHUNKS;
  #head = 0;
  #headOffset = 0;
  /** Bytes queued and not yet pulled into a frame. */
  queued = 0;
  /** Bytes the peer still allows us to send. */
  credit = INITIAL_WINDOW;

  /** Keeps `chunk` by reference (no copy). */
  push(chunk: Uint8Array): void {
    if (this.#chunks === NO_CHUNKS) this.#chunks = [];
    this.#chunks.push(chunk);
    this.queued += chunk.length;
  }

  /**
   * Everything queued can go out now: the writer may add more. Capped at MAX_WINDOW so a peer that
   * grants absurd credit (legal up to 2^31 − 1) cannot make us buffer gigabytes behind a slow tunnel.
   */
  get writable(): boolean {
    return this.queued < Math.min(this.credit, MAX_WINDOW);
  }

  /** Adds peer credit; false (and no change) when it would exceed 2^31 − 1 (§5.5). */
  addCredit(increment: number): boolean {
    if (this.credit + increment > MAX_CREDIT) return false;
    this.credit += increment;
    return true;
  }

  /** Pushes views of up to `max` queued bytes within credit onto `out`; returns the byte count. */
  pull(max: number, out: Uint8Array[]): number {
    const limit = Math.min(max, this.credit, this.queued);
    let taken = 0;
    while (taken < limit) {
      const chunk = this.#chunks[this.#head]!;
      const start = this.#headOffset;
      const n = Math.min(chunk.length - start, limit - taken);
      out.push(start === 0 && n === chunk.length ? chunk : chunk.subarray(start, start + n));
      taken += n;
      if (start + n === chunk.length) {
        this.#chunks[this.#head++] = SPENT; // drop the reference; the transport holds the view now
        this.#headOffset = 0;
      } else {
        this.#headOffset = start + n;
      }
    }
    this.queued -= taken;
    this.credit -= taken;
    if (this.queued === 0) this.clear();
    else if (this.#head > 64) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return taken;
  }

  /** Drops every queued byte (RESET). Credit is kept: it is the peer's, not the queue's. */
  clear(): void {
    this.#chunks = NO_CHUNKS;
    this.#head = 0;
    this.#headOffset = 0;
    this.queued = 0;
  }
}

export class ReceiveWindow {
  /** Current window size; grows up to the configured maximum, never shrinks. */
  window = INITIAL_WINDOW;
  /** Bytes the peer may still send us. */
  peerCredit = INITIAL_WINDOW;
  /** Received bytes the consumer has not reported delivered. */
  unconsumed = 0;
  /** Delivered bytes not yet granted back to the peer. */
  #ungranted = 0;
  #lastGrantAt: number;

  constructor(now: number) {
    this.#lastGrantAt = now;
  }

  /** Accounts `n` received bytes; false when they exceed the peer's credit (FLOW_CONTROL). */
  receive(n: number): boolean {
    if (n > this.peerCredit) return false;
    this.peerCredit -= n;
    this.unconsumed += n;
    return true;
  }

  /** The consumer delivered `n` bytes; returns true when a WINDOW_UPDATE is due (§5.5: half a window). */
  consumed(n: number): boolean {
    const taken = Math.min(n, this.unconsumed);
    this.unconsumed -= taken;
    this.#ungranted += taken;
    return this.#ungranted >= this.window * WINDOW_UPDATE_FRACTION;
  }

  /**
   * The increment to send now. When half a window was used within two round trips the window, not
   * the link, limits the sender (a long link), so the window doubles, bounded by `maxWindow`.
   */
  grant(now: number, rttMs: number | undefined, maxWindow: number): number {
    let increment = this.#ungranted;
    if (rttMs !== undefined && rttMs >= MIN_RTT_FOR_GROWTH_MS && now - this.#lastGrantAt < 2 * rttMs && this.window < maxWindow) {
      const grown = Math.min(this.window * 2, maxWindow);
      increment += grown - this.window;
      this.window = grown;
    }
    this.#ungranted = 0;
    this.#lastGrantAt = now;
    this.peerCredit += increment;
    return increment;
  }
}
