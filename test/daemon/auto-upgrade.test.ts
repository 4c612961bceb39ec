import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveSettings } from "../../src/config/settings.ts";
import { AutoUpgrade } from "../../src/daemon/auto-upgrade.ts";
import { createLogger } from "../../src/log.ts";
import { binaryFile, type Manifest } from "../../src/upgrade/format.ts";
import { readUpgradeState, type Outcome } from "../../src/upgrade/state.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { encode, makeKey, makeRelease, rootSpkis, serveRelease, type TestRelease } from "../support/signed-release.ts";
import { createHash } from "node:crypto";

const roots = [makeKey(), makeKey()];
const releaseKey = makeKey();
let published: TestRelease;
let binary: Uint8Array = new Uint8Array();
let server: ReturnType<typeof Bun.serve>;
const dirs: string[] = [];

/** A "binary" that passes the self-check: a script printing the version line of `version`. */
function scriptBinary(version: string): Uint8Array {
  return encode(`#!/bin/sh\necho "connector ${version} (commit test, built 2026-01-01T00:00:00Z, target linux-x64)"\n`);
}

function publish(manifest: Partial<Manifest>, options: { roots?: typeof roots } = {}): void {
  binary = scriptBinary(manifest.version ?? "1.5.0");
  const target = {
    url: binaryFile("linux-x64"),
    size: binary.byteLength,
    sha256: createHash("sha256").update(binary).digest("hex"),
  };
  published = makeRelease({
    roots: options.roots ?? roots,
    releaseKey,
    manifest: { targets: { "linux-x64": target }, ...manifest },
  });
}

beforeAll(() => {
  server = serveRelease(() => ({ files: published.files, binary }));
});
afterAll(() => server.stop(true));
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(flags: Record<string, string> = {}, report: (o: Outcome) => Promise<void> = async () => {}) {
  const dir = mkdtempSync(join(tmpdir(), "auto-upgrade-"));
  dirs.push(dir);
  const stateDir = join(dir, "state");
  const installed = join(dir, "bin", "connector");
  const { mkdirSync } = require("node:fs") as typeof import("node:fs");
  mkdirSync(stateDir, { mode: 0o700 });
  mkdirSync(join(dir, "bin"));
  writeFileSync(installed, scriptBinary("1.4.0"));
  chmodSync(installed, 0o755);
  const { settings } = resolveSettings({
    flags: { "state-dir": stateDir, "manifest-url": `http://127.0.0.1:${server.port}/stable/manifest.json`, ...flags },
    env: {},
    envFile: join(dir, "absent.env"),
    isTTY: false,
  });
  const clock = new FakeClock();
  const reports: Outcome[] = [];
  const auto = new AutoUpgrade({
    settings,
    connectorId: "c-test",
    installed,
    roots: rootSpkis({ roots } as TestRelease),
    running: { version: "1.4.0", target: "linux-x64" },
    log: createLogger({ level: "silent", format: "json" }),
    clock,
    signal: new AbortController().signal,
    report: async (o) => {
      await report(o);
      reports.push(o);
    },
    random: () => 0.5,
  });
  return { auto, clock, stateDir, installed, reports };
}

test("auto-upgrade off: no check is ever scheduled, and status says so", () => {
  const { auto, clock } = setup({ "auto-upgrade": "off" });
  auto.start();
  expect(clock.pendingTimers).toBe(0);
  expect(auto.view().auto).toBe(false);
});

test("the first check comes within 15 minutes of start (jittered), later ones every interval", () => {
  const { auto, clock } = setup();
  auto.start();
  expect(clock.pendingTimers).toBe(1);
  // random 0.5 → exactly the middle of ±20 %: 15 min for the first check of a 6 h interval.
  expect(auto.view().nextCheckAt).toBe(new Date(clock.wallNow().getTime() + 15 * 60_000).toISOString());
  auto.stop();
});

