import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateError } from "../../src/errors.ts";
import {
  acceptRelease,
  ensureUpgradeDir,
  initialUpgradeState,
  loadUpgradeState,
  markReported,
  markSkipped,
  readUpgradeState,
  recordOutcome,
  upgradeDir,
  upgradeStatePath,
  writeUpgradeState,
  type UpgradeState,
} from "../../src/upgrade/state.ts";
import { makeKey, manifestOf } from "../support/signed-release.ts";

let stateDir: string;
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));
function freshStateDir(): string {
  stateDir = mkdtempSync(join(tmpdir(), "upgrade-state-test-"));
  return stateDir;
}

const outcome = (n: number) => ({
  at: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
  from: "1.4.0",
  to: `1.5.${n}`,
  result: "installed" as const,
});

const FULL: UpgradeState = {
  schema: 1,
  highestSequence: 12,
  highestVersion: "1.5.0",
  skipped: ["1.4.9"],
  outcomes: [
    {
      at: "2026-01-01T00:00:00.000Z",
      from: "1.4.0",
      result: "refused",
      code: "SIGNATURE_INVALID",
      message: "bad",
      reported: false,
    },
  ],
  probation: { version: "1.5.0", from: "1.4.0", since: "2026-01-01T00:00:00.000Z", starts: 1 },
};

describe("upgrade state file", () => {
  test("round-trips, 0600 in a 0700 directory", () => {
    const dir = freshStateDir();
    writeUpgradeState(dir, FULL);
    expect(loadUpgradeState(dir)).toEqual({ state: FULL });
    expect(statSync(upgradeStatePath(dir)).mode & 0o777).toBe(0o600);
    expect(statSync(upgradeDir(dir)).mode & 0o777).toBe(0o700);
  });

  test("a missing file is the initial state, without a problem", () => {
    expect(loadUpgradeState(freshStateDir())).toEqual({ state: initialUpgradeState() });
  });

  test("a broken file is the initial state, with the reason", () => {
    const dir = freshStateDir();
    ensureUpgradeDir(dir);
    writeFileSync(upgradeStatePath(dir), "{ not json", { mode: 0o600 });
    const loaded = loadUpgradeState(dir);
    expect(loaded.state).toEqual(initialUpgradeState());
    expect(loaded.problem).toContain("not JSON");
    writeFileSync(upgradeStatePath(dir), JSON.stringify({ ...FULL, extra: 1 }), { mode: 0o600 });
    expect(loadUpgradeState(dir).problem).toContain("schema");
    expect(readUpgradeState(dir)).toEqual(initialUpgradeState());
  });

  test("a symlink in place of the file is not followed", () => {
    const dir = freshStateDir();
    ensureUpgradeDir(dir);
    const elsewhere = join(dir, "elsewhere.json");
    writeFileSync(elsewhere, JSON.stringify(FULL), { mode: 0o600 });
    symlinkSync(elsewhere, upgradeStatePath(dir));
    const loaded = loadUpgradeState(dir);
    expect(loaded.state).toEqual(initialUpgradeState());
    expect(loaded.problem).toContain("symbolic link");
  });

  test("an outcome code unknown to this version still loads (a newer version wrote it)", () => {
    const dir = freshStateDir();
    writeUpgradeState(dir, { ...FULL, outcomes: [{ ...FULL.outcomes[0]!, code: "SOME_FUTURE_CODE" }] });
    expect(loadUpgradeState(dir).problem).toBeUndefined();
  });

  test("with an owner, the file is written and handed to it (here: ourselves)", () => {
    const dir = freshStateDir();
    const owner = { uid: process.getuid!(), gid: process.getgid!() };
    writeUpgradeState(dir, FULL, owner);
    expect(statSync(upgradeStatePath(dir)).uid).toBe(owner.uid);
    expect(readFileSync(upgradeStatePath(dir), "utf8")).toContain('"highestSequence": 12');
  });

  test("with an owner, a symlinked or shared upgrade dir is refused", () => {
    const dir = freshStateDir();
    const owner = { uid: process.getuid!(), gid: process.getgid!() };
    mkdirSync(join(dir, "real"), { mode: 0o700 });
    symlinkSync(join(dir, "real"), upgradeDir(dir));
    expect(() => writeUpgradeState(dir, FULL, owner)).toThrow(StateError);
    rmSync(upgradeDir(dir));
    mkdirSync(upgradeDir(dir), { mode: 0o700 });
    chmodSync(upgradeDir(dir), 0o770);
    expect(() => ensureUpgradeDir(dir, owner)).toThrow(StateError);
  });
});

describe("upgrade state changes", () => {
  test("recordOutcome keeps the newest 20, each unreported", () => {
    let state = initialUpgradeState();
    for (let i = 0; i < 25; i++) state = recordOutcome(state, outcome(i));
    expect(state.outcomes).toHaveLength(20);
    expect(state.outcomes[0]!.to).toBe("1.5.5");
    expect(state.outcomes[19]!.to).toBe("1.5.24");
    expect(state.outcomes.every((o) => o.reported === false)).toBe(true);
  });

  test("markReported marks the oldest unreported ones", () => {
    let state = initialUpgradeState();
    for (let i = 0; i < 4; i++) state = recordOutcome(state, outcome(i));
    state = markReported(state, 1);
    state = markReported(state, 2);
    expect(state.outcomes.map((o) => o.reported)).toEqual([true, true, true, false]);
  });

  test("acceptRelease raises the sequence and version, and clears a skip of that version", () => {
    const key = makeKey();
    let state = markSkipped(initialUpgradeState(), "1.5.0");
    state = acceptRelease(state, manifestOf(key, { version: "1.5.0", sequence: 10 }));
    expect([state.highestSequence, state.highestVersion, state.skipped]).toEqual([10, "1.5.0", []]);
    // An explicit downgrade, published with a newer sequence, lowers the version.
    state = acceptRelease(state, manifestOf(key, { version: "1.4.0", sequence: 11 }));
    expect([state.highestSequence, state.highestVersion]).toEqual([11, "1.4.0"]);
    // An older sequence never lowers what was accepted.
    state = acceptRelease(state, manifestOf(key, { version: "1.3.0", sequence: 5 }));
    expect([state.highestSequence, state.highestVersion]).toEqual([11, "1.4.0"]);
  });

  test("markSkipped adds a version once", () => {
    const state = markSkipped(markSkipped(initialUpgradeState(), "1.5.0"), "1.5.0");
    expect(state.skipped).toEqual(["1.5.0"]);
  });
});
