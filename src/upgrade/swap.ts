/**
 * Replaces the installed binary so that a kill -9 (or power loss after the final fsync) at any
 * instant leaves `connector` either the complete old binary or the complete new one, never a torn
 * file and never a missing one: the new bytes go to an exclusive temp sibling (same directory, so the
 * rename is atomic), are fsynced and checked there, the old binary is kept as `connector.prev` (a hard
 * link renamed into place, so the old one is never absent either), and only then is the temp renamed
 * over `connector` and the directory fsynced.
 *
 * Each step calls `hook(step)` after it completes: tests SIGKILL a child there (test/support/swap-child.ts).
 */
import { randomBytes } from "node:crypto";
import {
  accessSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { describeError, errnoCode } from "../errors.ts";
import { fsyncDir } from "../state/atomic-file.ts";
import { isUpgradeError, UpgradeError } from "./errors.ts";

export type SwapStep =
  | "temp-written"
  | "temp-synced"
  | "temp-executable"
  | "checked"
  | "prev-kept"
  | "renamed"
  | "dir-synced";

export interface SwapOptions {
  /** The binary to replace, e.g. /usr/local/bin/connector. */
  readonly installed: string;
  readonly bytes: Uint8Array;
  /** Runs the candidate at its temp path (the self-check); a throw aborts the swap with that error. */
  readonly check?: (tempPath: string) => Promise<void>;
  readonly hook?: (step: SwapStep) => void | Promise<void>;
}

/** The mode a fresh binary gets when there is no old one to copy it from. */
const DEFAULT_BINARY_MODE = 0o755;
/** Written while incomplete: nobody but the owner may run a half-written file. */
const TEMP_MODE = 0o700;
/** Link errors after which the old binary is copied instead (cross-device, a file system without links, too many links). */
const NO_LINK_ERRORS = new Set(["EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK"]);

/**
 * The file behind `installed`: a package may install /usr/local/bin/connector as a symlink to the real
 * binary, and the swap must replace that binary, not turn the link into a file.
 */
export function realInstalled(installed: string): string {
  try {
    return realpathSync(installed);
  } catch {
    return installed; // not there (yet): the path itself
  }
}

/** Where the binary before the last swap is kept: `connector.prev` beside the (real) `connector`. */
export function prevPath(installed: string): string {
  const real = realInstalled(installed);
  return join(dirname(real), `${basename(real)}.prev`);
}

/** Whether this process may create and rename files in the binary's directory (root: nearly always). */
export function canReplace(installed: string): boolean {
  installed = realInstalled(installed);
  try {
    accessSync(dirname(installed), constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const tempName = (installed: string, kind: "new" | "prev" | "restore"): string =>
  join(dirname(installed), `.${basename(installed)}.${kind}.${randomBytes(6).toString("hex")}`);

/**
 * Removes temp files a swap killed half-way left in the binary's directory (`.connector.new.*`,
 * `.connector.prev.*`, `.connector.restore.*`). Call it only while holding the apply lock: a swap in
 * progress owns its temp file.
 */
export function removeSwapLeftovers(installed: string): string[] {
  installed = realInstalled(installed);
  const prefix = `.${basename(installed)}.`;
  const pattern = /^(new|prev|restore)\.[0-9a-f]{12}$/;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dirname(installed));
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !pattern.test(name.slice(prefix.length))) continue;
    const path = join(dirname(installed), name);
    try {
      rmSync(path, { force: true });
      removed.push(path);
    } catch {
      // Not ours to fight over: a leftover costs disk space, nothing else.
    }
  }
  return removed;
}

function swapFailed(what: string, err: unknown): UpgradeError {
  const code = errnoCode(err);
  return new UpgradeError(
    "SWAP_FAILED",
    `Cannot ${what} (${code ?? describeError(err)}); the installed binary is unchanged.`,
    { cause: err },
  );
}

/** Mode for the new binary: the old one's permission bits (never group/other-writable, always owner rwx). */
function binaryMode(old: Stats | undefined): number {
  return old === undefined ? DEFAULT_BINARY_MODE : (old.mode & 0o755) | 0o700;
}

/** Writes `bytes` to a new file `path` (O_EXCL, no symlink followed), fsynced; optionally chowned and chmodded on the fd. */
function writeNew(path: string, bytes: Uint8Array, mode: number, owner: Stats | undefined): void {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    TEMP_MODE,
  );
  try {
    let offset = 0;
    while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset);
    fsyncSync(fd);
    // Root installs a root-owned binary: keep the old owner, never leave the one the temp was created with.
    if (owner !== undefined && process.geteuid?.() === 0) fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, mode);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Keeps the current binary as `connector.prev`: a hard link renamed over it, or a durable copy when links fail. */
