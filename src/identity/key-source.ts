/**
 * Where the provisioning key comes from, first found wins: `--key`, `--key-file`, the
 * environment variable `CONNECTOR_PROVISIONING_KEY`, the file `<state-dir>/provision_key`. The raw
 * text is wrapped in a `Secret` at once and decoded with the key codec (its errors exit 10).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { ConnectorError, errnoCode, ExitCode } from "../errors.ts";
import { Secret } from "../secret.ts";
import { assertStateDirSafe, readStateFile, UnsafeStateFileError } from "../state/state-dir-safety.ts";
import { MAX_KEY_FILE_BYTES } from "./config.ts";
import { decodeProvisioningKey, type ProvisioningKey } from "./provisioning-key.ts";

export const KEY_ENV_VAR = "CONNECTOR_PROVISIONING_KEY";
export const STATE_KEY_FILE = "provision_key";

export type KeySourceKind = "flag" | "key-file" | "env" | "state-file";

export interface KeySourceInput {
  /** `--key` value. */
  readonly key?: string | undefined;
  /** `--key-file` path. */
  readonly keyFile?: string | undefined;
  readonly env: Record<string, string | undefined>;
  readonly stateDir: string;
  /**
   * Whose safety the state dir is judged for: this process (default), or its owner — for root looking
   * at the service user's dir without using it (preflight run by install.sh or an operator with sudo).
   */
  readonly stateDirJudgedFor?: "self" | "owner";
}

export interface FoundKey {
  readonly key: ProvisioningKey;
  readonly source: KeySourceKind;
  /** Human description of the source for logs (`--key-file /path`), never the key. */
  readonly origin: string;
}

/** No source had a key. */
export class NoProvisioningKeyError extends ConnectorError {
  override readonly name = "NoProvisioningKeyError";
  constructor(message: string) {
    super("NO_KEY", message, ExitCode.noKey);
  }
}

/**
 * Reads `<state-dir>/provision_key`, or undefined when there is none. The state dir must be safe (a
 * key planted by another user would enroll this connector with their cloud), and the file a regular
 * one owned by us or root, read without following a symlink.
 */
function readStateKeyFile(stateDir: string, path: string, judgedFor: "self" | "owner"): string | undefined {
  assertStateDirSafe(stateDir, judgedFor);
  try {
    return readStateFile(path, MAX_KEY_FILE_BYTES, {
      owner: "self-or-root",
      privateMode: false,
      rootReadsAny: judgedFor === "owner",
    });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    if (err instanceof UnsafeStateFileError) throw err;
    throw new NoProvisioningKeyError(`Cannot read the provisioning key file ${path}: ${errnoCode(err) ?? "error"}.`);
  }
}

/** Reads at most `MAX_KEY_FILE_BYTES`; returns undefined when the file does not exist. */
function readKeyFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new NoProvisioningKeyError(
      `Cannot read the provisioning key file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}.`,
    );
  }
  try {
    if (fstatSync(fd).isDirectory())
      throw new NoProvisioningKeyError(`The provisioning key file ${path} is a directory.`);
    // Read to EOF rather than trusting the size, so pipes (`--key-file /dev/stdin`) work too.
    const buffer = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, null);
      if (n === 0) break;
      read += n;
    }
    if (read > MAX_KEY_FILE_BYTES) {
      throw new NoProvisioningKeyError(
        `The provisioning key file ${path} is over ${MAX_KEY_FILE_BYTES} bytes; a key is much shorter. Is it the right file?`,
      );
    }
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function found(raw: Secret<string>, source: KeySourceKind, origin: string): FoundKey {
  return { key: decodeProvisioningKey(raw.reveal()), source, origin };
}

/** Finds and decodes the provisioning key; throws `NoProvisioningKeyError` (exit 22) when there is none. */
export function findProvisioningKey(input: KeySourceInput): FoundKey {
  if (input.key !== undefined && input.key !== "") return found(new Secret(input.key), "flag", "--key");
  if (input.keyFile !== undefined && input.keyFile !== "") {
    const text = readKeyFile(input.keyFile);
    if (text === undefined)
      throw new NoProvisioningKeyError(`The provisioning key file ${input.keyFile} (--key-file) does not exist.`);
    return found(new Secret(text), "key-file", `--key-file ${input.keyFile}`);
  }
  const fromEnv = input.env[KEY_ENV_VAR];
  if (fromEnv !== undefined && fromEnv.trim() !== "")
    return found(new Secret(fromEnv), "env", `environment variable ${KEY_ENV_VAR}`);
  const statePath = join(input.stateDir, STATE_KEY_FILE);
  const fromState = readStateKeyFile(input.stateDir, statePath, input.stateDirJudgedFor ?? "self");
  if (fromState !== undefined) return found(new Secret(fromState), "state-file", statePath);
  throw new NoProvisioningKeyError(
    `No provisioning key found. Give one with --key 'cnk1.…', --key-file PATH, the environment variable ${KEY_ENV_VAR}, ` +
      `or the file ${statePath}. Create a key for the connector group in the console.`,
  );
}
