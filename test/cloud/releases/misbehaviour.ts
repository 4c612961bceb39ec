/**
 * How the release server misbehaves on request (POST /admin/releases/misbehave), one mode per channel
 * or for every channel. Each mode is one attack a connector must refuse (test/cloud/README.md lists
 * them): the body modes change how a binary is sent, the signed modes serve a manifest (and for
 * `unvouched-key` a key set) re-signed here. Re-signed files are made once per mode change and release,
 * so a manifest and its signature fetched one after the other always match.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import {
  KEYSET_FILE,
  KeysetSchema,
  keyIdOf,
  ManifestSchema,
  MAX_KEYSET_BYTES,
  renderManifest,
  type Manifest,
} from "../../../src/upgrade/format.ts";
import { makeFakeKey, signBytes, type FakeKey } from "../../support/release-fixture.ts";
import { CloudApiError } from "../errors.ts";
import { readSmallFile, type ReleaseDir } from "./store.ts";

export const MISBEHAVIOUR_MODES = [
  "none",
  "endless-body",
  "slow-body",
  "truncated-body",
  "wrong-hash",
  "expired-manifest",
  "older-sequence",
  "unknown-key",
  "unvouched-key",
] as const;
export type MisbehaviourMode = (typeof MISBEHAVIOUR_MODES)[number];
export type BodyMode = "endless-body" | "slow-body" | "truncated-body" | "wrong-hash";
const BODY_MODES: readonly string[] = ["endless-body", "slow-body", "truncated-body", "wrong-hash"];
/** Modes that re-sign with the real release key (the others sign with keys made on the spot). */
const NEEDS_RELEASE_KEY: readonly string[] = ["expired-manifest", "older-sequence"];
export const isBodyMode = (mode: MisbehaviourMode): mode is BodyMode => BODY_MODES.includes(mode);

/** The release key of `--release-signing-keys KEYDIR` (KEYDIR/release.key, PKCS#8 PEM, Ed25519). */
export function loadReleaseKey(keyDir: string): FakeKey {
  const path = join(keyDir, "release.key");
  if (!existsSync(path))
    throw new Error(`--release-signing-keys ${keyDir}: no release.key in it (make one with bun run keygen)`);
  const privateKey: KeyObject = createPrivateKey(readFileSync(path, "utf8"));
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${path} is not an Ed25519 private key`);
  const publicKeyObject = createPublicKey(privateKey);
  const publicKey = publicKeyObject.export({ format: "der", type: "spki" }).toString("base64");
  return { id: keyIdOf(publicKey), publicKey, publicKeyObject, privateKey };
}

/** The files a signed mode serves in place of the release's own (undefined: serve the real file). */
export interface Forged {
  readonly manifest: string;
  readonly manifestSignature: Buffer;
  /** unvouched-key only: the key set with the impostor key, and its signatures by impostor "roots" by file name. */
  readonly keyset?: string;
  readonly keysetSignatures?: ReadonlyMap<string, Buffer>;
}

const isoSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");

/** MAJOR.MINOR.(PATCH+1) without a pre-release: always a higher version than `version`. */
export function nextPatch(version: string): string {
  const [major, minor, patch] = version.split(/[.-]/);
  return `${major}.${minor}.${Number(patch) + 1}`;
}

/** One mode as it was set: its fresh keys and the files forged under it, per release. */
export class Misbehaviour {
  readonly #forged = new Map<string, Forged>();
  /** The key unknown-key and unvouched-key sign manifests with, made when the mode is set. */
  readonly #fresh = makeFakeKey();
  /** unvouched-key: one impostor per real root id. */
  readonly #impostors = new Map<string, FakeKey>();

  constructor(
    readonly mode: MisbehaviourMode,
    private readonly releaseKey: FakeKey | undefined,
    private readonly now: () => number,
  ) {
    if (NEEDS_RELEASE_KEY.includes(mode) && !releaseKey) {
      throw new CloudApiError(
        409,
        "BAD_REQUEST",
        `mode ${mode} re-signs the manifest with the release key: start the cloud with --release-signing-keys KEYDIR`,
      );
    }
  }

  /** The forged files for a release under a signed mode; undefined for "none" and the body modes. */
  forge(release: ReleaseDir): Forged | undefined {
    if (this.mode === "none" || isBodyMode(this.mode)) return undefined;
    const key = `${release.path}\n${release.manifestText}`;
    let forged = this.#forged.get(key);
    if (!forged) {
      forged = this.#make(release);
      this.#forged.set(key, forged);
    }
    return forged;
  }

  #make(release: ReleaseDir): Forged {
    const parsed = v.safeParse(ManifestSchema, JSON.parse(release.manifestText));
    if (!parsed.success)
      throw new CloudApiError(
        500,
        "INTERNAL",
        `mode ${this.mode}: the manifest of ${release.path} is not valid, nothing to re-sign`,
      );
    const manifest: Manifest = { ...parsed.output };
    const signWith = (key: FakeKey, m: Manifest) => {
      const text = renderManifest({ ...m, keyId: key.id });
      return { manifest: text, manifestSignature: signBytes(key, text) };
    };
    switch (this.mode) {
      case "expired-manifest": {
        const expires = this.now() - 3_600_000;
        const released = Math.min(Date.parse(manifest.released), expires - 86_400_000);
        return signWith(this.releaseKey!, {
          ...manifest,
          released: isoSeconds(released),
          expires: isoSeconds(expires),
        });
      }
      case "older-sequence": {
        if (manifest.sequence < 2)
          throw new CloudApiError(
            409,
            "BAD_REQUEST",
            "older-sequence needs a newest release with a sequence of at least 2",
          );
        return signWith(this.releaseKey!, {
          ...manifest,
          sequence: manifest.sequence - 1,
          version: nextPatch(manifest.version),
        });
      }
      case "unknown-key":
        return signWith(this.#fresh, manifest);
      case "unvouched-key":
        return { ...signWith(this.#fresh, manifest), ...this.#unvouchedKeyset(release) };
      default:
        throw new Error(`mode ${this.mode} forges nothing`);
    }
  }

  /** The release's key set plus the fresh key, "signed" by fresh keys under the real roots' file names. */
  #unvouchedKeyset(release: ReleaseDir): { keyset: string; keysetSignatures: Map<string, Buffer> } {
    const bytes = readSmallFile(join(release.path, KEYSET_FILE), MAX_KEYSET_BYTES);
    const parsed = bytes ? v.safeParse(KeysetSchema, JSON.parse(bytes.toString("utf8"))) : undefined;
    if (!parsed?.success)
      throw new CloudApiError(500, "INTERNAL", `mode unvouched-key: ${release.path} has no valid ${KEYSET_FILE}`);
    const keys = [...parsed.output.keys, { id: this.#fresh.id, publicKey: this.#fresh.publicKey }].slice(-16);
    const keyset = `${JSON.stringify({ ...parsed.output, keys }, null, 2)}\n`;
    const keysetSignatures = new Map<string, Buffer>();
    for (const file of readdirSync(release.path)) {
      const rootId = /^release-keys\.json\.([0-9a-f]{16})\.sig$/.exec(file)?.[1];
      if (!rootId) continue;
      let impostor = this.#impostors.get(rootId);
      if (!impostor) this.#impostors.set(rootId, (impostor = makeFakeKey()));
      keysetSignatures.set(file, signBytes(impostor, keyset));
    }
    return { keyset, keysetSignatures };
  }
}
