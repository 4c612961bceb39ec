import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UpgradeError } from "../../src/upgrade/errors.ts";
import { MAX_BINARY_BYTES, MAX_MANIFEST_BYTES } from "../../src/upgrade/format.ts";
import {
  clearStaged,
  readRequest,
  readResult,
  readStaged,
  removeRequest,
  requestPath,
  resultPath,
  stagedBinaryPath,
  stagedDir,
  writeRequest,
  writeResult,
  writeStaged,
} from "../../src/upgrade/staging.ts";
import { upgradeDir } from "../../src/upgrade/state.ts";
import type { ReleaseFiles } from "../../src/upgrade/verify.ts";

/** A uid no file of this machine belongs to: "someone else". */
const OTHER_UID = 48_213;

let stateDir: string;
let scratch: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "staging-state-"));
  scratch = mkdtempSync(join(tmpdir(), "staging-dl-"));
});
afterEach(() => {
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const files = (): ReleaseFiles => ({
  manifest: Buffer.from('{"version":"1.1.0"}\n'),
  manifestSignature: Buffer.alloc(64, 7),
  keyset: Buffer.from('{"keys":[]}\n'),
  keysetSignatures: new Map([
    ["0123456789abcdef", Buffer.alloc(64, 1)],
    ["fedcba9876543210", Buffer.alloc(64, 2)],
  ]),
});

function stage(binary = "#!/bin/sh\necho connector\n"): void {
  const download = join(scratch, "download");
  writeFileSync(download, binary);
  writeStaged(stateDir, files(), download);
}

function unsafeError(fn: () => unknown): UpgradeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UpgradeError) return err;
    throw err;
  }
  throw new Error("expected an UpgradeError");
}

