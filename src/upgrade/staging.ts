/**
 * The hand-off between the unprivileged daemon and the root upgrade unit, all under
 * `<state-dir>/upgrade/` (0700, the daemon's user):
 *
 *   staged/            the verified release: connector (0700) and the signed files beside it (0600)
 *   request.json       { schema, id, action: "apply"|"rollback", at }, written atomically LAST; the
 *                      systemd path unit starts `connector upgrade --apply-staged` when it appears
 *   result.json        { schema, id, action, result, from, to?, code?, message?, at }, written by
 *                      whoever applied; the daemon polls it
 *   apply.lock         flock'd by whoever applies, so two applies never interleave
 *
 * Root trusts nothing here: every file is read through `readOwnedFile` (no symlink, regular, owned by
 * the state dir's owner, capped) and the release is verified again from those bytes.
 */
import { randomUUID } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
} from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { errnoCode } from "../errors.ts";
import { fsyncDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../state/atomic-file.ts";
import { UpgradeError } from "./errors.ts";
import {
  KEYSET_FILE,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  MAX_BINARY_BYTES,
  MAX_KEYSET_BYTES,
  MAX_MANIFEST_BYTES,
  keysetSignatureFile,
} from "./format.ts";
import { type FileOwner, readOwnedFile, stateDirOwner, writeOwnedFileAtomic } from "./owned-file.ts";
import { ensureUpgradeDir, isUpgradeDirPinned, upgradeDir } from "./state.ts";
import type { ReleaseFiles } from "./verify.ts";

export const UPGRADE_DIR = "upgrade";
export const STAGED_DIR = "staged";
export const STAGED_BINARY = "connector";
export const REQUEST_FILE = "request.json";
export const RESULT_FILE = "result.json";
export const APPLY_LOCK_FILE = "apply.lock";
const STAGED_BINARY_MODE = 0o700;
/** A signature file is 64 bytes; a little room lets verification say SIGNATURE_INVALID rather than "unsafe". */
const MAX_SIGNATURE_FILE_BYTES = 4096;
/** More keyset signatures than any build has roots: refused before they are read. */
const MAX_KEYSET_SIGNATURES = 32;
const MAX_REQUEST_BYTES = 4096;
const MAX_RESULT_BYTES = 16 * 1024;
const KEYSET_SIGNATURE_NAME = /^release-keys\.json\.([0-9a-f]{16})\.sig$/;

export const stagedDir = (stateDir: string): string => join(upgradeDir(stateDir), STAGED_DIR);
export const stagedBinaryPath = (stateDir: string): string => join(stagedDir(stateDir), STAGED_BINARY);
export const requestPath = (stateDir: string): string => join(upgradeDir(stateDir), REQUEST_FILE);
export const resultPath = (stateDir: string): string => join(upgradeDir(stateDir), RESULT_FILE);
export const applyLockPath = (stateDir: string): string => join(upgradeDir(stateDir), APPLY_LOCK_FILE);

const Timestamp = v.pipe(v.string(), v.isoTimestamp());
const Id = v.pipe(v.string(), v.regex(/^[0-9A-Za-z-]{1,64}$/));
export const UpgradeActionSchema = v.picklist(["apply", "rollback"]);
export type UpgradeAction = v.InferOutput<typeof UpgradeActionSchema>;

export const UpgradeRequestSchema = v.strictObject({
  schema: v.literal(1),
  id: Id,
  action: UpgradeActionSchema,
  at: Timestamp,
});
export type UpgradeRequest = v.InferOutput<typeof UpgradeRequestSchema>;

export const UpgradeResultSchema = v.strictObject({
  schema: v.literal(1),
  id: Id,
  action: UpgradeActionSchema,
  result: v.picklist(["swapped", "rolled-back", "refused", "failed"]),
  from: v.pipe(v.string(), v.maxLength(64)),
  to: v.optional(v.pipe(v.string(), v.maxLength(64))),
  code: v.optional(v.pipe(v.string(), v.maxLength(64))),
  message: v.optional(v.pipe(v.string(), v.maxLength(2000))),
  at: Timestamp,
});
export type UpgradeResult = v.InferOutput<typeof UpgradeResultSchema>;

function unsafe(path: string, why: string, cause?: unknown): UpgradeError {
  return new UpgradeError("STAGING_UNSAFE", `${path} ${why}; it is not used.`, { cause });
}

/**
 * Makes `dir` a private directory (0700) if missing, chowned to `owner` when given (root creating it
 * for the daemon). An existing one must be a real directory (not a symlink) owned by `owner` (or
 * this user) or root, not writable by group or others; else STAGING_UNSAFE.
 */
function ensurePrivateDir(dir: string, owner: FileOwner | undefined): void {
  let created = false;
  try {
    mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    created = true;
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw err;
  }
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    throw unsafe(
      dir,
      errnoCode(err) === "ELOOP" ? "is a symbolic link" : `is not a directory (${errnoCode(err) ?? "error"})`,
      err,
    );
  }
  try {
    if (created) {
      if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, PRIVATE_DIR_MODE);
      return;
    }
    const stats = fstatSync(fd);
    const expected = owner?.uid ?? process.geteuid?.();
    if (expected !== undefined && stats.uid !== expected && stats.uid !== 0)
      throw unsafe(dir, `is owned by uid ${stats.uid}, not uid ${expected}`);
    if ((stats.mode & 0o022) !== 0) throw unsafe(dir, "is writable by other users");
  } finally {
    closeSync(fd);
  }
}

