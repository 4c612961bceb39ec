/**
 * The identity store: `<state-dir>/identity/` holds `identity.json` and `key.pem` (0600) in a
 * directory the store creates 0700. A state dir the connector creates is 0700 too; an existing one is
 * used as it is if no other user can write into it, refused otherwise (see `ensureStateDir`).
 *
 * Atomic as a whole: a new identity is written into a fresh temp directory next to `identity/`, each
 * file fsynced, the temp directory fsynced, then renamed into place and the state dir fsynced. A
 * replacement (`enroll --force`) renames the old directory aside to `.identity.old` first, renames the
 * new one in, then removes the old. A crash at any point leaves one of:
 *   - `identity/` complete (old or new), maybe with a stale temp dir or `.identity.old` beside it;
 *   - no `identity/` but a complete `.identity.old` (crash between the two renames).
 * `recover()` (run by `load()` and `save()`) turns each of these back into a single complete
 * `identity/`; `read()` gives the same answer without writing anything (for `status`).
 * Concurrent enrollments into one state dir are not coordinated beyond this: without `--force` the
 * final rename cannot replace an existing identity, so the first one wins.
 */
import { join } from "node:path";
import * as v from "valibot";
import { ConnectorError, ExitCode, StateError } from "../errors.ts";
import { Secret } from "../secret.ts";
import { ensureStateDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, tempSibling } from "../state/atomic-file.ts";
import { assertStateDirSafe, UnsafeStateFileError } from "../state/state-dir-safety.ts";
import { MAX_IDENTITY_FILE_BYTES, STALE_TEMP_DIR_MS } from "./config.ts";
import { IdentityFileSchema, identityProblem, type Identity, type IdentityRecord } from "./identity.ts";
import { nodeStoreFs, type StoreFs } from "./store-fs.ts";

export const IDENTITY_DIR = "identity";
export const IDENTITY_FILE = "identity.json";
export const KEY_FILE = "key.pem";
const OLD_DIR = ".identity.old";
const TEMP_PATTERN = /^\.identity\.[0-9a-f]{12}\.tmp$/;

/** An identity exists and the caller did not ask to replace it. */
export class IdentityExistsError extends ConnectorError {
  override readonly name = "IdentityExistsError";
  constructor(dir: string) {
    super(
      "IDENTITY_EXISTS",
      `This connector is already enrolled (${dir}). Nothing was changed. To replace its identity, run enroll again with --force.`,
      ExitCode.identityExists,
    );
  }
}

function corrupt(path: string, reason: string): StateError {
  return new StateError(
    "IDENTITY_CORRUPT",
    `The stored identity in ${path} is unusable: ${reason}. Re-enroll with "connector enroll --force".`,
  );
}

export class IdentityStore {
  readonly stateDir: string;
  readonly dir: string;
  readonly #oldDir: string;
  readonly #fs: StoreFs;
  readonly #now: () => number;

  constructor(stateDir: string, fs: StoreFs = nodeStoreFs, now: () => number = Date.now) {
    this.stateDir = stateDir;
    this.dir = join(stateDir, IDENTITY_DIR);
    this.#oldDir = join(stateDir, OLD_DIR);
    this.#fs = fs;
    this.#now = now;
  }

  /** True when an identity is stored (or recoverable from an interrupted replacement). */
  exists(): boolean {
    return this.#fs.exists(this.dir) || this.#fs.exists(this.#oldDir);
  }

