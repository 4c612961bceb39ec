/**
 * The release format: what `bun run release` writes, the release host serves, install.sh checks with
 * openssl and the connector checks before it runs anything new. It is a contract between the release
 * tooling, the installer and every connector in the field: change it only with a new `schema` number.
 *
 * A release directory holds, side by side (so it can be served from any URL):
 *
 *   manifest.json                    the signed manifest (below); the signature covers these exact bytes
 *   manifest.json.sig                raw 64-byte Ed25519 signature of manifest.json by a release key
 *   release-keys.json                the set of online release keys (below)
 *   release-keys.json.<rootId>.sig   raw 64-byte Ed25519 signature of release-keys.json, one per root key
 *   connector-<target>               the binaries; the manifest names them relative to itself
 *   install.sh                       the installer, with the root public keys baked in
 *
 * Keys are Ed25519. A public key travels as the base64 of its SubjectPublicKeyInfo DER (44 bytes, so
 * `-----BEGIN PUBLIC KEY-----` around it is the PEM openssl reads), and is named by its key id: the
 * first 16 hex digits of the SHA-256 of that DER.
 *
 * Trust: the root keys are compiled into the binary (build.ts --trust-roots); release-keys.json must
 * carry valid signatures from at least ROOT_THRESHOLD distinct compiled-in roots; the manifest must be
 * signed by a key listed in a vouched release-keys.json, named by its `keyId`.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import * as v from "valibot";
import { VERSION_PATTERN } from "../version.ts";

export const FORMAT_SCHEMA = 1;
export const PRODUCT = "connector";
export const MANIFEST_FILE = "manifest.json";
export const MANIFEST_SIGNATURE_FILE = "manifest.json.sig";
export const KEYSET_FILE = "release-keys.json";
export const keysetSignatureFile = (rootId: string): string => `${KEYSET_FILE}.${rootId}.sig`;
export const binaryFile = (target: string): string => `connector-${target}`;

/** Distinct compiled-in roots that must sign the release-key set. A binary embeds at least this many. */
export const ROOT_THRESHOLD = 2;
/** Bounds on what is read before it is verified: the manifest and key set are small by design. */
export const MAX_MANIFEST_BYTES = 64 * 1024;
export const MAX_KEYSET_BYTES = 64 * 1024;
export const SIGNATURE_BYTES = 64;
/** No binary of ours is near this; a manifest that says more is refused before any download. */
export const MAX_BINARY_BYTES = 512 * 1024 * 1024;

/** The targets `bun run build` makes; a manifest may list any subset. */
export const TARGETS = [
  "linux-x64",
  "linux-x64-baseline",
  "linux-arm64",
  "linux-x64-musl",
  "linux-arm64-musl",
] as const;
export type Target = (typeof TARGETS)[number];

const KeyId = v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/, "expected 16 lowercase hex digits"));
const Sha256Hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"));
export { VERSION_PATTERN };
export const Version = v.pipe(
  v.string(),
  v.maxLength(64),
  v.regex(VERSION_PATTERN, "expected a version such as 1.4.2 or 1.5.0-rc.1"),
);
export const Channel = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "expected a channel name such as stable or beta"),
);
const Timestamp = v.pipe(v.string(), v.isoTimestamp("expected an ISO 8601 UTC timestamp"));
/** A file name beside the manifest: no directories, so a manifest cannot point outside its release. */
const RelativeName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "expected a file name beside the manifest"),
);

export const ManifestTargetSchema = v.strictObject({
  url: RelativeName,
  size: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_BINARY_BYTES)),
  sha256: Sha256Hex,
});

export const ManifestSchema = v.strictObject({
  schema: v.literal(FORMAT_SCHEMA),
  product: v.literal(PRODUCT),
  channel: Channel,
  version: Version,
  /** Grows with every manifest the release team signs, whatever its version. */
  sequence: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER)),
  released: Timestamp,
  expires: Timestamp,
  /** Percentage of connectors (by a hash of their id) that take this release; 100 when absent. */
  rollout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100))),
  keyId: KeyId,
  targets: v.pipe(
    v.record(v.picklist(TARGETS), ManifestTargetSchema),
    v.check((t) => Object.keys(t).length > 0, "no targets"),
  ),
});
export type Manifest = v.InferOutput<typeof ManifestSchema>;
export type ManifestTarget = v.InferOutput<typeof ManifestTargetSchema>;

export const ReleaseKeySchema = v.strictObject({ id: KeyId, publicKey: v.pipe(v.string(), v.base64()) });

export const KeysetSchema = v.strictObject({
  schema: v.literal(FORMAT_SCHEMA),
  product: v.literal(PRODUCT),
  issued: Timestamp,
  /** Freeze protection for the key set too: a stale set must be re-signed by the roots. */
  expires: Timestamp,
  keys: v.pipe(v.array(ReleaseKeySchema), v.minLength(1), v.maxLength(16)),
});
export type Keyset = v.InferOutput<typeof KeysetSchema>;

/** The key id of a public key given as base64 SPKI DER. */
export function keyIdOf(spkiBase64: string): string {
  return createHash("sha256").update(Buffer.from(spkiBase64, "base64")).digest("hex").slice(0, 16);
}

/** A public key from base64 SPKI DER; undefined when it is not an Ed25519 key. */
export function ed25519PublicKey(spkiBase64: string): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(spkiBase64, "base64"), format: "der", type: "spki" });
    return key.asymmetricKeyType === "ed25519" ? key : undefined;
  } catch {
    return undefined;
  }
}

/** Base64 SPKI DER of a PEM public key (what `keygen` writes to N.pub). */
export function spkiBase64OfPem(pem: string): string {
  return createPublicKey(pem).export({ format: "der", type: "spki" }).toString("base64");
}

/**
 * The manifest's text as the release tool writes it: two-space JSON, but each target on one line, so
 * that install.sh can read a target with grep and sed. Any valid JSON is accepted when verifying.
 */
export function renderManifest(manifest: Manifest): string {
  const { targets, ...head } = manifest;
  const headText = JSON.stringify(head, null, 2).replace(/\n}$/, "");
  const lines = Object.entries(targets).map(([target, t]) => `    ${JSON.stringify(target)}: ${JSON.stringify(t)}`);
  return `${headText},\n  "targets": {\n${lines.join(",\n")}\n  }\n}\n`;
}
