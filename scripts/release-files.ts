/**
 * The pieces of a release directory, as pure functions over keys and bytes (scripts/release.ts does the
 * building and writing): the signing keys, the signed manifest, the root-signed release-key set and
 * install.sh with the roots and release host baked in. Everything is checked against the valibot
 * schemas of src/upgrade/format.ts before it is signed, so a release the connector would refuse as
 * malformed is never published.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { checkTrustRoots, isoSeconds } from "../build.ts";
import {
  FORMAT_SCHEMA,
  type Keyset,
  KeysetSchema,
  keyIdOf,
  type Manifest,
  ManifestSchema,
  MAX_KEYSET_BYTES,
  MAX_MANIFEST_BYTES,
  PRODUCT,
  renderManifest,
  SIGNATURE_BYTES,
  type Target,
} from "../src/upgrade/format.ts";
import { ToolUsageError } from "./keygen.ts";

export interface SigningKey {
  readonly file: string;
  readonly privateKey: KeyObject;
  /** Base64 SPKI DER of the public half. */
  readonly spki: string;
  readonly id: string;
}

function loadSigningKey(file: string): SigningKey {
  // Like ssh with an unprotected key: a signing key others can read may already be someone else's.
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0)
    throw new ToolUsageError(
      `${file} is readable or writable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it, and consider the key exposed`,
    );
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ToolUsageError(`${file} is not a readable PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== "ed25519") throw new ToolUsageError(`${file} is not an Ed25519 key`);
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" }).toString("base64");
  return { file, privateKey, spki, id: keyIdOf(spki) };
}

/** The release signing keys of a key directory: root-*.key (≥ ROOT_THRESHOLD distinct) and one release key. */
export function loadReleaseKeys(dir: string): { roots: SigningKey[]; release: SigningKey } {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new ToolUsageError(`keys directory ${dir} is unreadable: ${(err as Error).message}`);
  }
  const rootFiles = names.filter((n) => /^root-.+\.key$/.test(n));
  // Any release*.key counts, so a second release key is refused rather than silently ignored.
  const releaseFiles = names.filter((n) => /^release.*\.key$/.test(n));
  if (releaseFiles.length !== 1 || releaseFiles[0] !== "release.key") {
    throw new ToolUsageError(
      `${dir} must hold exactly one release key, release.key (found ${releaseFiles.length ? releaseFiles.join(", ") : "none"})`,
    );
  }
  const roots = rootFiles.map((n) => loadSigningKey(join(dir, n)));
  try {
    checkTrustRoots(
      roots.map((r) => r.spki),
      `${dir} (root-*.key)`,
    );
  } catch (err) {
    throw new ToolUsageError((err as Error).message);
  }
  const unique = roots.filter((r, i) => roots.findIndex((o) => o.spki === r.spki) === i);
  const release = loadSigningKey(join(dir, "release.key"));
  if (unique.some((r) => r.spki === release.spki))
    throw new ToolUsageError("the release key must not also be a root key");
  return { roots: unique, release };
}

export function signBytes(key: SigningKey, bytes: Uint8Array): Buffer {
  const signature = sign(null, bytes, key.privateKey);
  if (signature.length !== SIGNATURE_BYTES) throw new Error(`unexpected ${signature.length}-byte signature`);
  return signature;
}

function validated<T>(schema: v.GenericSchema<unknown, T>, value: unknown, what: string): T {
  const result = v.safeParse(schema, value);
  if (!result.success)
    throw new Error(`the ${what} would be malformed: ${result.issues.map((i) => i.message).join("; ")}`);
  return result.output;
}

export interface ManifestInput {
  readonly version: string;
  readonly channel: string;
  readonly sequence: number;
  readonly now: Date;
  readonly expiresInSeconds: number;
  readonly rollout?: number;
  readonly keyId: string;
  /** The binaries, as they will be named beside the manifest. */
  readonly binaries: ReadonlyArray<{ target: Target; file: string; bytes: Uint8Array }>;
}

/** The manifest's exact text (format.ts renderManifest), checked against the schema first and after. */
export function manifestText(input: ManifestInput): { manifest: Manifest; text: string } {
  const targets: Record<string, { url: string; size: number; sha256: string }> = {};
  for (const b of input.binaries)
    targets[b.target] = {
      url: b.file,
      size: b.bytes.length,
      sha256: createHash("sha256").update(b.bytes).digest("hex"),
    };
  const manifest = validated(
    ManifestSchema,
    {
      schema: FORMAT_SCHEMA,
      product: PRODUCT,
      channel: input.channel,
      version: input.version,
      sequence: input.sequence,
      released: isoSeconds(input.now),
      expires: isoSeconds(new Date(input.now.getTime() + input.expiresInSeconds * 1000)),
      ...(input.rollout === undefined ? {} : { rollout: input.rollout }),
      keyId: input.keyId,
      targets,
    },
    "manifest",
  );
  const text = renderManifest(manifest);
  // What the connector will parse must be what was validated, field for field.
  if (JSON.stringify(validated(ManifestSchema, JSON.parse(text), "rendered manifest")) !== JSON.stringify(manifest))
    throw new Error("the rendered manifest does not round-trip");
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) throw new Error(`the manifest is over ${MAX_MANIFEST_BYTES} bytes`);
  return { manifest, text };
}

/** release-keys.json's exact text: the one release key, issued now. */
export function keysetText(release: SigningKey, now: Date, expiresInSeconds: number): { keyset: Keyset; text: string } {
  const keyset = validated(
    KeysetSchema,
    {
      schema: FORMAT_SCHEMA,
      product: PRODUCT,
      issued: isoSeconds(now),
      expires: isoSeconds(new Date(now.getTime() + expiresInSeconds * 1000)),
      keys: [{ id: release.id, publicKey: release.spki }],
    },
    "release-key set",
  );
  const text = `${JSON.stringify(keyset, null, 2)}\n`;
  if (Buffer.byteLength(text) > MAX_KEYSET_BYTES)
    throw new Error(`the release-key set is over ${MAX_KEYSET_BYTES} bytes`);
  return { keyset, text };
}

export const BAKED_BEGIN = "# >>> baked values";
export const BAKED_END = "# <<< baked values";
export const UNITS_BEGIN = "# >>> baked units";
export const UNITS_END = "# <<< baked units";
/** The systemd units install.sh writes to /etc/systemd/system, baked from packaging/systemd/ (their only source). */
export const UNIT_FILES = ["connector.service", "connector-upgrade.path", "connector-upgrade.service"] as const;
const UNITS_DIR = join(import.meta.dir, "..", "packaging", "systemd");
/** Ends each unit's quoted here-document in install.sh, so no unit line may be exactly this. */
const UNIT_DELIMITER = "CONNECTOR_UNIT_EOF";

/** The unit files' exact text, by name. */
export function readUnitFiles(dir = UNITS_DIR): Record<string, string> {
  return Object.fromEntries(UNIT_FILES.map((name) => [name, readFileSync(join(dir, name), "utf8")]));
}

/** The text between the line holding `begin` and the line holding `end` replaced by `block`. */
function replaceBlock(template: string, begin: string, end: string, block: string): string {
  const at = template.indexOf(begin);
  const until = template.indexOf(end);
  if (at < 0 || until < at) throw new Error(`install.sh has no "${begin}" … "${end}" block`);
  const beginLineEnd = template.indexOf("\n", at) + 1;
  return template.slice(0, beginLineEnd) + block + template.slice(until);
}

/**
 * `unit_text NAME` printing each unit through a quoted here-document: bash expands nothing in it, so
 * the installed file is the packaged file byte for byte. Refused: a unit without its final newline (the
 * here-document would add one) or with a line that would end the here-document early.
 */
function unitsBlock(units: Record<string, string>): string {
  const lines = ["unit_text() {", '  case "$1" in'];
  for (const name of UNIT_FILES) {
    const text = units[name];
    if (text === undefined) throw new Error(`cannot bake install.sh: no unit ${name}`);
    if (!text.endsWith("\n")) throw new Error(`cannot bake ${name} into install.sh: it does not end with a newline`);
    if (text.split("\n").includes(UNIT_DELIMITER) || text.includes("\0"))
      throw new Error(`cannot bake ${name} into install.sh: it holds a line "${UNIT_DELIMITER}" or a NUL`);
    lines.push(`    ${name})`, `      cat <<'${UNIT_DELIMITER}'`, `${text}${UNIT_DELIMITER}`, "      ;;");
  }
  lines.push("    *) return 1 ;;", "  esac", "}", "");
  return lines.join("\n");
}

/**
 * install.sh with the roots (PEM), the release host and channel, and the systemd units (default: those
 * of packaging/systemd/) baked between their markers; nothing else changes.
 */
export function bakeInstaller(
  template: string,
  values: { rootSpkis: readonly string[]; baseUrl?: string; channel: string; units?: Record<string, string> },
): string {
  // Values go inside single quotes: refuse anything that could end the quote (validated upstream too).
  for (const value of [values.baseUrl ?? "", values.channel])
    if (/['\\\s]/.test(value)) throw new Error(`cannot bake ${JSON.stringify(value)} into install.sh`);
  for (const spki of values.rootSpkis)
    if (!/^[A-Za-z0-9+/=]+$/.test(spki))
      throw new Error(`cannot bake root ${JSON.stringify(spki)} into install.sh: not base64`);
  const pems = values.rootSpkis
    .map((spki) => `-----BEGIN PUBLIC KEY-----\n${spki}\n-----END PUBLIC KEY-----`)
    .join("\n");
  const block = [
    "# The root public keys (Ed25519 SPKI PEM) a release-keys.json must be signed by, and the release host.",
    `RELEASE_BASE_URL='${values.baseUrl ?? ""}'`,
    `RELEASE_CHANNEL='${values.channel}'`,
    "ROOT_PUBLIC_KEYS=$(cat <<'ROOTS'",
    pems,
    "ROOTS",
    ")",
    "",
  ].join("\n");
  const withValues = replaceBlock(template, BAKED_BEGIN, BAKED_END, block);
  return replaceBlock(withValues, UNITS_BEGIN, UNITS_END, unitsBlock(values.units ?? readUnitFiles()));
}
