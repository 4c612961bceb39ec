/**
 * `connector upgrade` with the compiled binary against the reference release server: a real release
 * made by `bun run release` is taken, and every attack the server can stage is refused with its code
 * while the installed binary stays byte-identical. Run as root here, so the command may replace the
 * binary itself (the systemd e2e covers the unprivileged daemon and the root oneshot).
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { makeKeys } from "../support/release-keys.ts";
import { buildRelease, type BuiltRelease } from "../support/releases.ts";
import { initialUpgradeState, readUpgradeState, writeUpgradeState } from "../../src/upgrade/state.ts";
import type { MisbehaviourMode } from "../cloud/releases/misbehaviour.ts";
import { fakeBinary, readKeyDir, writeFakeRelease } from "../support/release-fixture.ts";
import { hostTarget } from "../../build.ts";

let tmp: string;
let cloud: CloudProcess;
let a: BuiltRelease;
let b: BuiltRelease;
let manifestUrl: string;
let keep = false;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "upgrade-cli-"));
  const keys = makeKeys(join(tmp, "keys"));
  // A is what is installed; only B is published, so the channel offers B.
  a = await buildRelease({ keys, version: "1.0.0", channel: "stable", sequence: 1, out: join(tmp, "a") });
  b = await buildRelease({ keys, version: "1.1.0", channel: "stable", sequence: 2, out: join(tmp, "releases", "b") });
  cloud = await startCloud({ releases: join(tmp, "releases"), releaseSigningKeys: keys.dir });
  manifestUrl = cloud.releases!.channels.stable!.manifestUrl;
}, 600_000);

afterAll(async () => {
  await cloud?.stop();
  if (keep) console.error(`upgrade-cli: kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
});

let installs = 0;
/** A fresh host: release A installed in its own bin dir, an empty state dir. */
function install(from: string = a.binary): { bin: string; stateDir: string } {
  const dir = join(tmp, `host-${++installs}`);
  mkdirSync(join(dir, "bin"), { recursive: true });
  mkdirSync(join(dir, "state"), { mode: 0o700 });
  const bin = join(dir, "bin", "connector");
  copyFileSync(from, bin);
  chmodSync(bin, 0o755);
  return { bin, stateDir: join(dir, "state") };
}

async function upgrade(bin: string, stateDir: string, ...extra: string[]) {
  const proc = Bun.spawn(
    [bin, "upgrade", "--state-dir", stateDir, "--manifest-url", manifestUrl, "--log-format", "json", ...extra],
    { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH } },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

function sameBytes(path: string, expected: string): boolean {
  return readFileSync(path).equals(readFileSync(expected));
}

test("takes the channel's release: B replaces A, A kept as connector.prev, the new binary runs", async () => {
  const { bin, stateDir } = install();
  const result = await upgrade(bin, stateDir);
  if (result.code !== 0) keep = true;
  expect(result.stdout).toContain("Upgraded 1.0.0 → 1.1.0");
  expect(result.code).toBe(0);
  expect(sameBytes(bin, b.binary)).toBe(true);
  expect(sameBytes(`${bin}.prev`, a.binary)).toBe(true);
  const version = Bun.spawnSync([bin, "--version"]).stdout.toString();
  expect(version).toContain("connector 1.1.0");
  expect(readUpgradeState(stateDir)).toMatchObject({ highestSequence: 2, highestVersion: "1.1.0" });
  // Nothing newer now: up to date, exit 0, nothing touched.
  const again = await upgrade(bin, stateDir);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain("1.1.0 is up to date");
  expect(sameBytes(bin, b.binary)).toBe(true);
}, 120_000);

test("--check says what would happen and why, and changes nothing", async () => {
  const { bin, stateDir } = install();
  const result = await upgrade(bin, stateDir, "--check");
  expect(result.code).toBe(0);
  expect(result.stdout).toContain("Offered:         1.1.0 (sequence 2");
  expect(result.stdout).toContain("Running:         1.0.0");
  expect(result.stdout).toMatch(/Decision: .*1\.1\.0/);
  expect(sameBytes(bin, a.binary)).toBe(true);
}, 60_000);

test("--rollback puts connector.prev back and marks the removed version skipped", async () => {
  const { bin, stateDir } = install();
  expect((await upgrade(bin, stateDir)).code).toBe(0);
  const back = await upgrade(bin, stateDir, "--rollback");
  expect(back.code).toBe(0);
  expect(sameBytes(bin, a.binary)).toBe(true);
  expect(readUpgradeState(stateDir).skipped).toContain("1.1.0");
  // The skipped version is not taken again without an explicit --version.
  const refused = await upgrade(bin, stateDir);
  expect(refused.code).toBe(24);
  expect(refused.stderr).toContain("[VERSION_SKIPPED]");
  expect(sameBytes(bin, a.binary)).toBe(true);
}, 120_000);

describe("attacks staged by the release server: refused with their code, the binary byte-identical", () => {
  const cases: [MisbehaviourMode, string][] = [
    ["endless-body", "BODY_TOO_LONG"],
    ["truncated-body", "BODY_TOO_SHORT"],
    ["wrong-hash", "HASH_MISMATCH"],
    ["expired-manifest", "MANIFEST_EXPIRED"],
    ["unknown-key", "KEY_UNKNOWN"],
    ["unvouched-key", "KEYSET_NOT_VOUCHED"],
    ["older-sequence", "SEQUENCE_ROLLBACK"],
    // Last: it takes the speed window (30 s) to tell a trickle from a pause.
    ["slow-body", "DOWNLOAD_TOO_SLOW"],
  ];
  for (const [mode, code] of cases) {
    test(`${mode} → ${code}`, async () => {
      const { bin, stateDir } = install();
      // This connector already accepted sequence 2 (so an older sequence is a rollback).
      if (mode === "older-sequence")
        writeUpgradeState(stateDir, { ...initialUpgradeState(), highestSequence: 2, highestVersion: "1.0.0" });
      await cloud.misbehave(mode);
      try {
        const result = await upgrade(bin, stateDir);
        if (result.code !== 24) keep = true;
        expect(result.stderr).toContain(`[${code}]`);
        expect(result.code).toBe(24);
        expect(sameBytes(bin, a.binary)).toBe(true);
        expect(readUpgradeState(stateDir).highestSequence).toBe(mode === "older-sequence" ? 2 : 0);
      } finally {
        await cloud.misbehave("none");
      }
    }, 180_000);
  }
});

test("a signed binary that does not print the manifest's version: SELF_CHECK_FAILED, nothing installed", async () => {
  // Correctly signed with the release key, but the binary says 9.9.9 where the manifest says 1.2.0.
  const liar = join(tmp, "releases", "c-liar");
  writeFakeRelease({
    dir: liar,
    keys: readKeyDir(join(tmp, "keys")),
    version: "1.2.0",
    channel: "stable",
    sequence: 3,
    targets: [hostTarget()],
    binary: (target) => fakeBinary("9.9.9", target),
  });
  const { bin, stateDir } = install();
  try {
    const result = await upgrade(bin, stateDir);
    expect(result.stderr).toContain("[SELF_CHECK_FAILED]");
    expect(result.code).toBe(24);
    expect(sameBytes(bin, a.binary)).toBe(true);
    expect(readUpgradeState(stateDir).outcomes.at(-1)).toMatchObject({
      result: "refused",
      code: "SELF_CHECK_FAILED",
      to: "1.2.0",
    });
  } finally {
    rmSync(liar, { recursive: true, force: true });
  }
}, 120_000);