function keepPrevious(installed: string, old: Stats): void {
  const temp = tempName(installed, "prev");
  try {
    try {
      linkSync(installed, temp);
    } catch (err) {
      if (!NO_LINK_ERRORS.has(errnoCode(err) ?? "")) throw err;
      writeNew(temp, readFileSync(installed), binaryMode(old), old);
    }
    renameSync(temp, prevPath(installed));
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * Installs `bytes` as `installed`, keeping the old binary as `connector.prev`. Any failure before the
 * final rename removes the temp file and leaves `installed` as it was: the check's own error is
 * thrown as it is, anything else as SWAP_FAILED with the errno.
 */
export async function swapBinary(options: SwapOptions): Promise<void> {
  const { bytes, check, hook } = options;
  const installed = realInstalled(options.installed);
  let old: Stats | undefined;
  try {
    old = statSync(installed);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw swapFailed(`read ${installed}`, err);
  }
  const temp = tempName(installed, "new");
  let step = `write ${temp}`;
  try {
    // The fsync is the split between "temp-written" and "temp-synced", so write and sync separately here.
    const fd = openSync(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      TEMP_MODE,
    );
    try {
      let offset = 0;
      while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset);
      await hook?.("temp-written");
      step = `fsync ${temp}`;
      fsyncSync(fd);
      await hook?.("temp-synced");
      step = `set the owner and mode of ${temp}`;
      if (old !== undefined && process.geteuid?.() === 0) fchownSync(fd, old.uid, old.gid);
      fchmodSync(fd, binaryMode(old));
      fsyncSync(fd);
    } finally {
      // Closed before the check: running a file still open for writing fails with ETXTBSY.
      closeSync(fd);
    }
    await hook?.("temp-executable");
    step = "check the new binary";
    if (check) {
      try {
        await check(temp);
      } catch (err) {
        throw isUpgradeError(err)
          ? err
          : new UpgradeError("SELF_CHECK_FAILED", `The new binary failed its check: ${describeError(err)}`, {
              cause: err,
            });
      }
    }
    await hook?.("checked");
    if (old !== undefined) {
      step = `keep ${installed} as ${prevPath(installed)}`;
      keepPrevious(installed, old);
    }
    await hook?.("prev-kept");
    step = `rename ${temp} over ${installed}`;
    renameSync(temp, installed);
  } catch (err) {
    rmSync(temp, { force: true });
    throw isUpgradeError(err) ? err : swapFailed(step, err);
  }
  await hook?.("renamed");
  try {
    fsyncDir(dirname(installed));
  } catch (err) {
    // The rename is done and visible; only durability across a power loss is in doubt.
    throw new UpgradeError(
      "SWAP_FAILED",
      `Installed the new binary but cannot fsync ${dirname(installed)} (${errnoCode(err) ?? describeError(err)}).`,
      { cause: err },
    );
  }
  await hook?.("dir-synced");
}

/**
 * Puts `connector.prev` back as `connector`: copied to a temp sibling (prev stays, so a rollback can
 * be repeated), fsynced, renamed over the installed binary, directory fsynced. The bad binary is not
 * kept. NO_PREVIOUS_BINARY when there is no `connector.prev`.
 */
export function restorePrevious(installed: string): void {
  installed = realInstalled(installed);
  const prev = prevPath(installed);
  let bytes: Buffer;
  let prevStats: Stats;
  try {
    const fd = openSync(prev, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      prevStats = fstatSync(fd);
      if (!prevStats.isFile()) throw Object.assign(new Error("not a regular file"), { code: "EINVAL" });
      bytes = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = errnoCode(err);
    if (code === "ENOENT" || code === "ELOOP")
      throw new UpgradeError(
        "NO_PREVIOUS_BINARY",
        `There is no previous binary to restore (${prev}: ${code === "ENOENT" ? "missing" : "a symbolic link"}).`,
        { cause: err },
      );
    throw swapFailed(`read ${prev}`, err);
  }
  const temp = tempName(installed, "restore");
  try {
    writeNew(temp, bytes, binaryMode(prevStats), prevStats);
    renameSync(temp, installed);
  } catch (err) {
    rmSync(temp, { force: true });
    throw swapFailed(`restore ${prev} as ${installed}`, err);
  }
  try {
    fsyncDir(dirname(installed));
  } catch (err) {
    throw new UpgradeError(
      "SWAP_FAILED",
      `Restored the previous binary but cannot fsync ${dirname(installed)} (${errnoCode(err) ?? describeError(err)}).`,
      { cause: err },
    );
  }
}
