/**
 * Release signing keys for tests: two roots and one release key, made by the same code as
 * `bun run keygen`. Pass `dir` to `buildRelease` (test/support/releases.ts) as `keys`, and to the
 * reference cloud as `--release-signing-keys`.
 *
 *   const keys = makeKeys(join(tmp, "keys"));   // tmp/keys/root-1.{key,pub}, root-2.{key,pub}, release.{key,pub}
 */
import { readFileSync } from "node:fs";
import { generateKey } from "../../scripts/keygen.ts";
import { spkiBase64OfPem } from "../../src/upgrade/format.ts";

export interface ReleaseKeys {
  readonly dir: string;
  /** root-1.key, root-2.key (PKCS#8 PEM). */
  readonly rootKeys: readonly string[];
  /** root-1.pub, root-2.pub (SPKI PEM). */
  readonly rootPubs: readonly string[];
  /** Base64 SPKI DER of each root, in the same order (what a binary built with these roots embeds). */
  readonly rootSpkis: readonly string[];
  /** Key ids of the roots (they name release-keys.json.<rootId>.sig), in the same order. */
  readonly rootIds: readonly string[];
  readonly releaseKey: string;
  readonly releasePub: string;
  readonly releaseKeyId: string;
}

/** Creates `dir` (0700) with root-1, root-2 and release key pairs; fails if any already exists. */
export function makeKeys(dir: string): ReleaseKeys {
  const roots = ["root-1", "root-2"].map((name) => generateKey(dir, name));
  const release = generateKey(dir, "release");
  return {
    dir,
    rootKeys: roots.map((k) => k.keyPath),
    rootPubs: roots.map((k) => k.pubPath),
    rootSpkis: roots.map((k) => spkiBase64OfPem(readFileSync(k.pubPath, "utf8"))),
    rootIds: roots.map((k) => k.keyId),
    releaseKey: release.keyPath,
    releasePub: release.pubPath,
    releaseKeyId: release.keyId,
  };
}
