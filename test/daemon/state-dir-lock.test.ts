import { afterEach, beforeEach, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockStateDir } from "../../src/daemon/state-dir-lock.ts";
import { createLogger } from "../../src/log.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "state-dir-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("a state dir other users can write into is waited on slowly (operator needed), never chmodded, and used once fixed", async () => {
  const stateDir = join(dir, "state");
  mkdirSync(stateDir);
  chmodSync(stateDir, 0o1777);
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = createLogger({ level: "debug", format: "json", write: (line) => lines.push(line) });
  const abort = new AbortController();
  const errors = () => lines.map((l) => JSON.parse(l)).filter((l) => l.level === "error");
  const locking = lockStateDir({ stateDir, log, clock, signal: abort.signal });
  await settle(() => errors().length === 1 && clock.pendingTimers === 1);
  const [error] = errors();
  expect(error.code).toBe("STATE_DIR_UNSAFE");
  expect(error.msg).toContain("writable by other users");
  expect(error.error).toContain("chmod go-w");
  expect(error.retryInSeconds).toBe(300);
  expect(statSync(stateDir).mode & 0o7777).toBe(0o1777);
  expect(readdirSync(stateDir)).toEqual([]); // not even daemon.lock

  await clock.advance(299_000);
  expect(errors().length).toBe(1);
  await clock.advance(1_000);
  await settle(() => errors().length === 2 && clock.pendingTimers === 1);
  expect(errors().length).toBe(2);

  chmodSync(stateDir, 0o700);
  await clock.advance(300_000);
  const lock = await locking;
  expect(lock).toBeDefined();
  expect(existsSync(join(stateDir, "daemon.lock"))).toBe(true);
  lock?.release();
  abort.abort();
});