describe("writeStaged / readStaged", () => {
  test("round trip: the same bytes come back; dirs 0700, files 0600, the binary 0700; the download is moved", () => {
    stage();
    expect(existsSync(join(scratch, "download"))).toBe(false);
    expect(statSync(upgradeDir(stateDir)).mode & 0o777).toBe(0o700);
    expect(statSync(stagedDir(stateDir)).mode & 0o777).toBe(0o700);
    expect(statSync(stagedBinaryPath(stateDir)).mode & 0o777).toBe(0o700);
    expect(statSync(join(stagedDir(stateDir), "manifest.json")).mode & 0o777).toBe(0o600);
    expect(readdirSync(stagedDir(stateDir)).sort()).toEqual([
      "connector",
      "manifest.json",
      "manifest.json.sig",
      "release-keys.json",
      "release-keys.json.0123456789abcdef.sig",
      "release-keys.json.fedcba9876543210.sig",
    ]);
    const { files: read, binary } = readStaged(stateDir);
    const want = files();
    expect(Buffer.from(read.manifest).toString()).toBe(Buffer.from(want.manifest).toString());
    expect(Buffer.compare(Buffer.from(read.manifestSignature!), Buffer.from(want.manifestSignature!))).toBe(0);
    expect(Buffer.from(read.keyset).toString()).toBe(Buffer.from(want.keyset).toString());
    expect([...read.keysetSignatures.keys()].sort()).toEqual(["0123456789abcdef", "fedcba9876543210"]);
    expect(Buffer.compare(Buffer.from(read.keysetSignatures.get("fedcba9876543210")!), Buffer.alloc(64, 2))).toBe(0);
    expect(Buffer.from(binary).toString()).toBe("#!/bin/sh\necho connector\n");
  });

  test("restaging replaces everything: no signature of an earlier release is left behind", () => {
    stage();
    const download = join(scratch, "download");
    writeFileSync(download, "new");
    writeStaged(
      stateDir,
      { ...files(), manifestSignature: undefined, keysetSignatures: new Map([["1111111111111111", Buffer.alloc(64)]]) },
      download,
    );
    expect(readdirSync(stagedDir(stateDir)).sort()).toEqual([
      "connector",
      "manifest.json",
      "release-keys.json",
      "release-keys.json.1111111111111111.sig",
    ]);
    const { files: read } = readStaged(stateDir);
    expect(read.manifestSignature).toBeUndefined();
    expect([...read.keysetSignatures.keys()]).toEqual(["1111111111111111"]);
  });

  test("a root id that is not a key id is refused before anything is written (no path tricks)", () => {
    const err = unsafeError(() =>
      writeStaged(
        stateDir,
        { ...files(), keysetSignatures: new Map([["../../x", Buffer.alloc(64)]]) },
        join(scratch, "none"),
      ),
    );
    expect(err.code).toBe("STAGING_UNSAFE");
    expect(existsSync(upgradeDir(stateDir))).toBe(false);
  });

  test("a staged file that is a symlink: STAGING_UNSAFE naming it, never followed", () => {
    stage();
    const manifest = join(stagedDir(stateDir), "manifest.json");
    rmSync(manifest);
    writeFileSync(join(scratch, "elsewhere"), "{}");
    symlinkSync(join(scratch, "elsewhere"), manifest);
    const err = unsafeError(() => readStaged(stateDir));
    expect(err.code).toBe("STAGING_UNSAFE");
    expect(err.message).toContain("manifest.json is a symbolic link");
  });

  test("the staged dir itself a symlink: STAGING_UNSAFE", () => {
    stage();
    const real = join(scratch, "real-staged");
    mkdirSync(real, { mode: 0o700 });
    rmSync(stagedDir(stateDir), { recursive: true });
    symlinkSync(real, stagedDir(stateDir));
    expect(unsafeError(() => readStaged(stateDir)).message).toContain("staged is a symbolic link");
  });

  test("a staged binary owned by another user: STAGING_UNSAFE naming it", () => {
    stage();
    chownSync(stagedBinaryPath(stateDir), OTHER_UID, OTHER_UID);
    const err = unsafeError(() => readStaged(stateDir));
    expect(err.code).toBe("STAGING_UNSAFE");
    expect(err.message).toContain(`connector is owned by uid ${OTHER_UID}`);
  });

  test("files must belong to the state dir's owner: a root-owned file in a user's state dir is refused", () => {
    stage();
    chownSync(stateDir, OTHER_UID, OTHER_UID);
    for (const d of [upgradeDir(stateDir), stagedDir(stateDir)]) chownSync(d, OTHER_UID, OTHER_UID);
    for (const name of readdirSync(stagedDir(stateDir)))
      chownSync(join(stagedDir(stateDir), name), OTHER_UID, OTHER_UID);
    expect(readStaged(stateDir).binary.byteLength).toBeGreaterThan(0);
    chownSync(join(stagedDir(stateDir), "release-keys.json"), 0, 0);
    expect(unsafeError(() => readStaged(stateDir)).message).toContain("release-keys.json is owned by uid 0");
  });

  test("a group-writable staged file: STAGING_UNSAFE", () => {
    stage();
    chmodSync(join(stagedDir(stateDir), "manifest.json.sig"), 0o620);
    expect(unsafeError(() => readStaged(stateDir)).message).toContain("manifest.json.sig is writable by other users");
  });

  test("oversized files: a manifest over 64 KiB, a binary over MAX_BINARY_BYTES (sparse) are STAGING_UNSAFE", () => {
    stage();
    writeFileSync(join(stagedDir(stateDir), "manifest.json"), Buffer.alloc(MAX_MANIFEST_BYTES + 1, 32), {
      mode: 0o600,
    });
    expect(unsafeError(() => readStaged(stateDir)).message).toContain(
      `manifest.json is ${MAX_MANIFEST_BYTES + 1} bytes`,
    );
    writeFileSync(join(stagedDir(stateDir), "manifest.json"), "{}", { mode: 0o600 });
    truncateSync(stagedBinaryPath(stateDir), MAX_BINARY_BYTES + 1);
    expect(unsafeError(() => readStaged(stateDir)).message).toContain(`connector is ${MAX_BINARY_BYTES + 1} bytes`);
  });

  test("a FIFO or directory in place of a file: STAGING_UNSAFE, no hang", () => {
    stage();
    rmSync(stagedBinaryPath(stateDir));
    Bun.spawnSync(["mkfifo", stagedBinaryPath(stateDir)]);
    expect(unsafeError(() => readStaged(stateDir)).message).toContain("connector is not a regular file");
  });

  test("nothing staged, or a missing binary: STAGING_UNSAFE", () => {
    expect(unsafeError(() => readStaged(stateDir)).message).toContain("is missing");
    stage();
    rmSync(stagedBinaryPath(stateDir));
    expect(unsafeError(() => readStaged(stateDir)).message).toContain("connector is missing");
  });

  test("clearStaged removes the staged release; a symlink planted as staged is removed, its target kept", () => {
    stage();
    clearStaged(stateDir);
    expect(existsSync(stagedDir(stateDir))).toBe(false);
    mkdirSync(join(scratch, "t"));
    writeFileSync(join(scratch, "t", "keep"), "x");
    symlinkSync(join(scratch, "t"), stagedDir(stateDir));
    clearStaged(stateDir);
    expect(existsSync(join(scratch, "t", "keep"))).toBe(true);
  });
});