test("outside the maintenance window the check waits for the window", async () => {
  const { auto, clock } = setup({ "upgrade-window": "02:00-03:00" });
  await auto.checkNow(); // the fake clock starts at 00:00 UTC
  // Two hours to the window, plus half (random 0.5) of the 10-minute spread.
  expect(auto.view().nextCheckAt).toBe(new Date(clock.wallNow().getTime() + 2 * 3_600_000 + 5 * 60_000).toISOString());
  expect(auto.view().lastCheck).toBeUndefined();
});

test("a refused release is recorded with its code, reported, and the binary is untouched", async () => {
  publish({ version: "1.5.0", sequence: 10 }, { roots: [makeKey(), makeKey()] });
  const { auto, stateDir, installed, reports } = setup();
  const before = readFileSync(installed);
  await auto.checkNow();
  expect(readFileSync(installed).equals(before)).toBe(true);
  const outcome = readUpgradeState(stateDir).outcomes.at(-1)!;
  expect(outcome).toMatchObject({ from: "1.4.0", result: "refused", code: "KEYSET_NOT_VOUCHED", reported: true });
  expect(reports.map((r) => r.code)).toEqual(["KEYSET_NOT_VOUCHED"]);
  expect(auto.view().lastCheck?.result).toBe("refused");
});

test("an outcome the control plane did not take is sent again after the next check", async () => {
  publish({ version: "1.5.0", sequence: 10 }, { roots: [makeKey(), makeKey()] });
  let down = true;
  const { auto, stateDir, reports } = setup({}, async () => {
    if (down) throw new Error("control plane unreachable");
  });
  await auto.checkNow();
  expect(readUpgradeState(stateDir).outcomes.at(-1)?.reported).toBe(false);
  down = false;
  await auto.checkNow();
  expect(reports).toHaveLength(2);
  expect(readUpgradeState(stateDir).outcomes.every((o) => o.reported)).toBe(true);
});

test("a newer release, when this user may replace the binary: staged and applied by a child process; one that does not answer is SWAP_FAILED", async () => {
  publish({ version: "1.5.0", sequence: 10 });
  // The installed "binary" is a script: it runs, but cannot apply anything (the e2e tests use real builds).
  const { auto, stateDir, installed, reports } = setup();
  const before = readFileSync(installed);
  await auto.checkNow();
  expect(readFileSync(installed).equals(before)).toBe(true);
  expect(readFileSync(join(stateDir, "upgrade", "staged", "connector")).equals(Buffer.from(binary))).toBe(true);
  expect(existsSync(join(stateDir, "upgrade", "request.json"))).toBe(false);
  expect(reports.at(-1)).toMatchObject({ from: "1.4.0", result: "failed", code: "SWAP_FAILED" });
  expect(auto.view().lastCheck).toMatchObject({ result: "failed" });
});

test("up to date: nothing recorded, nothing reported", async () => {
  publish({ version: "1.4.0", sequence: 3 });
  const { auto, stateDir, reports } = setup();
  await auto.checkNow();
  expect(auto.view().lastCheck).toMatchObject({ result: "up-to-date", version: "1.4.0" });
  expect(readUpgradeState(stateDir).outcomes).toHaveLength(0);
  expect(reports).toHaveLength(0);
});

test("no release source (a build without a release host, no manifest-url): idle, said once, nothing scheduled", () => {
  const dir = mkdtempSync(join(tmpdir(), "auto-upgrade-"));
  dirs.push(dir);
  const { settings } = resolveSettings({
    flags: { "state-dir": dir },
    env: {},
    envFile: join(dir, "absent.env"),
    isTTY: false,
  });
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = createLogger({ level: "info", format: "json" });
  log.setReporters([{ log: (entry) => lines.push(JSON.stringify(entry.args)) }]);
  const auto = new AutoUpgrade({
    settings,
    connectorId: "c",
    installed: join(dir, "connector"),
    roots: rootSpkis({ roots } as TestRelease),
    running: { version: "1.4.0", target: "linux-x64" },
    log,
    clock,
    signal: new AbortController().signal,
    report: async () => {},
  });
  auto.start();
  expect(clock.pendingTimers).toBe(0);
  expect(lines.join("\n")).toContain("No release source");
  expect(auto.view().source).toBeUndefined();
});
