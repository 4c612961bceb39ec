/**
 * Acceptance of a release, as pure functions over bytes already in memory: the compiled-in roots vouch
 * for the release-key set, a vouched key signs the manifest, and the manifest must be current, for our
 * channel, not a rollback and carry a binary for this machine. Every signature is checked over the
 * exact bytes that were fetched, before anything in the signed document is believed (the manifest is
 * parsed beforehand only to learn which key to check it with). Every refusal is an `UpgradeError`.
 */
import { createHash, verify as verifySignature } from "node:crypto";
import * as v from "valibot";
import { UpgradeError } from "./errors.ts";
import {
  ed25519PublicKey,
  keyIdOf,
  KeysetSchema,
  ManifestSchema,
  MAX_KEYSET_BYTES,
  MAX_MANIFEST_BYTES,
  ROOT_THRESHOLD,
  SIGNATURE_BYTES,
  type Keyset,
  type Manifest,
  type ManifestTarget,
} from "./format.ts";
import { compareVersions } from "./version-order.ts";

export interface ReleaseFiles {
  manifest: Uint8Array;
  manifestSignature: Uint8Array | undefined;
  keyset: Uint8Array;
  /** By root key id; signatures named for keys that are not compiled-in roots are ignored. */
  keysetSignatures: ReadonlyMap<string, Uint8Array>;
}

export interface AcceptanceRules {
  channel: string;
  runningVersion: string;
  target: string;
  highestSequence: number;
  highestVersion?: string;
  skipped: readonly string[];
  /** `connector upgrade --version V`: V must be the manifest's version; both version checks are waived. */
  explicitVersion?: string;
}

/** The key ids of the compiled-in roots, distinct: the names of the key-set signatures to fetch. */
export function rootIdsOf(roots: readonly string[]): string[] {
  return [...new Set(roots.map(keyIdOf))];
}

function signatureValid(data: Uint8Array, signature: Uint8Array, spkiBase64: string): boolean {
  const key = ed25519PublicKey(spkiBase64);
  if (key === undefined || signature.byteLength !== SIGNATURE_BYTES) return false;
  try {
    return verifySignature(null, data, key, signature);
  } catch {
    return false;
  }
}

function schemaProblem(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  const where = issue?.path?.map((p) => String(p.key)).join(".") || "(root)";
  return `field ${where}: ${issue?.message ?? "invalid"}`;
}

