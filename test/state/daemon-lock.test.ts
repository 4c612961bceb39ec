import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, symlinkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError, ExitCode } from "../../src/errors.ts";
import { daemonLockHeld, takeDaemonLock } from "../../src/state/daemon-lock.ts";

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
});
