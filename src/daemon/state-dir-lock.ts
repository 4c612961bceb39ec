/**
 * The daemon's first step: the state dir exists and this process holds its lock (src/state/daemon-lock.ts),
 * before anything else, enrollment included, so two daemons never enroll or run on one state dir. A
 * state dir that cannot be created or written, or that other users could write into (STATE_DIR_UNSAFE),
 * is waited for slowly, like in enrollment: it needs an operator, and a fast loop would only fill the log.
 */
import { sleep, type Clock } from "../clock.ts";
import { ConnectorError, errnoCode, StateError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { ensureStateDir } from "../state/atomic-file.ts";
import { AlreadyRunningError, takeDaemonLock, type DaemonLock } from "../state/daemon-lock.ts";
import { STATE_DIR_RETRY_MS } from "./identity-source.ts";

export interface StateDirLockOptions {
  stateDir: string;
  log: Logger;
  clock: Clock;
  signal: AbortSignal;
}

/** Resolves with the held lock, or undefined when `signal` aborted first; throws `AlreadyRunningError`. */
export async function lockStateDir(options: StateDirLockOptions): Promise<DaemonLock | undefined> {
  const { stateDir, log } = options;
  for (;;) {
    if (options.signal.aborted) return undefined;
    try {
      try {
        ensureStateDir(stateDir);
      } catch (err) {
        if (err instanceof ConnectorError) throw err;
        throw new StateError(
          "STATE_DIR_UNWRITABLE",
          `Cannot create the state dir ${stateDir} (${errnoCode(err) ?? "error"}).`,
          { cause: err },
        );
      }
      return await takeDaemonLock(stateDir, (ms) => sleep(options.clock, ms));
    } catch (err) {
      if (err instanceof AlreadyRunningError || !(err instanceof StateError)) throw err;
      const what =
        err.code === "STATE_DIR_UNSAFE"
          ? "the state dir is writable by other users, so it is not used"
          : "the state dir cannot be written";
      log.error(`${what}; the daemon waits until it is fixed`, {
        code: err.code,
        error: err.message,
        retryInSeconds: STATE_DIR_RETRY_MS / 1000,
      });
    }
    await sleep(options.clock, STATE_DIR_RETRY_MS, options.signal);
  }
}