function parseJsonBytes(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The compiled-in roots by key id (one listed twice counts once); NO_TRUST_ROOTS when fewer than the
 * threshold, as in a development build: it can verify no release, so it need not fetch one either.
 */
export function assertRootsUsable(roots: readonly string[]): Map<string, string> {
  const rootIds = new Map(roots.map((root) => [keyIdOf(root), root] as const));
  if (rootIds.size < ROOT_THRESHOLD) {
    throw new UpgradeError(
      "NO_TRUST_ROOTS",
      `This build trusts ${rootIds.size} release root key(s), fewer than the ${ROOT_THRESHOLD} a release must be signed by, so it cannot verify any release. ` +
        "Install an official build, or build with --trust-roots pointing at the release root public keys.",
    );
  }
  return rootIds;
}

/** The release-key set, once at least ROOT_THRESHOLD distinct compiled-in roots signed its exact bytes. */
export function verifyKeyset(files: ReleaseFiles, roots: readonly string[], now: Date): Keyset {
  const rootIds = assertRootsUsable(roots);
  if (files.keyset.byteLength > MAX_KEYSET_BYTES) {
    throw new UpgradeError(
      "MANIFEST_TOO_LARGE",
      `The release-key set is ${files.keyset.byteLength} bytes, over the ${MAX_KEYSET_BYTES}-byte limit; it is not read. The release host serves something that is not a release.`,
    );
  }
  let vouches = 0;
  for (const [id, root] of rootIds) {
    const signature = files.keysetSignatures.get(id);
    if (signature !== undefined && signatureValid(files.keyset, signature, root)) vouches++;
  }
  if (vouches < ROOT_THRESHOLD) {
    throw new UpgradeError(
      "KEYSET_NOT_VOUCHED",
      `The release-key set carries ${vouches} valid signature(s) by root keys this build trusts; ${ROOT_THRESHOLD} are needed. ` +
        "The release was not signed by the release team's roots (or was altered): it is refused. Check the manifest URL points at an official release host.",
    );
  }
  const parsed = v.safeParse(KeysetSchema, parseJsonBytes(files.keyset));
  if (!parsed.success) {
    throw new UpgradeError(
      "KEYSET_MALFORMED",
      `The release-key set is signed by the roots but does not match its format (${schemaProblem(parsed.issues)}). This build may be too old for this release host: upgrade it by hand.`,
    );
  }
  const keyset = parsed.output;
  if (Date.parse(keyset.expires) <= now.getTime()) {
    throw new UpgradeError(
      "KEYSET_EXPIRED",
      `The release-key set expired at ${keyset.expires} (this host's time is ${now.toISOString()}). The release host serves a stale set; check the host's clock, and ask the release team to re-sign the key set.`,
    );
  }
  for (const key of keyset.keys) {
    if (ed25519PublicKey(key.publicKey) === undefined || keyIdOf(key.publicKey) !== key.id) {
      throw new UpgradeError(
        "KEYSET_MALFORMED",
        `The release-key set lists key ${key.id}, which is not an Ed25519 public key with that id. The release is refused; report it to the release team.`,
      );
    }
  }
  return keyset;
}

/** The manifest, once a key of the vouched `keyset` signed its exact bytes and it matches its schema. */
export function verifyManifestSignature(files: ReleaseFiles, keyset: Keyset): Manifest {
  if (files.manifest.byteLength > MAX_MANIFEST_BYTES) {
    throw new UpgradeError(
      "MANIFEST_TOO_LARGE",
      `The manifest is ${files.manifest.byteLength} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit; it is not read. The release host serves something that is not a release.`,
    );
  }
  const signature = files.manifestSignature;
  if (signature === undefined || signature.byteLength === 0) {
    throw new UpgradeError(
      "SIGNATURE_MISSING",
      "The manifest has no signature (manifest.json.sig is missing or empty); an unsigned release is never installed. Check the release host.",
    );
  }
  // Parsed only to learn which key signed it: nothing else in it is believed before the signature is checked.
  const untrusted = parseJsonBytes(files.manifest);
  const keyId =
    typeof untrusted === "object" && untrusted !== null && "keyId" in untrusted ? untrusted.keyId : undefined;
  if (typeof keyId !== "string") {
    throw new UpgradeError(
      "MANIFEST_MALFORMED",
      "The manifest is not JSON naming its signing key (keyId); it is refused. The release host serves something that is not a release.",
    );
  }
  const key = keyset.keys.find((k) => k.id === keyId);
  if (key === undefined) {
    throw new UpgradeError(
      "KEY_UNKNOWN",
      `The manifest is signed by key ${keyId.slice(0, 16).replace(/[^0-9a-f]/g, "?")}, which the vouched release-key set does not list; it is refused. The release may be forged, or the key set on the host is outdated.`,
    );
  }
  if (signature.byteLength !== SIGNATURE_BYTES || !signatureValid(files.manifest, signature, key.publicKey)) {
    throw new UpgradeError(
      "SIGNATURE_INVALID",
      `The manifest's signature by key ${key.id} does not match its bytes; it was altered after signing and is refused. Check the release host and any proxy in between.`,
    );
  }
  const parsed = v.safeParse(ManifestSchema, untrusted);
  if (!parsed.success) {
    throw new UpgradeError(
      "MANIFEST_MALFORMED",
      `The signed manifest does not match its format (${schemaProblem(parsed.issues)}). This build may be too old for this release: upgrade it by hand.`,
    );
  }
  return parsed.output;
}

/** The target for this machine, once the manifest passes every acceptance rule. */
export function checkManifest(manifest: Manifest, rules: AcceptanceRules, now: Date): ManifestTarget {
  const release = `Release ${manifest.version} (sequence ${manifest.sequence})`;
  if (Date.parse(manifest.expires) <= now.getTime()) {
    throw new UpgradeError(
      "MANIFEST_EXPIRED",
      `${release}: the manifest expired at ${manifest.expires} (this host's time is ${now.toISOString()}). The release host may be frozen or replayed; check this host's clock and the release host.`,
    );
  }
  if (manifest.channel !== rules.channel) {
    throw new UpgradeError(
      "WRONG_CHANNEL",
      `${release} is for channel "${manifest.channel}", not the configured "${rules.channel}". Check --channel and --manifest-url.`,
    );
  }
  const sameAsHighest = rules.highestVersion === undefined || rules.highestVersion === manifest.version;
  if (manifest.sequence < rules.highestSequence || (manifest.sequence === rules.highestSequence && !sameAsHighest)) {
    throw new UpgradeError(
      "SEQUENCE_ROLLBACK",
      `${release}: its sequence is not above ${rules.highestSequence}, the highest this connector accepted${rules.highestVersion ? ` (${rules.highestVersion})` : ""}. An older manifest is being replayed; it is refused. ` +
        "A deliberate downgrade must be published as a new manifest.",
    );
  }
  if (rules.explicitVersion !== undefined && rules.explicitVersion !== manifest.version) {
    throw new UpgradeError(
      "VERSION_NOT_OFFERED",
      `Version ${rules.explicitVersion} was asked for, but the manifest offers ${manifest.version}. Point --manifest-url at the release that holds ${rules.explicitVersion}.`,
    );
  }
  const explicit = rules.explicitVersion !== undefined;
  if (!explicit) {
    if (rules.highestVersion !== undefined && compareVersions(manifest.version, rules.highestVersion) < 0) {
      throw new UpgradeError(
        "VERSION_ROLLBACK",
        `${release} is older than ${rules.highestVersion}, the highest version this connector accepted; it is refused. To downgrade on purpose, run connector upgrade --version ${manifest.version}.`,
      );
    }
    if (compareVersions(manifest.version, rules.runningVersion) <= 0) {
      throw new UpgradeError(
        "NOT_NEWER",
        `${release} is not newer than the running version ${rules.runningVersion}: nothing to do. To install it anyway, run connector upgrade --version ${manifest.version}.`,
      );
    }
    if (rules.skipped.includes(manifest.version)) {
      throw new UpgradeError(
        "VERSION_SKIPPED",
        `${release} was rolled back on this connector before, so it is skipped. To try it again, run connector upgrade --version ${manifest.version}.`,
      );
    }
  }
  const target = Object.hasOwn(manifest.targets, rules.target)
    ? manifest.targets[rules.target as keyof Manifest["targets"]]
    : undefined;
  if (target === undefined) {
    throw new UpgradeError(
      "TARGET_MISSING",
      `${release} has no binary for this machine (target ${rules.target}); it offers ${Object.keys(manifest.targets).join(", ")}. Install a matching build by hand.`,
    );
  }
  return target;
}

/** The whole chain: roots → key set → manifest signature → acceptance rules. */
export function verifyRelease(
  files: ReleaseFiles,
  roots: readonly string[],
  rules: AcceptanceRules,
  now: Date,
): { manifest: Manifest; target: ManifestTarget } {
  const keyset = verifyKeyset(files, roots, now);
  const manifest = verifyManifestSignature(files, keyset);
  return { manifest, target: checkManifest(manifest, rules, now) };
}

/** A binary held in memory against its manifest entry: exact size, then SHA-256. */
export function verifyBinaryBytes(bytes: Uint8Array, target: ManifestTarget): void {
  if (bytes.byteLength > target.size) {
    throw new UpgradeError(
      "BODY_TOO_LONG",
      `The binary ${target.url} is ${bytes.byteLength} bytes, more than the ${target.size} its signed manifest says; it is refused.`,
    );
  }
  if (bytes.byteLength < target.size) {
    throw new UpgradeError(
      "BODY_TOO_SHORT",
      `The binary ${target.url} is ${bytes.byteLength} bytes, less than the ${target.size} its signed manifest says; it is refused.`,
    );
  }
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== target.sha256) {
    throw new UpgradeError(
      "HASH_MISMATCH",
      `The binary ${target.url} does not have the SHA-256 its signed manifest says (got ${digest}); it was altered or corrupted and is refused.`,
    );
  }
}
