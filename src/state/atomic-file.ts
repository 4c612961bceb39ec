/**
 * Atomic, durable writes of state files. Every file the connector keeps is written to a temporary
 * sibling, fsynced, renamed over the target and the directory fsynced, so a crash or kill -9 at any
 * moment leaves either the old or the new content — never a torn file.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, basename, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { errnoCode, StateError } from "../errors.ts";
import { assertStateDirSafe } from "./state-dir-safety.ts";

/** Mode of directories that hold secrets: owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of files that hold secrets (private keys, tokens). */
export const PRIVATE_FILE_MODE = 0o600;

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `dir` (and missing parents) 0700 when it does not exist. An existing directory, or a
 * symlink to one, is never chmodded: it may be shared or belong to someone else. It must be safe
 * though (owned by us or root, not group/other-writable: `assertStateDirSafe`), else this throws
 * `STATE_DIR_UNSAFE`. Anything else at that path is a `STATE_DIR_NOT_A_DIRECTORY`.
 *
 * The path is resolved first and created one component at a time, and only a component this call's
 * own mkdir created is chmodded: comparing path strings (`a//b`, `a/b/`) could climb into existing
 * parents, up to `/`.
 */
export function ensureStateDir(dir: string): void {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let d = target; ; d = dirname(d)) {
    const existing = statOrUndefined(d);
    if (existing) {
      if (!existing.isDirectory()) throw notADirectory(d === target ? dir : d);
      break;
    }
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      if (errnoCode(err) === "EEXIST") continue; // created by someone else meanwhile: theirs, not chmodded
      throw err;
    }
    // The umask may have narrowed the mode; make it exact. O_NOFOLLOW: a directory swapped for a
    // symlink meanwhile is not followed.
    const fd = openSync(d, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, PRIVATE_DIR_MODE);
    } finally {
      closeSync(fd);
    }
  }
  if (!statSync(target).isDirectory()) throw notADirectory(dir);
  assertStateDirSafe(dir);
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

function notADirectory(dir: string): StateError {
  return new StateError(
    "STATE_DIR_NOT_A_DIRECTORY",
    `The state dir ${dir} exists and is not a directory. Remove it or choose another --state-dir.`,
  );
}

/**
 * Proves the file system takes a new file now: creates `path` exclusively, writes `bytes` bytes,
 * fsyncs, removes it. A read-only, full or foreign-owned state dir fails here, before anything is
 * spent that a failed write afterwards would waste (a provisioning key use).
 */
export function probeWritable(path: string, bytes: number): void {
  try {
    writeNewFileDurably(path, new Uint8Array(bytes), PRIVATE_FILE_MODE);
  } finally {
    try {
      rmSync(path, { force: true });
    } catch {
      // A probe left behind is a harmless temp file; the write's own error matters more.
    }
  }
}

/** A temp name next to `target`, on the same filesystem so that rename is atomic. */
export function tempSibling(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes bytes to a new file exclusively with `mode`, fsyncs it and closes it. */
export function writeNewFileDurably(path: string, data: string | Uint8Array, mode: number): void {
  const fd = openSync(path, "wx", mode);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let offset = 0;
    while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset);
    // The umask may have narrowed the mode given to open; make it exact, on the fd: a chmod by path
    // after close would follow a symlink swapped in meanwhile.
    fchmodSync(fd, mode);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `target` atomically with `data`: temp file, fsync, rename, fsync of the directory. */
export function writeFileAtomic(target: string, data: string | Uint8Array, mode = PRIVATE_FILE_MODE): void {
  const tmp = tempSibling(target);
  try {
    writeNewFileDurably(tmp, data, mode);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(target));
}
