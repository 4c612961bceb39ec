/**
 * One daemon per state dir: `connector run` holds `flock(LOCK_EX)` on `<state-dir>/daemon.lock`
 * (0600) from start to exit. The kernel drops the lock when the process dies, however it dies, so a
 * stale lock file means nothing; only a held lock does. Checking the admin socket instead was
 * check-then-act: of 10 simultaneous starts, 2 could both run.
 *
 * `connector status` asks whether the lock is held with a momentary `LOCK_SH|LOCK_NB`; a daemon
 * starting at that instant sees EWOULDBLOCK, so it retries for a short while before concluding
 * that another daemon runs (a real one holds the lock for good).
 */
import { closeSync, constants, openSync } from "node:fs";
import { join } from "node:path";
import { ConnectorError, errnoCode, ExitCode, StateError } from "../errors.ts";
import { EWOULDBLOCK, flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from "../host/libc.ts";
import { PRIVATE_FILE_MODE } from "./atomic-file.ts";

export const DAEMON_LOCK_FILE = "daemon.lock";
/** How long a starting daemon keeps trying a lock held by someone else (a `status` check holds it for microseconds). */
const CONTENDED_RETRY_MS = 1_000;
const CONTENDED_STEP_MS = 20;

export class AlreadyRunningError extends ConnectorError {
  override readonly name = "AlreadyRunningError";
  constructor(path: string) {
    super(
      "ALREADY_RUNNING",
      `Another connector daemon is running on this state dir (it holds ${path}). Stop it first, or give this one its own --state-dir.`,
      ExitCode.alreadyRunning,
    );
  }
}

export interface DaemonLock {
  readonly path: string;
  release(): void;
}

function lockPath(stateDir: string): string {
  return join(stateDir, DAEMON_LOCK_FILE);
}

/** Opens the lock file without following a symlink (one planted in a shared dir must not redirect the create). */
function openLockFile(path: string, create: boolean): number {
  const flags = (create ? constants.O_RDWR | constants.O_CREAT : constants.O_RDONLY) | constants.O_NOFOLLOW;
  return openSync(path, flags, PRIVATE_FILE_MODE);
}

/**
 * Takes the lock for this process's lifetime. Throws `AlreadyRunningError` (exit 23) when another
 * process holds it, a `StateError` (STATE_DIR_UNWRITABLE) when the file cannot be created.
 */
export async function takeDaemonLock(
  stateDir: string,
  sleep: (ms: number) => Promise<void> = Bun.sleep,
): Promise<DaemonLock> {
  const path = lockPath(stateDir);
  let fd: number;
  try {
    fd = openLockFile(path, true);
  } catch (err) {
    throw new StateError(
      "STATE_DIR_UNWRITABLE",
      `Cannot create the daemon lock ${path} (${errnoCode(err) ?? "error"}). Run as root or the connector's user, or choose another --state-dir.`,
      { cause: err },
    );
  }
  for (let waited = 0; ; waited += CONTENDED_STEP_MS) {
    const errno = flock(fd, LOCK_EX | LOCK_NB);
    if (errno === 0) break;
    if (errno !== EWOULDBLOCK || waited >= CONTENDED_RETRY_MS) {
      closeSync(fd);
      if (errno === EWOULDBLOCK) throw new AlreadyRunningError(path);
      throw new StateError("DAEMON_LOCK_FAILED", `Cannot lock ${path} (errno ${errno}).`);
    }
    await sleep(CONTENDED_STEP_MS);
  }
  return heldLock(path, fd);
}

/** How often a hand-over successor tries the lock its predecessor still holds. */
export const SUCCESSOR_POLL_MS = 150;

/**
 * For a hand-over's new process: waits, without a deadline, for the lock the previous process holds
 * (it lets go when it starts to drain), polling `LOCK_NB` every `intervalMs`. Resolves undefined when
 * `signal` aborts first; throws a `StateError` when the file cannot be opened or locked.
 */
export async function waitForDaemonLock(
  stateDir: string,
  options: { signal: AbortSignal; sleep: (ms: number) => Promise<void>; intervalMs?: number },
): Promise<DaemonLock | undefined> {
  const path = lockPath(stateDir);
  let fd: number;
  try {
    fd = openLockFile(path, true);
  } catch (err) {
    throw new StateError(
      "STATE_DIR_UNWRITABLE",
      `Cannot open the daemon lock ${path} (${errnoCode(err) ?? "error"}).`,
      { cause: err },
    );
  }
  for (;;) {
    if (options.signal.aborted) {
      closeSync(fd);
      return undefined;
    }
    const errno = flock(fd, LOCK_EX | LOCK_NB);
    if (errno === 0) return heldLock(path, fd);
    if (errno !== EWOULDBLOCK) {
      closeSync(fd);
      throw new StateError("DAEMON_LOCK_FAILED", `Cannot lock ${path} (errno ${errno}).`);
    }
    await options.sleep(options.intervalMs ?? SUCCESSOR_POLL_MS);
  }
}

function heldLock(path: string, fd: number): DaemonLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      flock(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}

/** Whether a daemon holds the lock on `stateDir` now; undefined when that cannot be told (no access). */
export function daemonLockHeld(stateDir: string): boolean | undefined {
  let fd: number;
  try {
    fd = openLockFile(lockPath(stateDir), false);
  } catch (err) {
    return errnoCode(err) === "ENOENT" ? false : undefined;
  }
  try {
    const errno = flock(fd, LOCK_SH | LOCK_NB);
    if (errno === EWOULDBLOCK) return true;
    if (errno !== 0) return undefined;
    flock(fd, LOCK_UN);
    return false;
  } finally {
    closeSync(fd);
  }
}
