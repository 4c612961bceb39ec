import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyStaged, installRelease, rollBack, takeApplyLock, type ApplyContext } from "../../src/upgrade/apply.ts";
import { UpgradeError } from "../../src/upgrade/errors.ts";
import { renderManifest } from "../../src/upgrade/format.ts";
import {
  applyLockPath,
  readResult,
  requestPath,
  resultPath,
  stagedDir,
  writeRequest,
  writeStaged,
} from "../../src/upgrade/staging.ts";
import { upgradeDir } from "../../src/upgrade/state.ts";
import { prevPath } from "../../src/upgrade/swap.ts";
import { fakeDeps, testManifest, type FakeDeps } from "../support/apply-fakes.ts";
import { fakeBinaryText, runVersion, writeFakeBinary } from "../support/swap-binaries.ts";

const OTHER_UID = 48_213;
const NOW = new Date("2026-03-10T12:00:00.000Z");

let root: string;
let stateDir: string;
let installed: string;
let oldBytes: Buffer;
let newBytes: Buffer;
let manifestBytes: Uint8Array | undefined;
let deps: FakeDeps;
let ctx: ApplyContext;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "apply-"));
  stateDir = join(root, "state");
  mkdirSync(stateDir, { mode: 0o700 });
  mkdirSync(join(root, "bin"));
  installed = join(root, "bin", "connector");
  oldBytes = writeFakeBinary(installed, "1.0.0");
  newBytes = Buffer.from(fakeBinaryText("1.1.0", "linux-x64", 64));
  manifestBytes = undefined;
  deps = fakeDeps(() => manifestBytes);
  ctx = {
    stateDir,
    installed,
    roots: ["root-a", "root-b"],
    running: { version: "1.0.0", target: "linux-x64" },
    channel: "stable",
    now: () => NOW,
    deps,
  };
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Stages release 1.1.0 (or `binary`) as the daemon would, and asks for it to be applied. */
function stageAndRequest(binary: Uint8Array = newBytes, version = "1.1.0"): string {
  manifestBytes = Buffer.from(renderManifest(testManifest(version, 7, binary)));
  const download = join(root, "download");
  writeFileSync(download, binary);
  writeStaged(
    stateDir,
    {
      manifest: manifestBytes,
      manifestSignature: Buffer.alloc(64),
      keyset: Buffer.from("{}"),
      keysetSignatures: new Map(),
    },
    download,
  );
  return writeRequest(stateDir, "apply", NOW);
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe("applyStaged: apply", () => {
  test("verifies, swaps, records the accepted release, writes result 'swapped', clears staging and request", async () => {
    deps.state.skipped = ["0.9.0"];
    const id = stageAndRequest();
    const result = await applyStaged(ctx);
    expect(result).toEqual({
      schema: 1,
      id,
      action: "apply",
      result: "swapped",
      from: "1.0.0",
      to: "1.1.0",
      at: NOW.toISOString(),
    });
    expect(readResult(stateDir)).toEqual(result);
    expect(same(readFileSync(installed), newBytes)).toBe(true);
    expect(runVersion(installed)).toContain("connector 1.1.0 ");
    expect(same(readFileSync(prevPath(installed)), oldBytes)).toBe(true);
    expect(deps.rules).toEqual([
      { channel: "stable", runningVersion: "1.0.0", target: "linux-x64", highestSequence: 0, skipped: ["0.9.0"] },
    ]);
    expect(deps.state.highestSequence).toBe(7);
    expect(deps.state.highestVersion).toBe("1.1.0");
    expect(deps.state.outcomes).toEqual([
      { at: NOW.toISOString(), from: "1.0.0", to: "1.1.0", result: "installed", reported: false },
    ]);
    expect(existsSync(requestPath(stateDir))).toBe(false);
    expect(existsSync(stagedDir(stateDir))).toBe(false);
    expect(readdirSync(join(root, "bin")).sort()).toEqual(["connector", "connector.prev"]);
  });

  test("a refusal (SIGNATURE_INVALID) leaves the binary byte-identical, records the code, removes the request", async () => {
    stageAndRequest();
    deps.refuse = new UpgradeError("SIGNATURE_INVALID", "bad signature");
    const result = await applyStaged(ctx);
    expect(result).toMatchObject({ action: "apply", result: "refused", from: "1.0.0", code: "SIGNATURE_INVALID" });
    expect(readResult(stateDir)?.code).toBe("SIGNATURE_INVALID");
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
    expect(existsSync(prevPath(installed))).toBe(false);
    expect(deps.state.highestSequence).toBe(0);
    expect(deps.state.outcomes).toEqual([
      {
        at: NOW.toISOString(),
        from: "1.0.0",
        result: "refused",
        code: "SIGNATURE_INVALID",
        message: "bad signature",
        reported: false,
      },
    ]);
    expect(existsSync(requestPath(stateDir))).toBe(false);
    expect(existsSync(stagedDir(stateDir))).toBe(false);
  });

  test("a staged manifest changed after staging is verified from the bytes root read: refused, untouched", async () => {
    stageAndRequest();
    writeFileSync(join(stagedDir(stateDir), "manifest.json"), renderManifest(testManifest("1.1.0", 8, newBytes)));
    const result = await applyStaged(ctx);
    expect(result).toMatchObject({ result: "refused", code: "SIGNATURE_INVALID" });
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
  });

  test("a candidate that prints another version: SELF_CHECK_FAILED, untouched, the version is named", async () => {
    stageAndRequest(Buffer.from(fakeBinaryText("6.6.6")), "1.1.0");
    const result = await applyStaged(ctx);
    expect(result).toMatchObject({ result: "refused", code: "SELF_CHECK_FAILED", to: "1.1.0" });
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
    expect(readdirSync(join(root, "bin"))).toEqual(["connector"]);
  });

  test("a staged binary swapped for a symlink: STAGING_UNSAFE, untouched, request removed", async () => {
    stageAndRequest();
    const staged = join(stagedDir(stateDir), "connector");
    rmSync(staged);
    symlinkSync(installed, staged);
    const result = await applyStaged(ctx);
    expect(result).toMatchObject({ result: "refused", code: "STAGING_UNSAFE" });
    expect(result?.message).toContain("connector is a symbolic link");
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
    expect(existsSync(requestPath(stateDir))).toBe(false);
  });

  test("junk request.json: refused STAGING_UNSAFE and removed (a PathExists= unit must not loop)", async () => {
    mkdirSync(upgradeDir(stateDir), { mode: 0o700 });
    writeFileSync(requestPath(stateDir), "garbage", { mode: 0o600 });
    expect(await applyStaged(ctx)).toMatchObject({ result: "refused", code: "STAGING_UNSAFE" });
    expect(existsSync(requestPath(stateDir))).toBe(false);
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
  });

  test("no request: nothing done, no result written", async () => {
    expect(await applyStaged(ctx)).toBeUndefined();
    expect(existsSync(resultPath(stateDir))).toBe(false);
    expect(deps.writes).toEqual([]);
  });

  test("a swap that fails (the prev slot is a directory): result 'failed' SWAP_FAILED, untouched, request removed", async () => {
    mkdirSync(prevPath(installed));
    writeFileSync(join(prevPath(installed), "x"), "");
    stageAndRequest();
    expect(await applyStaged(ctx)).toMatchObject({ result: "failed", code: "SWAP_FAILED" });
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
    expect(existsSync(requestPath(stateDir))).toBe(false);
  });

  test("run by root for a daemon user: result, lock and state go to the state dir's owner", async () => {
    stageAndRequest();
    for (const path of [
      stateDir,
      upgradeDir(stateDir),
      stagedDir(stateDir),
      ...readdirSync(stagedDir(stateDir)).map((n) => join(stagedDir(stateDir), n)),
    ])
      chownSync(path, OTHER_UID, OTHER_UID);
    chownSync(requestPath(stateDir), OTHER_UID, OTHER_UID);
    expect(await applyStaged(ctx)).toMatchObject({ result: "swapped" });
    for (const path of [resultPath(stateDir), applyLockPath(stateDir)]) expect(statSync(path).uid).toBe(OTHER_UID);
    expect(deps.writes).toEqual([{ owner: { uid: OTHER_UID, gid: OTHER_UID } }]);
  });
});

describe("root in a state dir the daemon controls", () => {
  const handToDaemon = () => {
    for (const path of [
      stateDir,
      upgradeDir(stateDir),
      stagedDir(stateDir),
      ...readdirSync(stagedDir(stateDir)).map((n) => join(stagedDir(stateDir), n)),
    ])
      chownSync(path, OTHER_UID, OTHER_UID);
    chownSync(requestPath(stateDir), OTHER_UID, OTHER_UID);
  };

  test("an apply.lock hard-linked to a root file is neither used nor chowned: STAGING_UNSAFE, nothing changed", async () => {
    stageAndRequest();
    handToDaemon();
    const victim = join(root, "root-owned");
    writeFileSync(victim, "root's file\n");
    linkSync(victim, applyLockPath(stateDir));
    const error = await applyStaged(ctx).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("STAGING_UNSAFE");
    expect(statSync(victim).uid).toBe(0);
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
  });

  test("upgrade/ swapped for a symlink while root works: root goes on in the directory it checked", async () => {
    stageAndRequest();
    handToDaemon();
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    deps.onVerify = () => {
      // The daemon renames its upgrade dir and points the name somewhere else.
      renameSync(join(stateDir, "upgrade"), join(stateDir, "upgrade.moved"));
      symlinkSync(elsewhere, join(stateDir, "upgrade"));
    };
    expect(await applyStaged(ctx)).toMatchObject({ result: "swapped" });
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(existsSync(join(stateDir, "upgrade.moved", "result.json"))).toBe(true);
  });

  test("clearing staged/ never follows a link planted inside it", async () => {
    stageAndRequest();
    const victimDir = join(root, "victim");
    mkdirSync(victimDir);
    writeFileSync(join(victimDir, "keep"), "x");
    symlinkSync(victimDir, join(stagedDir(stateDir), "sub"));
    expect(await applyStaged(ctx)).toMatchObject({ result: "swapped" });
    expect(readFileSync(join(victimDir, "keep"), "utf8")).toBe("x");
    expect(existsSync(stagedDir(stateDir))).toBe(false);
  });
});

describe("rollback", () => {
  test("a rollback request restores connector.prev byte-identically and marks the removed version skipped", async () => {
    stageAndRequest();
    await applyStaged(ctx);
    deps.state.probation = { version: "1.1.0", from: "1.0.0", since: NOW.toISOString(), starts: 4 };
    const upgraded: ApplyContext = { ...ctx, running: { version: "1.1.0", target: "linux-x64" } };
    const id = writeRequest(stateDir, "rollback", NOW);
    const result = await applyStaged(upgraded);
    expect(result).toEqual({
      schema: 1,
      id,
      action: "rollback",
      result: "rolled-back",
      from: "1.1.0",
      to: "1.0.0",
      at: NOW.toISOString(),
    });
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
    expect(runVersion(installed)).toContain("connector 1.0.0 ");
    expect(deps.state.skipped).toEqual(["1.1.0"]);
    expect(deps.state.outcomes.at(-1)).toEqual({
      at: NOW.toISOString(),
      from: "1.1.0",
      to: "1.0.0",
      result: "rolled-back",
      reported: false,
    });
    expect(existsSync(requestPath(stateDir))).toBe(false);
  });

  test("rollBack with an explicit version (an old daemon restoring itself) skips that version", async () => {
    await installRelease(
      ctx,
      {
        manifest: (manifestBytes = Buffer.from(renderManifest(testManifest("1.1.0", 7, newBytes)))),
        manifestSignature: undefined,
        keyset: Buffer.from("{}"),
        keysetSignatures: new Map(),
      },
      newBytes,
    );
    expect(await rollBack(ctx, "1.1.0")).toMatchObject({ result: "rolled-back", from: "1.1.0" });
    expect(deps.state.skipped).toEqual(["1.1.0"]);
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
  });

  test("no connector.prev: result 'failed' NO_PREVIOUS_BINARY, request removed, nothing skipped", async () => {
    writeRequest(stateDir, "rollback", NOW);
    expect(await applyStaged(ctx)).toMatchObject({ action: "rollback", result: "failed", code: "NO_PREVIOUS_BINARY" });
    expect(deps.state.skipped).toEqual([]);
    expect(existsSync(requestPath(stateDir))).toBe(false);
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
  });
});

describe("installRelease (a manual upgrade, no staging)", () => {
  test("passes an explicit version to verification and swaps", async () => {
    manifestBytes = Buffer.from(renderManifest(testManifest("1.1.0", 7, newBytes)));
    const result = await installRelease(
      ctx,
      { manifest: manifestBytes, manifestSignature: undefined, keyset: Buffer.from("{}"), keysetSignatures: new Map() },
      newBytes,
      "1.1.0",
    );
    expect(result).toMatchObject({ action: "apply", result: "swapped", to: "1.1.0" });
    expect(deps.rules[0]?.explicitVersion).toBe("1.1.0");
    expect(same(readFileSync(installed), newBytes)).toBe(true);
  });

  test("bytes that do not match the manifest: HASH_MISMATCH, untouched", async () => {
    manifestBytes = Buffer.from(renderManifest(testManifest("1.1.0", 7, newBytes)));
    const result = await installRelease(
      ctx,
      { manifest: manifestBytes, manifestSignature: undefined, keyset: Buffer.from("{}"), keysetSignatures: new Map() },
      Buffer.from(fakeBinaryText("1.1.0", "linux-x64", 65)),
    );
    expect(result).toMatchObject({ result: "refused", code: "HASH_MISMATCH" });
    expect(same(readFileSync(installed), oldBytes)).toBe(true);
  });
});

describe("the apply lock", () => {
  test("a second apply waits for the lock: it verifies nothing until the first holder releases", async () => {
    stageAndRequest();
    mkdirSync(upgradeDir(stateDir), { recursive: true });
    const held = await takeApplyLock(stateDir, undefined);
    let released = false;
    let verifiedWhileHeld = false;
    deps.onVerify = () => {
      if (!released) verifiedWhileHeld = true;
    };
    let waits = 0;
    const applying = applyStaged({
      ...ctx,
      sleep: async () => {
        waits += 1;
        if (waits === 3) {
          released = true;
          held.release();
        }
      },
    });
    expect(await applying).toMatchObject({ result: "swapped" });
    expect(waits).toBeGreaterThanOrEqual(3);
    expect(verifiedWhileHeld).toBe(false);
  });

  test("held past lockWaitMs: APPLY_TIMEOUT, nothing touched, the request left for the holder", async () => {
    stageAndRequest();
    const held = await takeApplyLock(stateDir, undefined);
    try {
      const err = await applyStaged({ ...ctx, lockWaitMs: 300, sleep: async () => {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpgradeError);
      expect((err as UpgradeError).code).toBe("APPLY_TIMEOUT");
      expect(existsSync(requestPath(stateDir))).toBe(true);
      expect(same(readFileSync(installed), oldBytes)).toBe(true);
      expect(deps.rules).toEqual([]);
    } finally {
      held.release();
    }
  });

  test("an apply.lock symlink is not followed", async () => {
    mkdirSync(upgradeDir(stateDir), { mode: 0o700 });
    symlinkSync(join(root, "elsewhere"), applyLockPath(stateDir));
    const err = await takeApplyLock(stateDir, undefined).catch((e: unknown) => e);
    expect((err as UpgradeError).code).toBe("SWAP_FAILED");
    expect(existsSync(join(root, "elsewhere"))).toBe(false);
  });
});