  /**
   * Finishes or undoes an interrupted save and removes temp directories left by a crash (only old
   * ones: a young one may belong to an enrollment running right now).
   */
  recover(): void {
    if (!this.#fs.exists(this.stateDir)) return;
    // `.identity.old` is renamed into place below: not from a dir another user could plant it in.
    assertStateDirSafe(this.stateDir);
    const hasCurrent = this.#fs.exists(this.dir);
    if (this.#fs.exists(this.#oldDir)) {
      // Crash between "old aside" and "new in": the old one is the complete identity.
      if (!hasCurrent) this.#fs.rename(this.#oldDir, this.dir);
      // Crash after "new in": the old one is garbage.
      else this.#fs.remove(this.#oldDir);
      this.#fs.fsyncDir(this.stateDir);
    }
    for (const entry of this.#fs.readdir(this.stateDir)) {
      const path = join(this.stateDir, entry);
      if (TEMP_PATTERN.test(entry) && this.#now() - this.#fs.mtimeMs(path) > STALE_TEMP_DIR_MS) this.#fs.remove(path);
    }
  }

  /** Recovers, then reads the identity; undefined when not enrolled. */
  load(): Identity | undefined {
    this.recover();
    return this.read();
  }

  /** Reads the identity without writing anything; undefined when not enrolled. */
  read(): Identity | undefined {
    // Without this, an operator without access to a 0700 state dir would be told "not enrolled".
    if (this.#fs.exists(this.stateDir) && !this.#fs.canEnter(this.stateDir)) {
      throw new StateError(
        "IDENTITY_UNREADABLE",
        `Cannot read the state dir ${this.stateDir}: permission denied. Run as root or as the connector's user.`,
      );
    }
    if (this.#fs.exists(this.dir)) return this.#readDir(this.dir);
    if (this.#fs.exists(this.#oldDir)) return this.#readDir(this.#oldDir);
    return undefined;
  }

  #readDir(dir: string): Identity {
    const jsonPath = join(dir, IDENTITY_FILE);
    const keyPath = join(dir, KEY_FILE);
    let text: string;
    let keyPem: string;
    try {
      text = this.#fs.readFile(jsonPath, MAX_IDENTITY_FILE_BYTES);
      keyPem = this.#fs.readFile(keyPath, MAX_IDENTITY_FILE_BYTES);
    } catch (err) {
      if (err instanceof UnsafeStateFileError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EACCES") {
        throw new StateError(
          "IDENTITY_UNREADABLE",
          `Cannot read the identity in ${dir}: permission denied. Run as the connector's user or root.`,
        );
      }
      throw corrupt(dir, code === "ENOENT" ? "a file is missing" : `it cannot be read (${code ?? "error"})`);
    }
    // Like ssh with an unprotected key: refused rather than used, so the exposure gets fixed.
    const keyMode = this.#fs.mode(keyPath);
    if ((keyMode & 0o077) !== 0) {
      throw new StateError(
        "IDENTITY_KEY_EXPOSED",
        `The private key ${keyPath} is readable or writable by other users (mode ${keyMode.toString(8).padStart(4, "0")}); it is not used. ` +
          `Run: chmod 600 ${keyPath} (and check who may have read it; if in doubt, re-enroll with "connector enroll --force").`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw corrupt(jsonPath, "it is not JSON");
    }
    const parsed = v.safeParse(IdentityFileSchema, json);
    if (!parsed.success) {
      const where = parsed.issues[0]?.path?.map((p) => String(p.key)).join(".") || "(root)";
      throw corrupt(jsonPath, `field ${where} is invalid`);
    }
    const identity: Identity = { ...parsed.output, privateKeyPem: new Secret(keyPem) };
    const problem = identityProblem(identity);
    if (problem) throw corrupt(dir, problem);
    return identity;
  }

  /**
   * Stores `identity` atomically. Without `replace`, an existing identity is never touched
   * (`IdentityExistsError`, exit 20). On any failure nothing half-written is left behind.
   */
  save(identity: Identity, options: { replace: boolean }): void {
    const fs = this.#fs;
    ensureStateDir(this.stateDir);
    this.recover();
    if (!options.replace && this.exists()) throw new IdentityExistsError(this.dir);
    const record: IdentityRecord = v.parse(IdentityFileSchema, { ...identity, privateKeyPem: undefined });
    const temp = tempSibling(this.dir); // `.identity.<hex>.tmp`, what TEMP_PATTERN recognises
    let movedOld = false;
    try {
      fs.mkdir(temp, PRIVATE_DIR_MODE);
      fs.writeNewFile(join(temp, KEY_FILE), identity.privateKeyPem.reveal(), PRIVATE_FILE_MODE);
      fs.writeNewFile(join(temp, IDENTITY_FILE), `${JSON.stringify(record, null, 2)}\n`, PRIVATE_FILE_MODE);
      fs.fsyncDir(temp);
      if (options.replace && fs.exists(this.dir)) {
        fs.rename(this.dir, this.#oldDir);
        movedOld = true;
      }
      this.#renameIn(temp);
      fs.fsyncDir(this.stateDir);
    } catch (err) {
      this.#undo(temp, movedOld);
      throw err;
    }
    if (movedOld) {
      // The new identity is durable; the old one is now garbage (recover() removes it if this fails).
      try {
        fs.remove(this.#oldDir);
      } catch {
        // Left for the next recover().
      }
    }
  }

  #renameIn(temp: string): void {
    try {
      this.#fs.rename(temp, this.dir);
    } catch (err) {
      // rename(2) of a directory onto a non-empty one fails: another enrollment won the race.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") throw new IdentityExistsError(this.dir);
      throw err;
    }
  }

  /** Best effort after a failed save: drop the temp dir, put the old identity back. */
  #undo(temp: string, movedOld: boolean): void {
    try {
      this.#fs.remove(temp);
      if (movedOld && !this.#fs.exists(this.dir)) this.#fs.rename(this.#oldDir, this.dir);
    } catch {
      // Whatever is left is handled by recover() on the next load or save.
    }
  }
}