/** Removes the staged release (a symlink planted as `staged` is removed, not followed). */
export function clearStaged(stateDir: string): void {
  const dir = stagedDir(stateDir);
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    // Not a directory (a symlink or file planted as `staged`): the name goes, never what it points to.
    if (errnoCode(err) !== "ENOENT") removeName(dir);
    return;
  }
  // Never a recursive delete in a directory the daemon controls: only the entries of this one
  // directory, through the fd that was opened (a subdirectory swapped for a symlink is unlinked as a link).
  try {
    const opened = `/proc/self/fd/${fd}`;
    for (const name of readdirSync(opened)) removeName(join(opened, name));
  } finally {
    closeSync(fd);
  }
  try {
    rmdirSync(dir);
  } catch {
    // Something that is not a file was left inside: harmless, it is never read.
  }
}

/** Removes one name without following it: a file or link is unlinked, an empty directory removed, anything else left. */
function removeName(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EISDIR" || code === "EPERM") {
      try {
        rmdirSync(path);
      } catch {
        // a non-empty directory planted there: left alone
      }
    }
  }
}

/**
 * Stages a verified release for the upgrade unit: replaces `staged/` with the signed files (0600) and
 * moves the downloaded binary in as `staged/connector` (0700). Call `writeRequest` after this returns.
 */
export function writeStaged(stateDir: string, files: ReleaseFiles, downloadedBinaryPath: string): void {
  for (const rootId of files.keysetSignatures.keys()) {
    if (!KEYSET_SIGNATURE_NAME.test(keysetSignatureFile(rootId)))
      throw unsafe(keysetSignatureFile(rootId), "is not a key set signature name");
  }
  ensureUpgradeDir(stateDir);
  clearStaged(stateDir);
  const dir = stagedDir(stateDir);
  ensurePrivateDir(dir, undefined);
  writeOwnedFileAtomic(join(dir, MANIFEST_FILE), files.manifest, PRIVATE_FILE_MODE);
  if (files.manifestSignature !== undefined)
    writeOwnedFileAtomic(join(dir, MANIFEST_SIGNATURE_FILE), files.manifestSignature, PRIVATE_FILE_MODE);
  writeOwnedFileAtomic(join(dir, KEYSET_FILE), files.keyset, PRIVATE_FILE_MODE);
  for (const [rootId, signature] of files.keysetSignatures)
    writeOwnedFileAtomic(join(dir, keysetSignatureFile(rootId)), signature, PRIVATE_FILE_MODE);
  const binary = join(dir, STAGED_BINARY);
  try {
    renameSync(downloadedBinaryPath, binary);
  } catch (err) {
    if (errnoCode(err) !== "EXDEV") throw err;
    // The download lives on another file system: copy it durably, then drop the original.
    writeOwnedFileAtomic(binary, readFileSync(downloadedBinaryPath), STAGED_BINARY_MODE);
    rmSync(downloadedBinaryPath, { force: true });
  }
  const fd = openSync(binary, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    fchmodSync(fd, STAGED_BINARY_MODE);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dir);
}

/** A directory root is about to read from: a real directory of the owner (or root), not shared. */
function assertOwnedDir(dir: string, uid: number): void {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(dir);
  } catch (err) {
    throw unsafe(
      dir,
      errnoCode(err) === "ENOENT" ? "is missing (nothing is staged)" : `cannot be read (${errnoCode(err) ?? "error"})`,
      err,
    );
  }
  if (stats.isSymbolicLink()) throw unsafe(dir, "is a symbolic link");
  if (!stats.isDirectory()) throw unsafe(dir, "is not a directory");
  if (stats.uid !== uid && stats.uid !== 0)
    throw unsafe(dir, `is owned by uid ${stats.uid}, not by the state dir's owner (uid ${uid})`);
  if ((stats.mode & 0o022) !== 0) throw unsafe(dir, "is writable by other users");
}

function readRequired(path: string, uid: number, maxBytes: number): Buffer {
  try {
    return readOwnedFile(path, { uid, maxBytes });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") throw unsafe(path, "is missing", err);
    throw err;
  }
}

