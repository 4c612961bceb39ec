/**
 * `RepeatLimiter` keeps a log readable when the same failure repeats: per key (say, "REFUSED wiki
 * 10.1.2.3:443"), the first occurrence in a window is logged, later ones in that window are only
 * counted, and the next logged line says how many were left out. A thousand users hitting a dead app
 * give one line per window, not a thousand per second; counters and metrics still see every one.
 * Keys are bounded: past `maxKeys`, the oldest key is forgotten (it is logged again when it recurs).
 */
import type { Clock } from "./clock.ts";

export interface RepeatVerdict {
  /** Log this occurrence. */
  readonly log: boolean;
  /** Occurrences of this key left out since the last logged one (only set when `log`). */
  readonly suppressed: number;
}

interface Window {
  startedAt: number;
  suppressed: number;
}

export class RepeatLimiter {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly clock: Clock,
    /** One logged line per key per this many milliseconds: 10 s. */
    private readonly windowMs = 10_000,
    private readonly maxKeys = 1_000,
  ) {}

  check(key: string): RepeatVerdict {
    const now = this.clock.now();
    const window = this.#windows.get(key);
    if (window && now - window.startedAt < this.windowMs) {
      window.suppressed++;
      return { log: false, suppressed: 0 };
    }
    const suppressed = window?.suppressed ?? 0;
    this.#windows.delete(key); // re-inserted last: the map's order is oldest window first
    this.#windows.set(key, { startedAt: now, suppressed: 0 });
    if (this.#windows.size > this.maxKeys) this.#windows.delete(this.#windows.keys().next().value as string);
    return { log: true, suppressed };
  }
}
