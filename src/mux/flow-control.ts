/**
 * Credit accounting of one stream (PROTOCOL §5.5), one class per direction, no I/O and no events:
 * - `SendBuffer`: chunks queued by the writer and the credit the peer granted. Bytes leave only as
 *   views and only within credit, so the peer never receives more than it allowed.
 * - `ReceiveWindow`: the credit we granted, the bytes our consumer has not delivered yet, and when to
 *   grant more. Credit comes back only for delivered bytes, so a slow consumer bounds memory.
 *
 * Window growth (PROTOCOL §5.5) is driven by the sender's own signal, not by timing: a DATA frame flagged
 * CREDIT_EXHAUSTED says the sender ran out of credit. If our consumer had already delivered every
 * byte when that frame arrived, the window, not the consumer, held the stream back (a long link, or
 * the credit round trip through two busy event loops), so the next grant doubles the window. A slow
 * consumer still holds bytes at that moment, so its window never grows.
 *
 * The signal alone would also grow a window where the delay is queueing, not distance: on a short
 * path whose bottleneck is CPU, every grown byte just waits in the sender's queue and the TCP buffers,
 * in front of every other stream's frames on the tunnel (16 MiB made a 1 KiB exchange wait 50 ms behind
 * one upload). So a window grows only while it is below 1.5 times the stream's bandwidth-delay product:
 * its delivery rate (sampled over at least one round trip) times the tunnel's smallest PING round trip
 * (`GrowthPace`). Limited by a long link, a stream delivers a window per round trip, so its product is
 * its window and it keeps doubling; limited by CPU on a short path, its product is a fraction of the
 * initial window and it stays there. Below a 2 ms round trip it never grows (`GROWTH_MIN_RTT_MS`).
 */
import { WINDOW_UPDATE_FRACTION } from "./config.ts";
import { INITIAL_WINDOW, MAX_CREDIT, MAX_WINDOW } from "./const.ts";

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

  /** Adds peer credit; false (and no change) when it would exceed 2^31 − 1 (PROTOCOL §5.5). */
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

/** What window growth needs to know of time: now, and the tunnel's smallest round trip (unknown before the first PONG). */
export interface GrowthPace {
  readonly now: number;
  readonly minRttMs: number | undefined;
}

/** A window may grow while it is below this many bandwidth-delay products. */
export const GROWTH_BDP_FACTOR = 1.5;
/**
 * No growth while the tunnel's smallest round trip is below 2 ms. So short a round trip is two event
 * loops and the kernel, not distance, and it swells with CPU load: on a loaded 2-core machine loopback
 * PINGs took 0.7 ms, and 1.5 × 4 Gbit/s × 0.7 ms grew an upload's window to 1 MiB, all of it queued in
 * front of every other stream's frames (a 1 KiB exchange beside it: 2.4–7.5 ms; with no growth
 * 1.4–1.7 ms, ssh -L 1.0–2.2 ms in the same runs). Below 2 ms the initial 256 KiB window carries at
 * least 1 Gbit/s per stream; the cost measured on loopback is 0–15% of one upload's throughput.
 */
export const GROWTH_MIN_RTT_MS = 2;
/** Delivery rate is sampled over at least this long even on a faster path: shorter spans are noise. */
const MIN_RATE_SAMPLE_MS = 1;

export class ReceiveWindow {
  /** Current window size; grows up to the configured maximum, never shrinks. */
  window = INITIAL_WINDOW;
  /** Bytes the peer may still send us. */
  peerCredit = INITIAL_WINDOW;
  /** Received bytes the consumer has not reported delivered. */
  unconsumed = 0;
  /** Delivered bytes not yet granted back to the peer. */
  #ungranted = 0;
  /** The sender ran out of credit while our consumer kept up: the next grant doubles the window. */
  #growNext = false;
  /** Delivery rate: bytes granted back since `#sampleStart`, and the last whole sample in bytes per ms. */
  #sampleStart = Number.NaN;
  #sampleBytes = 0;
  #bytesPerMs = 0;

  /** Accounts `n` received bytes; false when they exceed the peer's credit (FLOW_CONTROL). */
  receive(n: number): boolean {
    if (n > this.peerCredit) return false;
    this.peerCredit -= n;
    this.unconsumed += n;
    return true;
  }

  /** The consumer delivered `n` bytes; returns true when a WINDOW_UPDATE is due (PROTOCOL §5.5: half a window). */
  consumed(n: number): boolean {
    const taken = Math.min(n, this.unconsumed);
    this.unconsumed -= taken;
    this.#ungranted += taken;
    return this.#ungranted >= this.window * WINDOW_UPDATE_FRACTION;
  }

  /**
   * A DATA frame flagged CREDIT_EXHAUSTED was just handed to the consumer. Only when the consumer
   * delivered everything at once (nothing unconsumed) is the window what stops the sender.
   */
  senderExhausted(): void {
    if (this.unconsumed === 0) this.#growNext = true;
  }

  /**
   * The increment to send now: the delivered bytes, plus the growth when the sender was window-limited.
   * `reserveGrowth(extra)` asks the session's growth budget for `extra` bytes (false: none left), so
   * grown windows stay bounded per tunnel as well as per stream. Growth also needs the window to be
   * below `GROWTH_BDP_FACTOR` bandwidth-delay products (see the file comment).
   */
  grant(maxWindow: number, reserveGrowth: (extra: number) => boolean, pace: GrowthPace): number {
    let increment = this.#ungranted;
    this.#sample(increment, pace);
    if (this.#growNext && this.window < maxWindow && this.#belowBdp(pace)) {
      const grown = Math.min(this.window * 2, maxWindow);
      if (reserveGrowth(grown - this.window)) {
        increment += grown - this.window;
        this.window = grown;
      }
    }
    this.#growNext = false;
    this.#ungranted = 0;
    this.peerCredit += increment;
    return increment;
  }

  #sample(bytes: number, pace: GrowthPace): void {
    if (Number.isNaN(this.#sampleStart)) {
      // The first grant: when its bytes started to arrive is unknown, so the first sample starts now.
      this.#sampleStart = pace.now;
      return;
    }
    this.#sampleBytes += bytes;
    const span = pace.now - this.#sampleStart;
    if (span < Math.max(pace.minRttMs ?? Infinity, MIN_RATE_SAMPLE_MS)) return;
    this.#bytesPerMs = this.#sampleBytes / span;
    this.#sampleStart = pace.now;
    this.#sampleBytes = 0;
  }

  #belowBdp(pace: GrowthPace): boolean {
    // No round trip measured yet: nothing to size by. Too short a one: see GROWTH_MIN_RTT_MS.
    if (pace.minRttMs === undefined || pace.minRttMs < GROWTH_MIN_RTT_MS) return false;
    return this.window < GROWTH_BDP_FACTOR * this.#bytesPerMs * pace.minRttMs;
  }
}
