/**
 * `settleWithin` bounds a wait: it reports how a promise settled, or that the time ran out or the
 * signal aborted first, whichever comes first. It never rejects, so every wait in the dialer reads as
 * one `switch`, and the timer and abort listener are always released.
 */
import type { Clock } from "../clock.ts";

export type Settled<T> =
  | { readonly kind: "value"; readonly value: T }
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "timeout" }
  | { readonly kind: "aborted" };

export function settleWithin<T>(work: Promise<T>, ms: number, clock: Clock, signal?: AbortSignal): Promise<Settled<T>> {
  return new Promise((resolve) => {
    let done = false;
    const timer = clock.setTimeout(() => finish({ kind: "timeout" }), Math.max(0, ms));
    const onAbort = () => finish({ kind: "aborted" });
    function finish(outcome: Settled<T>): void {
      if (done) return;
      done = true;
      timer.cancel();
      signal?.removeEventListener("abort", onAbort);
      resolve(outcome);
    }
    if (signal?.aborted) return finish({ kind: "aborted" });
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => finish({ kind: "value", value }),
      (error: unknown) => finish({ kind: "error", error }),
    );
  });
}
