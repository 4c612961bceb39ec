import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, symlinkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError, ExitCode } from "../../src/errors.ts";
import { daemonLockHeld, takeDaemonLock, waitForDaemonLock } from "../../src/state/daemon-lock.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "daemon-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(promise: Promise<unknown>): Promise<ConnectorError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConnectorError) return err;
    throw err;
  }
  throw new Error("expected a ConnectorError");
}

describe("daemon lock", () => {
  test("one holder at a time: a second taker gets ALREADY_RUNNING (exit 23) until the first releases", async () => {
    const first = await takeDaemonLock(dir);
    expect(statSync(join(dir, "daemon.lock")).mode & 0o777).toBe(0o600);
    expect(daemonLockHeld(dir)).toBe(true);
    const err = await rejection(takeDaemonLock(dir, async () => {}));
    expect(err.code).toBe("ALREADY_RUNNING");
    expect(err.exitCode).toBe(ExitCode.alreadyRunning);
    first.release();
    expect(daemonLockHeld(dir)).toBe(false);
    const second = await takeDaemonLock(dir);
    second.release();
  });

  test("a lock file left behind by a dead daemon means nothing; no lock file means not held", async () => {
    expect(daemonLockHeld(dir)).toBe(false);
    (await takeDaemonLock(dir)).release();
    expect(existsSync(join(dir, "daemon.lock"))).toBe(true);
    expect(daemonLockHeld(dir)).toBe(false);
  });

  test("a symlink planted as the lock file is not followed", async () => {
    symlinkSync(join(dir, "elsewhere"), join(dir, "daemon.lock"));
    const err = await rejection(takeDaemonLock(dir));
    expect(err.code).toBe("STATE_DIR_UNWRITABLE");
    expect(existsSync(join(dir, "elsewhere"))).toBe(false);
  });

  test("a hand-over successor waits for the held lock, however long, and takes it once the holder lets go", async () => {
    const holder = await takeDaemonLock(dir);
    let polls = 0;
    let released = false;
    const waiting = waitForDaemonLock(dir, {
      signal: new AbortController().signal,
      // The holder lets go after a number of polls far beyond takeDaemonLock's contention window.
      sleep: async () => {
        polls += 1;
        if (polls === 100) {
          released = true;
          holder.release();
        }
      },
    });
    const lock = await waiting;
    expect(released).toBe(true);
    expect(lock?.path).toBe(join(dir, "daemon.lock"));
    expect(daemonLockHeld(dir)).toBe(true);
    lock!.release();
    expect(daemonLockHeld(dir)).toBe(false);
  });

  test("waiting for the lock ends with undefined when aborted (the successor is told to stop)", async () => {
    const holder = await takeDaemonLock(dir);
    const abort = new AbortController();
    let polls = 0;
    const lock = await waitForDaemonLock(dir, {
      signal: abort.signal,
      sleep: async () => {
        if (++polls === 5) abort.abort();
      },
    });
    expect(lock).toBeUndefined();
    expect(polls).toBe(5);
    // Still the holder's: the waiter closed its fd without taking it.
    expect(daemonLockHeld(dir)).toBe(true);
    holder.release();
  });
});
