/**
 * Atomic, durable writes of state files. Every file the connector keeps is written to a temporary
 * sibling, fsynced, renamed over the target and the directory fsynced, so a crash or kill -9 at any
 * moment leaves either the old or the new content — never a torn file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, chmodSync, writeSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

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

/** Creates `dir` (and parents) if missing and forces it to 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if ((statSync(dir).mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
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
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // The umask may have narrowed the mode given to open; make it exact.
  chmodSync(path, mode);
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
