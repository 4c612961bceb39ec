/**
 * `RepeatLimiter` keeps a log readable when the same failure repeats: per key (say, "REFUSED wiki
 * 10.1.2.3:443"), the first occurrence in a window is logged, later ones in that window are only
 * counted, and the next logged line says how many were left out. A thousand users hitting a dead app
 * give one line per window, not a thousand per second; counters and metrics still see every one.
 * Keys are bounded: past `maxKeys`, the oldest key is forgotten (it is logged again when it recurs).
 * Lines are bounded too: at most `maxLinesPerWindow` logged lines per window over all keys, so a peer
 * that makes every occurrence a new key (5,000 distinct host names) still gets a handful of lines; the
 * next line logged after such a cut carries how many were left out (`othersSuppressed`).
 */
import type { Clock } from "./clock.ts";

export interface RepeatVerdict {
  /** Log this occurrence. */
  readonly log: boolean;
  /** Occurrences of this key left out since the last logged one (only set when `log`). */
  readonly suppressed: number;
  /** Occurrences of any key left out by the line budget since the last logged line (only set when `log`). */
  readonly othersSuppressed: number;
}

interface Window {
  startedAt: number;
  suppressed: number;
}

export class RepeatLimiter {
  readonly #windows = new Map<string, Window>();
  #budgetStartedAt = -Infinity;
  #linesInBudget = 0;
  #overBudget = 0;

  constructor(
    private readonly clock: Clock,
    /** One logged line per key per this many milliseconds: 10 s. */
    private readonly windowMs = 10_000,
    private readonly maxKeys = 1_000,
    /** Logged lines per window over all keys. */
    private readonly maxLinesPerWindow = Infinity,
  ) {}

  check(key: string): RepeatVerdict {
    const now = this.clock.now();
    const window = this.#windows.get(key);
    if (window && now - window.startedAt < this.windowMs) {
      window.suppressed++;
      return { log: false, suppressed: 0, othersSuppressed: 0 };
    }
    if (now - this.#budgetStartedAt >= this.windowMs) {
      this.#budgetStartedAt = now;
      this.#linesInBudget = 0;
    }
    if (this.#linesInBudget >= this.maxLinesPerWindow) {
      this.#overBudget++;
      return { log: false, suppressed: 0, othersSuppressed: 0 };
    }
    this.#linesInBudget++;
    const suppressed = window?.suppressed ?? 0;
    const othersSuppressed = this.#overBudget;
    this.#overBudget = 0;
    this.#windows.delete(key); // re-inserted last: the map's order is oldest window first
    this.#windows.set(key, { startedAt: now, suppressed: 0 });
    if (this.#windows.size > this.maxKeys) this.#windows.delete(this.#windows.keys().next().value as string);
    return { log: true, suppressed, othersSuppressed };
  }
}
