/**
 * How the daemon stops: the first SIGTERM/SIGINT drains (drain.ts) and then exits 0; a second one
 * exits at once with 128+signal, cutting the drain's wait short. After a hand-over the successor serves
 * and this process drains the same way; a signal then only says so (a second one still stops at once).
 * `stopping` is aborted as soon as a stop begins: nothing new starts after it.
 */
import type { Logger } from "../log.ts";
import type { StopSignal } from "./daemon-deps.ts";

export interface StopDeps {
  readonly log: Logger;
  /** The grace period, for the "stopping" line. */
  readonly graceMs: number;
  /** GO_AWAY, then the wait for open streams (ended early by `cut`); `afterGoAway` runs between. */
  readonly drain: (reason: string, cut: AbortSignal, afterGoAway?: () => void) => Promise<unknown>;
  /** A successor not ready yet is stopped with this process. */
  readonly cancelSuccessor: (why: string) => void;
}

export class StopControl {
  readonly #stopping = new AbortController();
  readonly #cut = new AbortController();
  readonly #exit = Promise.withResolvers<number>();
  #signals = 0;
  #handedOver = false;

  constructor(private readonly deps: StopDeps) {}

  /** Aborted once a stop begins (a signal, or a hand-over). */
  get stopping(): AbortSignal {
    return this.#stopping.signal;
  }

  /** The successor serves now. */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  /** Resolves with the exit code. */
  get exitCode(): Promise<number> {
    return this.#exit.promise;
  }

  signal(signal: StopSignal): void {
    this.#signals += 1;
    if (this.#signals > 1) {
      this.deps.log.warn("second signal: stopping now", { signal });
      this.#cut.abort();
      this.#exit.resolve(128 + (signal === "SIGINT" ? 2 : 15));
      return;
    }
    if (!this.#handedOver) this.#logStopping(signal);
    this.deps.cancelSuccessor(`stopping on ${signal}`);
    if (this.#handedOver) {
      this.deps.log.info("already draining after the hand-over; a second signal stops now", { signal });
      return;
    }
    this.#drainAndExit(signal);
  }

  /** The successor is serving: drain (letting go of the lock after the GO_AWAYs) and exit 0. */
  handOver(afterGoAway: () => void): void {
    this.#handedOver = true;
    this.#logStopping("hand-over");
    this.#drainAndExit("hand-over", afterGoAway);
  }

  /** The first line of a stop (`reason`: the signal, or "hand-over"); "stopped" (daemon.ts) is the last. */
  #logStopping(reason: string): void {
    this.deps.log.info("stopping", {
      ...(reason === "hand-over" ? { reason } : { signal: reason }),
      gracePeriodSeconds: this.deps.graceMs / 1000,
    });
  }

  #drainAndExit(reason: string, afterGoAway?: () => void): void {
    this.#stopping.abort();
    void this.deps.drain(reason, this.#cut.signal, afterGoAway).then(() => this.#exit.resolve(0));
  }
}
