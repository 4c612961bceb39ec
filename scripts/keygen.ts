/**
 * Makes one Ed25519 signing key pair for releases: a root key (kept offline, signs release-keys.json)
 * or the online release key (signs manifest.json).
 *
 *   bun run keygen -- --out DIR --name NAME     -> DIR/NAME.key (PKCS#8 PEM, 0600), DIR/NAME.pub (SPKI PEM)
 *
 * The private key is created exclusively: an existing DIR/NAME.key is never overwritten, because losing
 * a root key to a mistyped command would strand every connector that trusts it. DIR is created 0700.
 */
import { generateKeyPairSync } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { keyIdOf, spkiBase64OfPem } from "../src/upgrade/format.ts";

/** A refusal caused by the command line: the script prints it and exits 2. */
export class ToolUsageError extends Error {
  override readonly name = "ToolUsageError";
}

/** Key names become file names (and root names become part of a signature file's name). */
export const KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface GeneratedKey {
  readonly keyPath: string;
  readonly pubPath: string;
  /** format.ts keyIdOf of the public key. */
  readonly keyId: string;
}

function writeExclusive(path: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, "wx", mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST")
      throw new ToolUsageError(`${path} already exists: refusing to overwrite a key`);
    throw err;
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes DIR/NAME.key and DIR/NAME.pub; refuses when either exists. */
export function generateKey(dir: string, name: string): GeneratedKey {
  if (!KEY_NAME_PATTERN.test(name))
    throw new ToolUsageError(`invalid key name ${JSON.stringify(name)}: letters, digits, "-" and "_" only`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = join(dir, `${name}.key`);
  const pubPath = join(dir, `${name}.pub`);
  // Checked before the key is written so a leftover .pub never pairs with a new, different .key.
  if (existsSync(pubPath)) throw new ToolUsageError(`${pubPath} already exists: refusing to overwrite a key`);
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pub = publicKey.export({ format: "pem", type: "spki" }).toString();
  writeExclusive(keyPath, privateKey.export({ format: "pem", type: "pkcs8" }).toString(), 0o600);
  writeExclusive(pubPath, pub, 0o644);
  return { keyPath, pubPath, keyId: keyIdOf(spkiBase64OfPem(pub)) };
}

const USAGE = "usage: bun run keygen -- --out DIR --name NAME";

export function main(argv: string[]): number {
  try {
    let values: { out?: string; name?: string };
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { out: { type: "string" }, name: { type: "string" } },
        strict: true,
        allowPositionals: false,
      }));
    } catch (err) {
      throw new ToolUsageError(err instanceof Error ? err.message : String(err));
    }
    if (!values.out || !values.name) throw new ToolUsageError("--out and --name are required");
    const key = generateKey(values.out, values.name);
    console.log(`wrote ${key.keyPath} (private, keep offline) and ${key.pubPath}`);
    console.log(`key id ${key.keyId}`);
    return 0;
  } catch (err) {
    if (err instanceof ToolUsageError) {
      console.error(`keygen: ${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(`keygen: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
