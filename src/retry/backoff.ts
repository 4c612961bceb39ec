/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * the n-th retry waits a uniformly random time in [0, min(cap, base·2ⁿ)]. Full jitter spreads the
 * reconnects of many connectors after a cloud outage instead of synchronising them into waves.
 * The random source is injected so tests are deterministic.
 */

export interface BackoffPolicy {
  /** First ceiling, ms (1 s). */
  readonly baseMs: number;
  /** Largest ceiling, ms (60 s). */
  readonly capMs: number;
}

export const TUNNEL_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 60_000 };

export class Backoff {
  #attempt = 0;
  constructor(
    private readonly policy: BackoffPolicy = TUNNEL_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The ceiling for the next wait, before jitter. */
  ceilingMs(): number {
    const exponent = Math.min(this.#attempt, 30);
    return Math.min(this.policy.capMs, this.policy.baseMs * 2 ** exponent);
  }

  /** Delay before the next attempt; each call counts one more failure. */
  nextDelayMs(): number {
    const delay = Math.floor(this.random() * this.ceilingMs());
    this.#attempt += 1;
    return delay;
  }

  get attempts(): number {
    return this.#attempt;
  }

  /** A success resets the sequence. */
  reset(): void {
    this.#attempt = 0;
  }
}
