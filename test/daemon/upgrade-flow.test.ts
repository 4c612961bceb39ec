import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveSettings } from "../../src/config/settings.ts";
import {
  countProbationStart,
  MAX_PROBATION_STARTS,
  PROBATION_MAX_AGE_MS,
  PROBATION_MS,
  UpgradeFlow,
} from "../../src/daemon/upgrade-flow.ts";
import { createLogger } from "../../src/log.ts";
import { initialUpgradeState, readUpgradeState, writeUpgradeState } from "../../src/upgrade/state.ts";
import { FakeClock, flushQueued } from "../support/fake-clock.ts";
import { until } from "../support/wait.ts";
import { writeResult } from "../../src/upgrade/staging.ts";
import type { HandoverOutcome } from "../../src/daemon/handover.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const log = createLogger({ level: "silent", format: "json" });

function stateDirOnProbation(version: string, starts = 0): string {
  const dir = mkdtempSync(join(tmpdir(), "upgrade-flow-"));
  dirs.push(dir);
  writeUpgradeState(dir, {
    ...initialUpgradeState(),
    highestSequence: 2,
    highestVersion: version,
    probation: { version, from: "1.0.0", since: new Date().toISOString(), starts },
  });
  return dir;
}

test("a version on probation counts its starts in the state dir; the start past the limit is a crash loop", () => {
  const stateDir = stateDirOnProbation("1.1.0");
  for (let i = 1; i <= MAX_PROBATION_STARTS; i++) {
    expect(countProbationStart({ stateDir }, "1.1.0", log)).toBe(false);
    expect(readUpgradeState(stateDir).probation?.starts).toBe(i);
  }
  expect(countProbationStart({ stateDir }, "1.1.0", log)).toBe(true);
});

test("another version (the previous one, restored) does not count", () => {
  const stateDir = stateDirOnProbation("1.1.0", MAX_PROBATION_STARTS);
  expect(countProbationStart({ stateDir }, "1.0.0", log)).toBe(false);
  expect(readUpgradeState(stateDir).probation?.starts).toBe(MAX_PROBATION_STARTS);
});

test("restarts an hour after the install are not a crash loop: probation lapses", () => {
  const stateDir = stateDirOnProbation("1.1.0", MAX_PROBATION_STARTS);
  const later = new Date(Date.now() + PROBATION_MAX_AGE_MS + 60_000);
  expect(countProbationStart({ stateDir }, "1.1.0", log, later)).toBe(false);
  expect(readUpgradeState(stateDir).probation).toBeUndefined();
});

test("no state, or no probation: nothing counted", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "upgrade-flow-"));
  dirs.push(stateDir);
  expect(countProbationStart({ stateDir }, "1.1.0", log)).toBe(false);
});

function flow(
  stateDir: string,
  clock: FakeClock,
  tunnelsUp: () => number,
  handOver: () => Promise<HandoverOutcome> = async () => ({ ok: true, pid: 1 }),
) {
  const { settings } = resolveSettings({
    flags: { "state-dir": stateDir, "auto-upgrade": "off" },
    env: {},
    envFile: join(stateDir, "absent.env"),
    isTTY: false,
  });
  return new UpgradeFlow({
    settings,
    connectorId: "c",
    installed: join(stateDir, "connector"),
    roots: [],
    running: { version: "1.1.0", target: "linux-x64" },
    log,
    clock,
    signal: new AbortController().signal,
    report: async () => {},
    handOver,
    tunnelsUp,
  });
}

test("probation ends once a tunnel has stayed up for the probation time, not before, and not across a break", async () => {
  const stateDir = stateDirOnProbation("1.1.0", 1);
  const clock = new FakeClock();
  let up = 1;
  const f = flow(stateDir, clock, () => up);
  f.start();
  await clock.advance(PROBATION_MS / 2);
  up = 0; // a break: the count starts again
  await clock.advance(60_000);
  up = 1;
  await clock.advance(PROBATION_MS - 60_000);
  expect(readUpgradeState(stateDir).probation?.version).toBe("1.1.0");
  await clock.advance(PROBATION_MS);
  expect(readUpgradeState(stateDir).probation).toBeUndefined();
  f.stop();
});

test("a crash loop with no way to roll back (no previous binary, no unit) keeps the process running and says so", async () => {
  const stateDir = stateDirOnProbation("1.1.0", MAX_PROBATION_STARTS);
  const f = flow(stateDir, new FakeClock(), () => 0);
  // The installed path does not exist: the rollback child cannot start; the guard must not exit the daemon.
  expect(await f.guardStart()).toBe(false);
  expect(readUpgradeState(stateDir).outcomes.at(-1)).toMatchObject({ result: "failed", code: "CRASH_LOOP" });
  // The rollback request was withdrawn: an upgrade unit installed later must not act on it.
  expect(existsSync(join(stateDir, "upgrade", "request.json"))).toBe(false);
});

test("a swap whose new version does not take over is recorded HEALTH_GATE_FAILED and rolled back; a refused hand-over is not", async () => {
  for (const code of ["HEALTH_GATE_FAILED", "HANDOVER_REFUSED"] as const) {
    const stateDir = stateDirOnProbation("1.1.0", 1);
    const clock = new FakeClock();
    let handOvers = 0;
    const f = flow(
      stateDir,
      clock,
      () => 1,
      async () => {
        handOvers += 1;
        return { ok: false, code, reason: "not ready within 20 s" };
      },
    );
    f.start();
    writeResult(stateDir, {
      id: `swap-${code}`,
      action: "apply",
      result: "swapped",
      from: "1.1.0",
      to: "1.2.0",
      at: "2026-01-01T00:00:00.000Z",
    });
    await clock.advance(5_000);
    await until("the hand-over to be tried", () => (handOvers > 0 ? true : undefined), 10_000);
    if (code === "HEALTH_GATE_FAILED") {
      const outcomes = await until(
        "the failure recorded",
        () => (readUpgradeState(stateDir).outcomes.length > 0 ? readUpgradeState(stateDir).outcomes : undefined),
        10_000,
      );
      expect(outcomes[0]).toMatchObject({ from: "1.1.0", to: "1.2.0", result: "failed", code });
    } else {
      await flushQueued(); // the refusal is handled as soon as handOver() resolves
      expect(readUpgradeState(stateDir).outcomes).toHaveLength(0);
    }
    f.stop();
  }
});

test("during an outage (no tunnel up here either) a swap waits for a tunnel before the hand-over; a good release is not rolled back", async () => {
  const stateDir = stateDirOnProbation("1.1.0", 1);
  const clock = new FakeClock();
  let up = 0;
  let handOvers = 0;
  const f = flow(
    stateDir,
    clock,
    () => up,
    async () => {
      handOvers += 1;
      return { ok: true, pid: 2 };
    },
  );
  f.start();
  writeResult(stateDir, {
    id: "swap-outage",
    action: "apply",
    result: "swapped",
    from: "1.1.0",
    to: "1.2.0",
    at: "2026-01-01T00:00:00.000Z",
  });
  await clock.advance(5 * 60_000);
  expect(handOvers).toBe(0);
  expect(readUpgradeState(stateDir).outcomes).toHaveLength(0);
  up = 2;
  await clock.advance(60_000);
  await until("the hand-over once a tunnel is up", () => (handOvers > 0 ? true : undefined), 10_000);
  f.stop();
});
