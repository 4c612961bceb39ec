/**
 * The watch over one retrieval: the overall deadline and the speed floor over a sliding window abort
 * its fetch, and `failure` says which fired (so the fetch's own abort error is not what is reported).
 * Timers run on the policy's clock, so tests drive 30-second windows without waiting for them.
 */
import { systemClock, type Clock, type TimerHandle } from "../clock.ts";
import { UpgradeError } from "./errors.ts";

/** The URL as it may appear in messages: no credentials, no query (it may hold a token). */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** How a release is retrieved (re-exported by download.ts, where callers find it). */
export interface RetrievalPolicy {
  proxy?: string;
  noProxy: readonly string[];
  /** Everything one call retrieves must arrive within this. */
  deadlineMs: number;
  /** Below this average over the last `speedWindowMs`, the retrieval is cut (DOWNLOAD_TOO_SLOW). */
  minBytesPerSecond: number;
  speedWindowMs: number;
  signal?: AbortSignal;
  clock?: Clock;
}

/** How often, per speed window, the byte count is sampled. */
const SAMPLES_PER_WINDOW = 10;

/**
 * One retrieval's guard: the deadline and speed floor abort its fetch, and `failure` says which fired.
 * `count(bytes)` feeds the speed window.
 */
export class Guard {
  readonly controller = new AbortController();
  failure: UpgradeError | undefined;
  #timers: TimerHandle[] = [];
  #total = 0;
  #samples: { at: number; total: number }[];
  readonly #clock: Clock;
  readonly #onAbort: () => void;

  constructor(
    readonly policy: RetrievalPolicy,
    readonly what: string,
  ) {
    this.#clock = policy.clock ?? systemClock;
    this.#samples = [{ at: this.#clock.now(), total: 0 }];
    this.#onAbort = () =>
      this.fail(
        new UpgradeError(
          "DOWNLOAD_FAILED",
          `The retrieval of ${what} was stopped (the connector is shutting down or the upgrade was cancelled).`,
        ),
      );
    if (policy.signal?.aborted) this.#onAbort();
    policy.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#timers.push(
      this.#clock.setTimeout(
        () =>
          this.fail(
            new UpgradeError(
              "DOWNLOAD_TIMEOUT",
              `The retrieval of ${what} did not finish within ${Math.round(policy.deadlineMs / 1000)} s; it is abandoned and retried on the next check.`,
            ),
          ),
        policy.deadlineMs,
      ),
    );
    this.#scheduleSample();
  }

  count(bytes: number): void {
    this.#total += bytes;
  }

  #scheduleSample(): void {
    const every = Math.max(1, Math.floor(this.policy.speedWindowMs / SAMPLES_PER_WINDOW));
    this.#timers.push(this.#clock.setTimeout(() => this.#sample(), every));
  }

  #sample(): void {
    if (this.failure) return;
    const now = this.#clock.now();
    const windowStart = now - this.policy.speedWindowMs;
    this.#samples.push({ at: now, total: this.#total });
    while (this.#samples.length > 1 && this.#samples[1]!.at <= windowStart) this.#samples.shift();
    const oldest = this.#samples[0]!;
    if (oldest.at <= windowStart) {
      const rate = ((this.#total - oldest.total) * 1000) / (now - oldest.at);
      if (rate < this.policy.minBytesPerSecond) {
        this.fail(
          new UpgradeError(
            "DOWNLOAD_TOO_SLOW",
            `The retrieval of ${this.what} fell to ${Math.round(rate)} bytes/s over ${Math.round(this.policy.speedWindowMs / 1000)} s, below the floor of ${this.policy.minBytesPerSecond}; it is abandoned and retried on the next check.`,
          ),
        );
        return;
      }
    }
    this.#scheduleSample();
  }

  fail(error: UpgradeError): void {
    if (this.failure) return;
    this.failure = error;
    this.controller.abort(error);
  }

  done(): void {
    for (const t of this.#timers) t.cancel();
    this.policy.signal?.removeEventListener("abort", this.#onAbort);
  }
}
