/**
 * `OpenStreams` is the process-wide list of streams the dataplane relays (every tunnel's), kept so that
 * access can be taken back from streams already open:
 * - when a new catalog is applied, each stream is checked again against the new allow-list with the
 *   (app, host, port) its OPEN asked for; one the catalog no longer allows (destination removed, app
 *   deleted) is reset NOT_ALLOWED at once. Access is decided per stream, not only at OPEN time.
 * - a stream that moved no byte either way for the idle timeout is reset: a user that vanished without
 *   a FIN (a laptop closed, a gateway that lost its user side) must not hold an app connection forever.
 * - a stream the sweep finds open gets TCP keepalive on its app socket (`keepAlive`), so only streams
 *   that live pay its four setsockopt calls; most streams (a request, an answer) end before a sweep.
 *
 * No timer per stream: one sweep over all streams on the injected clock, every `sweepPeriodFor(idle
 * timeout)`. A stream is idle when its byte count did not move between sweeps for `idleTimeoutMs`, so it
 * is cut between `idleTimeoutMs` and `idleTimeoutMs + period` after its last byte. Keepalive starts at
 * most one period (≤ KEEPALIVE_SWEEP_MS) after a stream opened, so its first probe comes at most that
 * much later than if it had been set at dial.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import { StreamCode } from "../mux/const.ts";
import type { OpenRequest, Stream } from "../mux/stream.ts";
import type { AllowList } from "./allow-list.ts";

/** What a tracked stream exposes: its request, a way to end it, and a count that moves with every byte. */
export interface TrackedStream {
  readonly request: OpenRequest;
  readonly stream: Pick<Stream, "reset">;
  /** Bytes moved either way so far (the relay counts them). */
  bytesMoved(): number;
  /** Switches TCP keepalive on for the stream's app socket; called once, by the first sweep that finds it. */
  keepAlive(): void;
}

interface Entry {
  readonly tracked: TrackedStream;
  seenBytes: number;
  activeAt: number;
  keptAlive: boolean;
}

/** Why streams were ended by the dataplane rather than by either end. */
export interface EndedCounts {
  /** The catalog no longer allows the stream's destination. */
  notAllowed: number;
  /** No byte for the idle timeout. */
  idle: number;
}

/** Apps named in one log line about streams ended by a catalog change (the count covers them all). */
const MAX_APPS_LOGGED = 10;

/**
 * Most time between sweeps: 10 s, so keepalive is on within 10 s of a stream's start (its first probe
 * at most 10 s later than the 30 s idle time says); a sweep costs O(open streams), 1,000 entries a second
 * with 10,000 streams open.
 */
export const KEEPALIVE_SWEEP_MS = 10_000;
/** Least time between sweeps: 1 s, so a short test timeout does not spin. */
const MIN_SWEEP_MS = 1_000;

/** The sweep period: a tenth of the idle timeout (so it is kept within 10%), within 1–10 s; 10 s without one. */
export function sweepPeriodFor(idleTimeoutMs: number): number {
  if (idleTimeoutMs <= 0) return KEEPALIVE_SWEEP_MS;
  return Math.min(KEEPALIVE_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(idleTimeoutMs / 10)));
}

export class OpenStreams {
  readonly #entries = new Set<Entry>();
  readonly ended: EndedCounts = { notAllowed: 0, idle: 0 };
  #timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    /** 0 disables the idle timeout. */
    private readonly idleTimeoutMs: number,
    private readonly onEnded?: (why: keyof EndedCounts, count: number, apps: readonly string[]) => void,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** Tracks a stream from the moment it is relayed; the returned function forgets it (idempotent). */
  add(tracked: TrackedStream): () => void {
    const entry: Entry = { tracked, seenBytes: tracked.bytesMoved(), activeAt: this.clock.now(), keptAlive: false };
    this.#entries.add(entry);
    this.#arm();
    return () => {
      this.#entries.delete(entry);
    };
  }

  /** Resets every stream the new allow-list does not allow; returns how many. */
  recheck(allowList: AllowList): number {
    const apps = new Set<string>();
    let count = 0;
    for (const entry of [...this.#entries]) {
      const { app, host, port } = entry.tracked.request;
      const decision = allowList.allows(app, host, port);
      if (decision.allowed) continue;
      this.#entries.delete(entry);
      count++;
      if (apps.size < MAX_APPS_LOGGED) apps.add(app);
      entry.tracked.stream.reset(
        StreamCode.NOT_ALLOWED,
        `access removed by catalog ${allowList.version}: ${decision.reason}`,
      );
    }
    if (count > 0) {
      this.ended.notAllowed += count;
      this.onEnded?.("notAllowed", count, [...apps]);
    }
    return count;
  }

  /** One pass: keepalive for streams seen open the first time, then the idle check; returns how many were cut. */
  sweep(): number {
    const now = this.clock.now();
    const apps = new Set<string>();
    let count = 0;
    for (const entry of [...this.#entries]) {
      if (!entry.keptAlive) {
        entry.keptAlive = true;
        entry.tracked.keepAlive();
      }
      if (this.idleTimeoutMs <= 0) continue;
      const moved = entry.tracked.bytesMoved();
      if (moved !== entry.seenBytes) {
        entry.seenBytes = moved;
        entry.activeAt = now;
        continue;
      }
      if (now - entry.activeAt < this.idleTimeoutMs) continue;
      this.#entries.delete(entry);
      count++;
      if (apps.size < MAX_APPS_LOGGED) apps.add(entry.tracked.request.app);
      entry.tracked.stream.reset(
        StreamCode.CANCELLED,
        `no data either way for ${Math.round(this.idleTimeoutMs / 1000)} s (stream idle timeout)`,
      );
    }
    if (count > 0) {
      this.ended.idle += count;
      this.onEnded?.("idle", count, [...apps]);
    }
    return count;
  }

  /** Stops the sweep timer (daemon stop). */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** The sweep runs only while streams are open, so an idle daemon holds no timer for it. */
  #arm(): void {
    if (this.#timer) return;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.sweep();
      if (this.#entries.size > 0) this.#arm();
    }, sweepPeriodFor(this.idleTimeoutMs));
  }
}