describe("request and result", () => {
  test("writeRequest → readRequest → removeRequest; 0600", () => {
    const at = new Date("2026-03-01T10:00:00.000Z");
    const id = writeRequest(stateDir, "rollback", at);
    expect(statSync(requestPath(stateDir)).mode & 0o777).toBe(0o600);
    expect(readRequest(stateDir)).toEqual({ schema: 1, id, action: "rollback", at: at.toISOString() });
    removeRequest(stateDir);
    expect(existsSync(requestPath(stateDir))).toBe(false);
    expect(readRequest(stateDir)).toBeUndefined();
  });

  test("a request.json symlink is STAGING_UNSAFE, never followed, and removeRequest removes the link only", () => {
    mkdirSync(upgradeDir(stateDir), { mode: 0o700 });
    const target = join(scratch, "target.json");
    writeFileSync(target, JSON.stringify({ schema: 1, id: "x", action: "apply", at: new Date().toISOString() }));
    symlinkSync(target, requestPath(stateDir));
    expect(unsafeError(() => readRequest(stateDir)).message).toContain("request.json is a symbolic link");
    removeRequest(stateDir);
    expect(existsSync(requestPath(stateDir))).toBe(false);
    expect(existsSync(target)).toBe(true);
  });

  test("junk request.json (not JSON, wrong schema, a directory): STAGING_UNSAFE, and removable", () => {
    mkdirSync(upgradeDir(stateDir), { mode: 0o700 });
    writeFileSync(requestPath(stateDir), "{not json", { mode: 0o600 });
    expect(unsafeError(() => readRequest(stateDir)).message).toContain("is not JSON");
    writeFileSync(requestPath(stateDir), JSON.stringify({ schema: 1, id: "x", action: "reinstall", at: "now" }), {
      mode: 0o600,
    });
    expect(unsafeError(() => readRequest(stateDir)).message).toContain("does not match its schema");
    rmSync(requestPath(stateDir));
    mkdirSync(requestPath(stateDir));
    expect(unsafeError(() => readRequest(stateDir)).code).toBe("STAGING_UNSAFE");
    removeRequest(stateDir);
    expect(existsSync(requestPath(stateDir))).toBe(false);
  });

  test("writeResult with an owner chowns the file to that owner; readResult reads it back; junk reads as none", () => {
    chownSync(stateDir, OTHER_UID, OTHER_UID);
    writeResult(
      stateDir,
      { id: "r1", action: "apply", result: "swapped", from: "1.0.0", to: "1.1.0", at: "2026-03-01T10:00:00.000Z" },
      { uid: OTHER_UID, gid: OTHER_UID },
    );
    const stats = statSync(resultPath(stateDir));
    expect([stats.uid, stats.gid, stats.mode & 0o777]).toEqual([OTHER_UID, OTHER_UID, 0o600]);
    expect(statSync(upgradeDir(stateDir)).uid).toBe(OTHER_UID);
    expect(readResult(stateDir)).toEqual({
      schema: 1,
      id: "r1",
      action: "apply",
      result: "swapped",
      from: "1.0.0",
      to: "1.1.0",
      at: "2026-03-01T10:00:00.000Z",
    });
    writeFileSync(resultPath(stateDir), "[]");
    expect(readResult(stateDir)).toBeUndefined();
    expect(readFileSync(resultPath(stateDir), "utf8")).toBe("[]");
  });
});
