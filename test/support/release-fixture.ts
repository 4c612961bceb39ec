/**
 * Hand-made releases for tests that need a release directory without building real binaries
 * (`bun run release` takes minutes; these take milliseconds). The layout and formats are those of
 * src/upgrade/format.ts, signed with node:crypto Ed25519 exactly as the release tool signs:
 *
 *   const keys = makeFakeKeys();                       // two roots and a release key, in memory
 *   writeKeyDir(dir, keys);                            // root-1.key/.pub, root-2.key/.pub, release.key/.pub
 *   writeFakeRelease({ dir: join(releases, "a"), keys, version: "1.2.3", channel: "stable", sequence: 1 });
 *
 * A fake binary is a shell script that prints the line `connector --version` prints, so it passes the
 * self-check of an upgrade for its version and target (give `binary` to make it do anything else).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import {
  binaryFile,
  FORMAT_SCHEMA,
  KEYSET_FILE,
  keyIdOf,
  keysetSignatureFile,
  KeysetSchema,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  ManifestSchema,
  PRODUCT,
  renderManifest,
  type Keyset,
  type Manifest,
  type Target,
} from "../../src/upgrade/format.ts";

/** One Ed25519 key: its id (format.ts keyIdOf), base64 SPKI DER, and the key objects. */
export interface FakeKey {
  readonly id: string;
  readonly publicKey: string;
  readonly publicKeyObject: KeyObject;
  readonly privateKey: KeyObject;
}

export interface FakeKeys {
  /** Root keys (their public halves are what a build embeds), in name order: root-1, root-2, … */
  readonly roots: readonly FakeKey[];
  readonly release: FakeKey;
}

export function makeFakeKey(): FakeKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const spki = publicKey.export({ format: "der", type: "spki" }).toString("base64");
  return { id: keyIdOf(spki), publicKey: spki, publicKeyObject: publicKey, privateKey };
}

/** `rootCount` root keys (default 2, the threshold) and one release key. */
export function makeFakeKeys(rootCount = 2): FakeKeys {
  return { roots: Array.from({ length: rootCount }, makeFakeKey), release: makeFakeKey() };
}

/** The keys of a directory made by `bun run keygen` (root-*.key, release.key), to sign fakes that real builds trust. */
export function readKeyDir(dir: string): FakeKeys {
  const load = (name: string): FakeKey => {
    const privateKey = createPrivateKey(readFileSync(join(dir, name), "utf8"));
    const publicKeyObject = createPublicKey(privateKey);
    const spki = publicKeyObject.export({ format: "der", type: "spki" }).toString("base64");
    return { id: keyIdOf(spki), publicKey: spki, publicKeyObject, privateKey };
  };
  const roots = readdirSync(dir)
    .filter((f) => /^root-.*\.key$/.test(f))
    .sort()
    .map(load);
  return { roots, release: load("release.key") };
}

/** Raw 64-byte Ed25519 signature, as in every `.sig` file of a release. */
export function signBytes(key: FakeKey | KeyObject, bytes: Uint8Array | string): Buffer {
  const privateKey = "privateKey" in key ? key.privateKey : key;
  return sign(null, typeof bytes === "string" ? Buffer.from(bytes) : bytes, privateKey);
}

const pemOf = (key: KeyObject, type: "pkcs8" | "spki") => key.export({ format: "pem", type }).toString();

/**
 * Writes the keys the way `bun run keygen` does (`N.key` PKCS#8 PEM 0600, `N.pub` SPKI PEM): root-1…,
 * release. The directory is what `release --keys` and the cloud's `--release-signing-keys` read.
 */
export function writeKeyDir(dir: string, keys: FakeKeys): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const named: [string, FakeKey][] = [
    ...keys.roots.map((k, i) => [`root-${i + 1}`, k] as [string, FakeKey]),
    ["release", keys.release],
  ];
  for (const [name, key] of named) {
    writeFileSync(join(dir, `${name}.key`), pemOf(key.privateKey, "pkcs8"), { mode: 0o600 });
    writeFileSync(join(dir, `${name}.pub`), pemOf(createPublicKey(key.privateKey), "spki"));
  }
  return dir;
}

