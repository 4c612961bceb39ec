/**
 * Files that cross the privilege split. The unprivileged daemon writes the staged release and the
 * request; root (the upgrade unit) reads them and writes the result and state back. So root reads a
 * file the daemon wrote only through an fd opened without following a symlink, checks that fd (a
 * regular file, owned by the expected user, not writable by others, not over its cap) and keeps the
 * bytes it read: the daemon's user cannot swap the file between the check and the use. And what root
 * writes is chowned to the state dir's owner, so the daemon can read and replace it afterwards.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { errnoCode } from "../errors.ts";
import { fsyncDir, tempSibling } from "../state/atomic-file.ts";
import { UpgradeError } from "./errors.ts";

export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/** The owner of the state dir: who files written by root are handed to, and who staged files must belong to. */
export function stateDirOwner(stateDir: string): FileOwner {
  const stats = statSync(stateDir);
  return { uid: stats.uid, gid: stats.gid };
}

/** The owner root should chown its files to, or undefined when this process is not root (its files are its own). */
export function ownerForWrites(stateDir: string): FileOwner | undefined {
  return process.geteuid?.() === 0 ? stateDirOwner(stateDir) : undefined;
}

/** Replaces `target` atomically (temp, fsync, rename, dir fsync); the temp is chowned to `owner` on its fd first. */
export function writeOwnedFileAtomic(target: string, data: string | Uint8Array, mode: number, owner?: FileOwner): void {
  const temp = tempSibling(target);
  try {
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      const bytes = typeof data === "string" ? Buffer.from(data) : data;
      let offset = 0;
      while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset);
      if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, target);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  fsyncDir(dirname(target));
}

export interface OwnedFileRule {
  /** The uid the file must belong to (the state dir's owner). */
  readonly uid: number;
  /** Root may own it too (files the upgrade unit wrote and handed over, read back by the daemon). */
  readonly rootToo?: boolean;
  readonly maxBytes: number;
}

function unsafe(path: string, why: string, cause?: unknown): UpgradeError {
  return new UpgradeError("STAGING_UNSAFE", `${path} ${why}; it is not used.`, { cause });
}

/**
 * Reads `path` whole into memory, safely (see the file comment). Throws the ENOENT error as it is for
 * a missing file (the caller decides what missing means), STAGING_UNSAFE for anything refused.
 */
export function readOwnedFile(path: string, rule: OwnedFileRule): Buffer {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted under the name must not hang root in open().
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === "ENOENT") throw err;
    throw unsafe(path, code === "ELOOP" ? "is a symbolic link" : `cannot be opened (${code ?? "error"})`, err);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw unsafe(path, "is not a regular file");
    if (stats.uid !== rule.uid && !(rule.rootToo === true && stats.uid === 0))
      throw unsafe(path, `is owned by uid ${stats.uid}, not by the state dir's owner (uid ${rule.uid})`);
    if ((stats.mode & 0o022) !== 0)
      throw unsafe(path, `is writable by other users (mode ${(stats.mode & 0o7777).toString(8).padStart(4, "0")})`);
    if (stats.size > rule.maxBytes) throw unsafe(path, `is ${stats.size} bytes, over the ${rule.maxBytes}-byte limit`);
    // Read one byte past the cap: a file growing after the fstat is caught too.
    const buffer = Buffer.alloc(Math.min(stats.size, rule.maxBytes) + 1);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, null);
      if (n === 0) break;
      read += n;
    }
    if (read > stats.size) throw unsafe(path, "changed while it was read");
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
