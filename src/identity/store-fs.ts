/**
 * The file operations the identity store performs, behind an interface so tests can inject a
 * failure (a simulated crash) at any single step and check that what is left is still consistent.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { fsyncDir, writeNewFileDurably } from "../state/atomic-file.ts";
import { readStateFile } from "../state/state-dir-safety.ts";

export interface StoreFs {
  /** Creates one directory with `mode` (exact, whatever the umask); fails if it exists. */
  mkdir(path: string, mode: number): void;
  /** Creates a file exclusively with `mode`, writes all of `data`, fsyncs and closes it. */
  writeNewFile(path: string, data: string, mode: number): void;
  fsyncDir(path: string): void;
  rename(from: string, to: string): void;
  /** Removes a file or directory tree; no error if missing. */
  remove(path: string): void;
  exists(path: string): boolean;
  /** Whether this process may list and enter the directory `path` (false for an unreadable one). */
  canEnter(path: string): boolean;
  /** Last modification time, ms since the epoch. */
  mtimeMs(path: string): number;
  /** Permission bits (`mode & 0o7777`). */
  mode(path: string): number;
  readdir(path: string): string[];
  /** Reads a file as UTF-8 without following a symlink; throws if larger than `maxBytes`, not a regular file or someone else's. */
  readFile(path: string, maxBytes: number): string;
}

export const nodeStoreFs: StoreFs = {
  mkdir(path, mode) {
    mkdirSync(path, { mode });
    // The umask may have narrowed `mode`; make it exact, through an fd opened without following a
    // symlink: a chmod by path would follow one swapped in for the new directory.
    const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
  },
  writeNewFile: writeNewFileDurably,
  fsyncDir,
  rename: renameSync,
  remove(path) {
    rmSync(path, { recursive: true, force: true });
  },
  exists: existsSync,
  canEnter(path) {
    try {
      accessSync(path, constants.R_OK | constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  mtimeMs(path) {
    return statSync(path).mtimeMs;
  },
  mode(path) {
    return statSync(path).mode & 0o7777;
  },
  readdir(path) {
    return readdirSync(path);
  },
  readFile(path, maxBytes) {
    // Written by the connector itself, 0600; root may read another user's (`connector status` as root).
    return readStateFile(path, maxBytes, { owner: "self", privateMode: false, rootReadsAny: true });
  },
};
