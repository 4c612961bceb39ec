/**
 * `Clock` is how long-running code reads time and schedules work, so tests can drive time by hand
 * (`test/support/fake-clock.ts`) instead of sleeping.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic within the process. */
  now(): number;
  /** Wall-clock time for timestamps shown to people. */
  wallNow(): Date;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => new Date(),
  setTimeout(fn, ms) {
    const id = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(id) };
  },
};

/**
 * Waits `ms` on `clock`, or less when `signal` aborts; never rejects. The abort listener is removed
 * when the time is up, so a daemon-lifetime signal does not collect one listener per wait.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
