/**
 * Waiting for a condition that events change, without polling: the condition is looked at once now
 * and again on each event, and the wait ends when it holds, at a deadline, or when `signal` aborts.
 */
import type { Clock } from "../clock.ts";

/** Subscribes `listener` to some events; returns the function that unsubscribes it. */
export type Subscribe = (listener: () => void) => () => void;

export interface WaitOptions {
  readonly clock: Clock;
  /** Gives up (false) after this long; no deadline when undefined. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Resolves true once `done()` holds, false at the deadline or when `signal` aborts first. */
export function untilTrue(subscribe: Subscribe, done: () => boolean, options: WaitOptions): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  if (options.signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (result: boolean) => {
      unsubscribe();
      timer?.cancel();
      options.signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const onAbort = () => finish(false);
    const unsubscribe = subscribe(() => {
      if (done()) finish(true);
    });
    const timer =
      options.timeoutMs === undefined ? undefined : options.clock.setTimeout(() => finish(false), options.timeoutMs);
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
