/**
 * The new side of a hand-over (src/daemon/handover.ts is the old side): a `run` started with
 * `CONNECTOR_HANDOVER=<tunnels the old process has up>` and fd 3 open is a successor. It starts
 * while the old process still holds the daemon lock and answers on the admin socket; once it has as
 * many tunnels up (at least one, at most its own --tunnels) it takes the admin socket over, writes
 * `ready\n` on fd 3 and closes it, tells systemd it is the main process now, and waits for the lock,
 * which the old process lets go of when it starts to drain.
 */
import { closeSync, fstatSync, writeSync } from "node:fs";
import { sleep, type Clock } from "../clock.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { waitForDaemonLock, type DaemonLock } from "../state/daemon-lock.ts";
import { type Subscribe, untilTrue } from "./event-wait.ts";

export const HANDOVER_ENV_VAR = "CONNECTOR_HANDOVER";
export const READY_LINE = "ready\n";
/** The readiness pipe's fd in the successor (the first after stdin, stdout, stderr). */
export const READINESS_FD = 3;

export interface SuccessorRole {
  /** Tunnels the old process had up: the successor is ready with min(this, --tunnels), at least 1. */
  readonly previousTunnels: number;
  /** The fd to write `ready` on. */
  readonly readinessFd: number;
}

/**
 * Reads (and removes, from `env` and the process environment, so it never reaches a later successor
 * or a child) the hand-over request. `role` is set only when the variable is valid and fd 3 is a
 * pipe or socket; `problem` says why a set variable was not acted on.
 */
export function takeHandoverRequest(
  env: Record<string, string | undefined>,
  options: { processEnv?: Record<string, string | undefined>; readinessFd?: number } = {},
): { role?: SuccessorRole; problem?: string } {
  const value = env[HANDOVER_ENV_VAR];
  delete env[HANDOVER_ENV_VAR];
  delete (options.processEnv ?? process.env)[HANDOVER_ENV_VAR];
  if (value === undefined) return {};
  if (!/^\d{1,2}$/.test(value))
    return { problem: `${HANDOVER_ENV_VAR} is not a tunnel count; starting as a normal daemon` };
  const fd = options.readinessFd ?? READINESS_FD;
  try {
    const stats = fstatSync(fd);
    if (!stats.isFIFO() && !stats.isSocket())
      return { problem: `${HANDOVER_ENV_VAR} is set but fd ${fd} is not a pipe; starting as a normal daemon` };
  } catch {
    return { problem: `${HANDOVER_ENV_VAR} is set but fd ${fd} is not open; starting as a normal daemon` };
  }
  return { role: { previousTunnels: Number(value), readinessFd: fd } };
}

/** Tunnels the successor needs up before it says ready. */
export function tunnelsWanted(role: SuccessorRole, ownTunnels: number): number {
  return Math.max(1, Math.min(role.previousTunnels, ownTunnels));
}

/**
 * Resolves true once `upCount()` reaches `want` — looked at on each of the supervisor's `events` —
 * false when `signal` aborts first.
 */
export function waitForTunnels(
  upCount: () => number,
  want: number,
  events: Subscribe,
  clock: Clock,
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return untilTrue(events, () => upCount() >= want, { clock, signal });
}

/** Writes `ready` on the readiness fd and closes it; returns why that failed (the old process is gone?). */
export function signalReady(fd: number): string | undefined {
  try {
    writeSync(fd, READY_LINE);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}

/** What taking over needs from the daemon it runs in. */
export interface TakeOverHost {
  readonly stateDir: string;
  readonly ownTunnels: number;
  readonly log: Logger;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  upCount(): number;
  /** The supervisor's events: a tunnel coming up is one. */
  readonly tunnelEvents: Subscribe;
  /** Binds the admin socket over the previous process's (throws when it cannot). */
  takeAdminSocket(): Promise<void>;
  /** sd_notify READY=1 with MAINPID=<this pid>. */
  announceReady(): void;
  /** This process holds the daemon lock now: start what writes state (renewal) and the metrics port. */
  locked(lock: DaemonLock): void;
}

/**
 * Once tunnels are up: take the admin socket over, tell the previous process (fd 3) and systemd, then
 * wait for the lock, free once the previous process drains; nothing the lock holder writes (the
 * renewed identity) is written before. Resolves when the lock is held, or the process stops first.
 */
export async function takeOver(role: SuccessorRole, host: TakeOverHost): Promise<void> {
  const { log, signal } = host;
  const want = tunnelsWanted(role, host.ownTunnels);
  if (!(await waitForTunnels(() => host.upCount(), want, host.tunnelEvents, host.clock, signal))) return;
  await host
    .takeAdminSocket()
    .catch((err: unknown) =>
      log.error("hand-over: the admin socket could not be taken over", { error: describeError(err) }),
    );
  const problem = signalReady(role.readinessFd);
  if (problem) log.warn("hand-over: could not tell the previous process (gone?)", { error: problem });
  host.announceReady();
  log.info("hand-over: tunnels up, told the previous process to drain", { tunnelsUp: host.upCount() });
  const lock = await waitForDaemonLock(host.stateDir, { signal, sleep: (ms) => sleep(host.clock, ms, signal) }).catch(
    (err: unknown) => {
      log.error("hand-over: the daemon lock cannot be taken", { error: describeError(err) });
      return undefined;
    },
  );
  if (!lock) return;
  log.info("hand-over complete: this process holds the daemon lock");
  host.locked(lock);
}