/** The `.pub` files of the roots alone (what `build.ts --trust-roots DIR` reads). */
export function writeRootsDir(dir: string, keys: FakeKeys): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  keys.roots.forEach((key, i) => writeFileSync(join(dir, `root-${i + 1}.pub`), pemOf(key.publicKeyObject, "spki")));
  return dir;
}

/** What `connector --version` prints for this version and target. */
export const versionLine = (version: string, target: string) =>
  `connector ${version} (commit fake, built fake, target ${target})`;

export interface FakeReleaseOptions {
  /** Created if missing; the release files are written into it. */
  readonly dir: string;
  readonly keys: FakeKeys;
  readonly version: string;
  readonly channel: string;
  readonly sequence: number;
  /** Default ["linux-x64"]. */
  readonly targets?: readonly Target[];
  /** The binary of a target; default a shell script printing `versionLine(version, target)`. */
  readonly binary?: (target: Target) => Uint8Array | string;
  /** Manifest lifetime from `now`; default 30 days. Negative makes an expired manifest. */
  readonly expiresInSeconds?: number;
  readonly rollout?: number;
  /** Key-set lifetime from `now`; default 365 days. */
  readonly keysetExpiresInSeconds?: number;
  /** Roots that sign the key set; default all of `keys.roots`. */
  readonly signingRoots?: readonly FakeKey[];
  readonly now?: Date;
}

export interface FakeRelease {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The exact bytes of manifest.json. */
  readonly manifestText: string;
  readonly keyset: Keyset;
  readonly keysetText: string;
  /** Path of each target's binary. */
  readonly binaries: Partial<Record<Target, string>>;
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");

export function fakeBinary(version: string, target: string): string {
  return `#!/bin/sh\necho '${versionLine(version, target)}'\n`;
}

/** Writes one complete, validly signed release directory (every file of format.ts but install.sh). */
export function writeFakeRelease(o: FakeReleaseOptions): FakeRelease {
  const now = (o.now ?? new Date()).getTime();
  mkdirSync(o.dir, { recursive: true });
  const targets: Partial<Record<Target, { url: string; size: number; sha256: string }>> = {};
  const binaries: Partial<Record<Target, string>> = {};
  for (const target of o.targets ?? ["linux-x64"]) {
    const body = Buffer.from(o.binary ? o.binary(target) : fakeBinary(o.version, target));
    const path = join(o.dir, binaryFile(target));
    writeFileSync(path, body);
    chmodSync(path, 0o755);
    binaries[target] = path;
    targets[target] = {
      url: binaryFile(target),
      size: body.length,
      sha256: new Bun.CryptoHasher("sha256").update(body).digest("hex"),
    };
  }
  const manifest = v.parse(ManifestSchema, {
    schema: FORMAT_SCHEMA,
    product: PRODUCT,
    channel: o.channel,
    version: o.version,
    sequence: o.sequence,
    released: iso(now),
    expires: iso(now + (o.expiresInSeconds ?? 30 * 86_400) * 1000),
    ...(o.rollout === undefined ? {} : { rollout: o.rollout }),
    keyId: o.keys.release.id,
    targets,
  });
  const manifestText = renderManifest(manifest);
  writeFileSync(join(o.dir, MANIFEST_FILE), manifestText);
  writeFileSync(join(o.dir, MANIFEST_SIGNATURE_FILE), signBytes(o.keys.release, manifestText));
  const keyset = v.parse(KeysetSchema, {
    schema: FORMAT_SCHEMA,
    product: PRODUCT,
    issued: iso(now),
    expires: iso(now + (o.keysetExpiresInSeconds ?? 365 * 86_400) * 1000),
    keys: [{ id: o.keys.release.id, publicKey: o.keys.release.publicKey }],
  });
  const keysetText = `${JSON.stringify(keyset, null, 2)}\n`;
  writeFileSync(join(o.dir, KEYSET_FILE), keysetText);
  for (const root of o.signingRoots ?? o.keys.roots)
    writeFileSync(join(o.dir, keysetSignatureFile(root.id)), signBytes(root, keysetText));
  return { dir: o.dir, manifest, manifestText, keyset, keysetText, binaries };
}
