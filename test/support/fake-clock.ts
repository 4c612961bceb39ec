/** A `Clock` whose time moves only when a test calls `advance`. Timers fire in due order. */
import type { Clock, TimerHandle } from "../../src/clock.ts";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #pending: Pending[] = [];

  now(): number {
    return this.#now;
  }
  wallNow(): Date {
    return new Date(Date.UTC(2026, 0, 1) + this.#now);
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    // Real timers overflow above 2^31 − 1 ms and fire at once; code under test must never ask for that.
    if (ms > MAX_TIMER_MS)
      throw new RangeError(`setTimeout(${ms}) exceeds what a real timer can wait (${MAX_TIMER_MS} ms)`);
    const entry: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#pending.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }
  /** Number of timers still waiting. */
  get pendingTimers(): number {
    return this.#pending.filter((p) => !p.cancelled).length;
  }
  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await flushQueued();
      const due = this.#pending
        .filter((p) => !p.cancelled && p.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#pending = this.#pending.filter((p) => p !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = target;
    await flushQueued();
  }
}

/**
 * Runs what is queued to run without time passing: microtasks, and `setImmediate` callbacks (a session
 * sends what it queued once per event-loop turn, src/mux/outbound.ts), ten rounds of each, so a frame
 * sent and the answer it causes are both through before the next timer.
 */
export async function flushQueued(): Promise<void> {
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 10; i++) await Promise.resolve();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Lets promise chains run, with no time passing and no real I/O, until `condition` holds; throws naming
 * `what` when it still does not after 200 rounds of `flushQueued`.
 */
export async function untilQueued(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await flushQueued();
  if (!condition()) throw new Error(`never happened: ${what}`);
}

/**
 * Lets real I/O settle between fake-clock steps: until `until()` holds, at most 20 s of real time (a safety
 * net for a loaded machine; the caller's assertions say what did not happen).
 */
export async function settle(until: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!until() && Date.now() < deadline) {
    await Bun.sleep(5);
    await flushQueued();
  }
}
