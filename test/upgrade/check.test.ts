import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkRelease, type CheckInput } from "../../src/upgrade/check.ts";
import { UpgradeError } from "../../src/upgrade/errors.ts";
import type { Manifest } from "../../src/upgrade/format.ts";
import { rolloutBucket } from "../../src/upgrade/rollout.ts";
import { readUpgradeState, writeUpgradeState, initialUpgradeState, markSkipped } from "../../src/upgrade/state.ts";
import { DEFAULT_RETRIEVAL } from "../../src/upgrade/download.ts";
import { makeKey, makeRelease, NOW, rootSpkis, serveRelease, type TestRelease } from "../support/signed-release.ts";

// One pair of roots and one release key; each test publishes the manifest it needs.
const roots = [makeKey(), makeKey()];
const releaseKey = makeKey();
let published: TestRelease;
let server: ReturnType<typeof Bun.serve>;
const dirs: string[] = [];

function publish(manifest: Partial<Manifest>): void {
  published = makeRelease({ roots, releaseKey, manifest });
}

beforeAll(() => {
  server = serveRelease(() => published);
});
afterAll(() => server.stop(true));
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function input(overrides: Partial<CheckInput> = {}): CheckInput {
  const stateDir = mkdtempSync(join(tmpdir(), "check-"));
  dirs.push(stateDir);
  return {
    manifestUrl: new URL(`http://127.0.0.1:${server.port}/stable/manifest.json`),
    roots: rootSpkis({ roots } as TestRelease),
    policy: { ...DEFAULT_RETRIEVAL, noProxy: [] },
    stateDir,
    channel: "stable",
    running: { version: "1.4.0", target: "linux-x64" },
    now: NOW,
    ...overrides,
  };
}

test("a newer vouched release is available, with its target", async () => {
  publish({ version: "1.5.0", sequence: 10 });
  const result = await checkRelease(input());
  expect(result.kind).toBe("available");
  if (result.kind !== "available") return;
  expect(result.manifest.version).toBe("1.5.0");
  expect(result.target.url).toBe("connector-linux-x64");
});

test("the running version offered: up to date, and its sequence becomes the rollback floor", async () => {
  publish({ version: "1.4.0", sequence: 7 });
  const given = input();
  const result = await checkRelease(given);
  expect(result.kind).toBe("up-to-date");
  expect(readUpgradeState(given.stateDir).highestSequence).toBe(7);
  // A replay of an older manifest is now refused.
  publish({ version: "1.5.0", sequence: 6 });
  const refused = await checkRelease({ ...given, running: { version: "1.4.0", target: "linux-x64" } }).catch(
    (e: unknown) => e,
  );
  expect(refused).toBeInstanceOf(UpgradeError);
  expect((refused as UpgradeError).code).toBe("SEQUENCE_ROLLBACK");
});

test("an older version offered to a newer build: up to date, not an error", async () => {
  publish({ version: "1.3.0", sequence: 5 });
  expect((await checkRelease(input())).kind).toBe("up-to-date");
});

test("a development build with no roots refuses before it asks the network: NO_TRUST_ROOTS", async () => {
  publish({ version: "1.5.0" });
  const err = await checkRelease(input({ roots: [] })).catch((e: unknown) => e);
  expect((err as UpgradeError).code).toBe("NO_TRUST_ROOTS");
});

test("a release signed by a key the roots do not vouch for is refused, whatever the policy", async () => {
  published = makeRelease({ roots: [makeKey(), makeKey()], releaseKey, manifest: { version: "1.5.0" } });
  const err = await checkRelease(input({ policyOf: { connectorId: "c-1" } })).catch((e: unknown) => e);
  expect((err as UpgradeError).code).toBe("KEYSET_NOT_VOUCHED");
});

test("the daemon's policy: outside the rollout the release is not taken, with the reason", async () => {
  // Find an id whose bucket is above 10 %, and one below.
  let outside = "";
  let inside = "";
  for (let i = 0; !outside || !inside; i++) {
    const id = `connector-${i}`;
    if (rolloutBucket(id) >= 10) outside ||= id;
    else inside ||= id;
  }
  publish({ version: "1.5.0", sequence: 10, rollout: 10 });
  const notTaken = await checkRelease(input({ policyOf: { connectorId: outside } }));
  expect(notTaken.kind).toBe("not-taken");
  if (notTaken.kind === "not-taken") expect(notTaken.reason).toMatch(/rolled out to 10 %/);
  expect((await checkRelease(input({ policyOf: { connectorId: inside } }))).kind).toBe("available");
  // A manual upgrade (no policy) ignores the rollout.
  expect((await checkRelease(input())).kind).toBe("available");
});

test("a pin takes exactly its version (even an older one) and leaves any other offer", async () => {
  publish({ version: "1.5.0", sequence: 10 });
  const other = await checkRelease(input({ policyOf: { connectorId: "c-1", pinVersion: "1.4.2" } }));
  expect(other.kind).toBe("not-taken");
  if (other.kind === "not-taken") expect(other.reason).toBe("pinned to 1.4.2; the channel offers 1.5.0");
  publish({ version: "1.3.9", sequence: 11 });
  const older = await checkRelease(input({ policyOf: { connectorId: "c-1", pinVersion: "1.3.9" } }));
  expect(older.kind).toBe("available");
});

test("a skipped version is not taken by the schedule, and refused for a manual upgrade without --version", async () => {
  publish({ version: "1.5.0", sequence: 10 });
  const given = input();
  writeUpgradeState(given.stateDir, markSkipped(initialUpgradeState(), "1.5.0"));
  const scheduled = await checkRelease({ ...given, policyOf: { connectorId: "c-1" } });
  expect(scheduled.kind).toBe("not-taken");
  if (scheduled.kind === "not-taken") expect(scheduled.reason).toMatch(/rolled back .* skipped/);
  const manual = await checkRelease(given).catch((e: unknown) => e);
  expect((manual as UpgradeError).code).toBe("VERSION_SKIPPED");
  const explicit = await checkRelease({ ...given, explicitVersion: "1.5.0" });
  expect(explicit.kind).toBe("available");
});

test("--version V when the channel offers another: VERSION_NOT_OFFERED", async () => {
  publish({ version: "1.5.0", sequence: 10 });
  const err = await checkRelease(input({ explicitVersion: "1.4.5" })).catch((e: unknown) => e);
  expect((err as UpgradeError).code).toBe("VERSION_NOT_OFFERED");
});