/**
 * Reads the staged release into memory for root: each file checked on its opened fd (see
 * readOwnedFile) and owned by the state dir's owner. Any violation is STAGING_UNSAFE naming the file.
 */
export function readStaged(stateDir: string): { files: ReleaseFiles; binary: Uint8Array } {
  const uid = stateDirOwner(stateDir).uid;
  if (!isUpgradeDirPinned(stateDir)) assertOwnedDir(upgradeDir(stateDir), uid);
  const dir = stagedDir(stateDir);
  assertOwnedDir(dir, uid);
  const manifest = readRequired(join(dir, MANIFEST_FILE), uid, MAX_MANIFEST_BYTES);
  let manifestSignature: Buffer | undefined;
  try {
    manifestSignature = readOwnedFile(join(dir, MANIFEST_SIGNATURE_FILE), { uid, maxBytes: MAX_SIGNATURE_FILE_BYTES });
  } catch (err) {
    // Missing is for verification to call SIGNATURE_MISSING.
    if (errnoCode(err) !== "ENOENT") throw err;
  }
  const keyset = readRequired(join(dir, KEYSET_FILE), uid, MAX_KEYSET_BYTES);
  const names = readdirSync(dir).filter((name) => KEYSET_SIGNATURE_NAME.test(name));
  if (names.length > MAX_KEYSET_SIGNATURES)
    throw unsafe(dir, `holds ${names.length} key set signatures, over the limit of ${MAX_KEYSET_SIGNATURES}`);
  const keysetSignatures = new Map<string, Uint8Array>();
  for (const name of names)
    keysetSignatures.set(
      KEYSET_SIGNATURE_NAME.exec(name)![1]!,
      readRequired(join(dir, name), uid, MAX_SIGNATURE_FILE_BYTES),
    );
  const binary = readRequired(join(dir, STAGED_BINARY), uid, MAX_BINARY_BYTES);
  return { files: { manifest, manifestSignature, keyset, keysetSignatures }, binary };
}

/** Asks for an apply or rollback: request.json written atomically (the path unit fires on it). Returns its id. */
export function writeRequest(
  stateDir: string,
  action: UpgradeAction,
  now: Date = new Date(),
  owner?: FileOwner,
): string {
  ensureUpgradeDir(stateDir, owner);
  const id = randomUUID();
  const request: UpgradeRequest = { schema: 1, id, action, at: now.toISOString() };
  writeOwnedFileAtomic(requestPath(stateDir), `${JSON.stringify(request)}\n`, PRIVATE_FILE_MODE, owner);
  return id;
}

function parseJson<S extends v.GenericSchema>(path: string, bytes: Buffer, schema: S): v.InferOutput<S> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw unsafe(path, "is not JSON", err);
  }
  const parsed = v.safeParse(schema, value);
  if (!parsed.success) throw unsafe(path, `does not match its schema (${parsed.issues[0].message})`);
  return parsed.output;
}

/**
 * The pending request; undefined when there is none. A symlink, a foreign file or junk is
 * STAGING_UNSAFE (never followed); the caller removes it all the same.
 */
export function readRequest(stateDir: string): UpgradeRequest | undefined {
  const path = requestPath(stateDir);
  let bytes: Buffer;
  try {
    bytes = readOwnedFile(path, { uid: stateDirOwner(stateDir).uid, rootToo: true, maxBytes: MAX_REQUEST_BYTES });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
  return parseJson(path, bytes, UpgradeRequestSchema);
}

/** Removes request.json whatever it is (file, symlink, directory), so a PathExists= unit does not fire again. */
export function removeRequest(stateDir: string): void {
  removeName(requestPath(stateDir));
  try {
    fsyncDir(upgradeDir(stateDir));
  } catch {
    // The removal happened; only its durability across a power loss is in doubt.
  }
}

export function writeResult(stateDir: string, result: Omit<UpgradeResult, "schema">, owner?: FileOwner): void {
  ensureUpgradeDir(stateDir, owner);
  const full: UpgradeResult = { schema: 1, ...result };
  writeOwnedFileAtomic(resultPath(stateDir), `${JSON.stringify(full)}\n`, PRIVATE_FILE_MODE, owner);
}

/** The last result; undefined when there is none or it cannot be trusted (symlink, foreign, junk). */
export function readResult(stateDir: string): UpgradeResult | undefined {
  const path = resultPath(stateDir);
  try {
    return parseJson(
      path,
      readOwnedFile(path, { uid: stateDirOwner(stateDir).uid, rootToo: true, maxBytes: MAX_RESULT_BYTES }),
      UpgradeResultSchema,
    );
  } catch {
    return undefined;
  }
}
