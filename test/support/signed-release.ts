/**
 * Signed releases made in memory for tests of verification and download: fresh Ed25519 roots and a
 * release key made with node:crypto, a key set signed by the roots, a manifest rendered with format.ts
 * and signed by the release key. Every piece can be re-signed or swapped to build a bad release.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import {
  FORMAT_SCHEMA,
  KEYSET_FILE,
  keyIdOf,
  keysetSignatureFile,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  PRODUCT,
  renderManifest,
  type Keyset,
  type Manifest,
} from "../../src/upgrade/format.ts";
import type { ReleaseFiles } from "../../src/upgrade/verify.ts";

export interface TestKey {
  readonly id: string;
  /** base64 SPKI DER */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

export function makeKey(): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const spki = publicKey.export({ format: "der", type: "spki" }).toString("base64");
  return { id: keyIdOf(spki), publicKey: spki, privateKey };
}

export function signBytes(key: TestKey, bytes: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, bytes, key.privateKey));
}

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

export const NOW = new Date("2026-06-01T12:00:00Z");
const DAY = 86_400_000;

export function keysetOf(keys: readonly TestKey[], overrides: Partial<Keyset> = {}): Keyset {
  return {
    schema: FORMAT_SCHEMA,
    product: PRODUCT,
    issued: new Date(NOW.getTime() - DAY).toISOString(),
    expires: new Date(NOW.getTime() + 90 * DAY).toISOString(),
    keys: keys.map((k) => ({ id: k.id, publicKey: k.publicKey })),
    ...overrides,
  };
}

export function binaryOf(text: string): { bytes: Uint8Array; sha256: string } {
  const bytes = encode(text);
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}

export function manifestOf(releaseKey: TestKey, overrides: Partial<Manifest> = {}): Manifest {
  const binary = binaryOf("the new connector binary\n");
  return {
    schema: FORMAT_SCHEMA,
    product: PRODUCT,
    channel: "stable",
    version: "1.5.0",
    sequence: 10,
    released: new Date(NOW.getTime() - DAY).toISOString(),
    expires: new Date(NOW.getTime() + 30 * DAY).toISOString(),
    keyId: releaseKey.id,
    targets: { "linux-x64": { url: "connector-linux-x64", size: binary.bytes.byteLength, sha256: binary.sha256 } },
    ...overrides,
  };
}

export interface TestRelease {
  roots: TestKey[];
  releaseKey: TestKey;
  files: ReleaseFiles;
}

/** A valid release: two roots sign the key set, which lists the release key, which signs the manifest. */
export function makeRelease(
  options: { manifest?: Partial<Manifest>; keyset?: Partial<Keyset>; roots?: TestKey[]; releaseKey?: TestKey } = {},
): TestRelease {
  const roots = options.roots ?? [makeKey(), makeKey()];
  const releaseKey = options.releaseKey ?? makeKey();
  const keyset = encode(JSON.stringify(keysetOf([releaseKey], options.keyset), null, 2));
  const manifest = encode(renderManifest(manifestOf(releaseKey, options.manifest)));
  return {
    roots,
    releaseKey,
    files: {
      manifest,
      manifestSignature: signBytes(releaseKey, manifest),
      keyset,
      keysetSignatures: new Map(roots.map((r) => [r.id, signBytes(r, keyset)])),
    },
  };
}

export const rootSpkis = (release: TestRelease): string[] => release.roots.map((r) => r.publicKey);

/**
 * A release host on loopback for tests: `/<channel>/<file>` answers from whatever `current()` returns
 * at the time of the request (so a test publishes by changing it); 404 for anything else.
 */
export function serveRelease(
  current: () => { files: ReleaseFiles; binary?: Uint8Array },
): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const name = new URL(req.url).pathname.replace(/^\/[a-z0-9-]+\//, "");
      const { files, binary } = current();
      if (name === MANIFEST_FILE) return new Response(files.manifest);
      if (name === MANIFEST_SIGNATURE_FILE && files.manifestSignature) return new Response(files.manifestSignature);
      if (name === KEYSET_FILE) return new Response(files.keyset);
      if (binary && /^connector-/.test(name)) return new Response(binary);
      for (const [id, sig] of files.keysetSignatures) if (name === keysetSignatureFile(id)) return new Response(sig);
      return new Response("not found", { status: 404 });
    },
  });
}
