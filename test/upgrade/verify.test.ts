import { describe, expect, test } from "bun:test";
import { renderManifest, MAX_MANIFEST_BYTES, MAX_KEYSET_BYTES, type Manifest } from "../../src/upgrade/format.ts";
import { UpgradeError, type UpgradeErrorCode } from "../../src/upgrade/errors.ts";
import {
  checkManifest,
  rootIdsOf,
  verifyBinaryBytes,
  verifyKeyset,
  verifyManifestSignature,
  verifyRelease,
  type AcceptanceRules,
} from "../../src/upgrade/verify.ts";
import {
  binaryOf,
  encode,
  keysetOf,
  makeKey,
  makeRelease,
  manifestOf,
  NOW,
  rootSpkis,
  signBytes,
} from "../support/signed-release.ts";

const RULES: AcceptanceRules = {
  channel: "stable",
  runningVersion: "1.4.0",
  target: "linux-x64",
  highestSequence: 9,
  highestVersion: "1.4.0",
  skipped: [],
};

function refusal(fn: () => unknown): UpgradeErrorCode {
  try {
    fn();
  } catch (err) {
    if (err instanceof UpgradeError) return err.code;
    throw err;
  }
  throw new Error("expected a refusal, got acceptance");
}

function check(overrides: Partial<Manifest>, rules: Partial<AcceptanceRules> = {}): UpgradeErrorCode {
  return refusal(() => checkManifest(manifestOf(makeKey(), overrides), { ...RULES, ...rules }, NOW));
}

describe("verifyRelease", () => {
  test("accepts a release signed along the whole chain", () => {
    const release = makeRelease();
    const { manifest, target } = verifyRelease(release.files, rootSpkis(release), RULES, NOW);
    expect(manifest.version).toBe("1.5.0");
    expect(target.url).toBe("connector-linux-x64");
  });
});

describe("key set", () => {
  test("rootIdsOf names each compiled-in root once, by key id", () => {
    const release = makeRelease();
    const [a, b] = release.roots;
    expect(rootIdsOf([a!.publicKey, b!.publicKey, a!.publicKey])).toEqual([a!.id, b!.id]);
  });

  test("a build with fewer roots than the threshold verifies nothing: NO_TRUST_ROOTS", () => {
    const release = makeRelease();
    expect(refusal(() => verifyKeyset(release.files, [release.roots[0]!.publicKey], NOW))).toBe("NO_TRUST_ROOTS");
  });

  test("one root listed twice counts once: NO_TRUST_ROOTS", () => {
    const release = makeRelease();
    const root = release.roots[0]!.publicKey;
    expect(refusal(() => verifyKeyset(release.files, [root, root], NOW))).toBe("NO_TRUST_ROOTS");
  });

  test("a key set over its cap: MANIFEST_TOO_LARGE", () => {
    const release = makeRelease();
    const files = { ...release.files, keyset: new Uint8Array(MAX_KEYSET_BYTES + 1) };
    expect(refusal(() => verifyKeyset(files, rootSpkis(release), NOW))).toBe("MANIFEST_TOO_LARGE");
  });

  test("one root signature is not enough: KEYSET_NOT_VOUCHED", () => {
    const release = makeRelease();
    const [a] = release.roots;
    const files = {
      ...release.files,
      keysetSignatures: new Map([[a!.id, release.files.keysetSignatures.get(a!.id)!]]),
    };
    expect(refusal(() => verifyKeyset(files, rootSpkis(release), NOW))).toBe("KEYSET_NOT_VOUCHED");
  });

  test("one root's signature filed under both roots' ids counts once: KEYSET_NOT_VOUCHED", () => {
    const release = makeRelease();
    const [a, b] = release.roots;
    const sig = release.files.keysetSignatures.get(a!.id)!;
    const files = {
      ...release.files,
      keysetSignatures: new Map([
        [a!.id, sig],
        [b!.id, sig],
      ]),
    };
    expect(refusal(() => verifyKeyset(files, rootSpkis(release), NOW))).toBe("KEYSET_NOT_VOUCHED");
  });

  test("a signature by a key that is not a compiled-in root is ignored: KEYSET_NOT_VOUCHED", () => {
    const release = makeRelease();
    const [a, b] = release.roots;
    const stranger = makeKey();
    const files = {
      ...release.files,
      keysetSignatures: new Map([
        [a!.id, release.files.keysetSignatures.get(a!.id)!],
        [stranger.id, signBytes(stranger, release.files.keyset)],
        [b!.id, signBytes(stranger, release.files.keyset)],
      ]),
    };
    expect(refusal(() => verifyKeyset(files, rootSpkis(release), NOW))).toBe("KEYSET_NOT_VOUCHED");
  });

  test("a third root's signature makes up for a missing one", () => {
    const third = makeKey();
    const release = makeRelease();
    const [a] = release.roots;
    const files = {
      ...release.files,
      keysetSignatures: new Map([
        [a!.id, release.files.keysetSignatures.get(a!.id)!],
        [third.id, signBytes(third, release.files.keyset)],
      ]),
    };
    expect(verifyKeyset(files, [...rootSpkis(release), third.publicKey], NOW).keys).toHaveLength(1);
  });

  test("a key set altered after the roots signed it: KEYSET_NOT_VOUCHED", () => {
    const release = makeRelease();
    const altered = encode(new TextDecoder().decode(release.files.keyset).replace("\n", "\n "));
    expect(refusal(() => verifyKeyset({ ...release.files, keyset: altered }, rootSpkis(release), NOW))).toBe(
      "KEYSET_NOT_VOUCHED",
    );
  });

  test("a vouched key set that is not the format: KEYSET_MALFORMED", () => {
    const roots = [makeKey(), makeKey()];
    const keyset = encode(JSON.stringify({ ...keysetOf([makeKey()]), extra: 1 }));
    const files = {
      manifest: new Uint8Array(),
      manifestSignature: undefined,
      keyset,
      keysetSignatures: new Map(roots.map((r) => [r.id, signBytes(r, keyset)])),
    };
    expect(
      refusal(() =>
        verifyKeyset(
          files,
          roots.map((r) => r.publicKey),
          NOW,
        ),
      ),
    ).toBe("KEYSET_MALFORMED");
  });

  test("a key whose id does not match its public key: KEYSET_MALFORMED", () => {
    const roots = [makeKey(), makeKey()];
    const [k1, k2] = [makeKey(), makeKey()];
    const keyset = encode(JSON.stringify({ ...keysetOf([k1]), keys: [{ id: k1.id, publicKey: k2.publicKey }] }));
    const files = {
      manifest: new Uint8Array(),
      manifestSignature: undefined,
      keyset,
      keysetSignatures: new Map(roots.map((r) => [r.id, signBytes(r, keyset)])),
    };
    expect(
      refusal(() =>
        verifyKeyset(
          files,
          roots.map((r) => r.publicKey),
          NOW,
        ),
      ),
    ).toBe("KEYSET_MALFORMED");
  });

  test("an expired key set: KEYSET_EXPIRED", () => {
    const release = makeRelease({ keyset: { expires: new Date(NOW.getTime() - 1000).toISOString() } });
    expect(refusal(() => verifyKeyset(release.files, rootSpkis(release), NOW))).toBe("KEYSET_EXPIRED");
  });
});

describe("manifest signature", () => {
  const keysetOfRelease = (release: ReturnType<typeof makeRelease>) =>
    verifyKeyset(release.files, rootSpkis(release), NOW);

  test("over its cap: MANIFEST_TOO_LARGE, before anything else", () => {
    const release = makeRelease();
    const big = new Uint8Array(MAX_MANIFEST_BYTES + 1);
    expect(
      refusal(() =>
        verifyManifestSignature(
          { ...release.files, manifest: big, manifestSignature: signBytes(release.releaseKey, big) },
          keysetOfRelease(release),
        ),
      ),
    ).toBe("MANIFEST_TOO_LARGE");
  });

  test("no signature: SIGNATURE_MISSING", () => {
    const release = makeRelease();
    expect(
      refusal(() =>
        verifyManifestSignature({ ...release.files, manifestSignature: undefined }, keysetOfRelease(release)),
      ),
    ).toBe("SIGNATURE_MISSING");
    expect(
      refusal(() =>
        verifyManifestSignature({ ...release.files, manifestSignature: new Uint8Array() }, keysetOfRelease(release)),
      ),
    ).toBe("SIGNATURE_MISSING");
  });

  test("signed by a key the key set does not list: KEY_UNKNOWN", () => {
    const stranger = makeKey();
    const release = makeRelease();
    const manifest = encode(renderManifest(manifestOf(stranger)));
    expect(
      refusal(() =>
        verifyManifestSignature(
          { ...release.files, manifest, manifestSignature: signBytes(stranger, manifest) },
          keysetOfRelease(release),
        ),
      ),
    ).toBe("KEY_UNKNOWN");
  });

  test("the same JSON serialised differently: SIGNATURE_INVALID (the signature covers the exact bytes)", () => {
    const release = makeRelease();
    const reserialised = encode(JSON.stringify(JSON.parse(new TextDecoder().decode(release.files.manifest))));
    expect(
      refusal(() => verifyManifestSignature({ ...release.files, manifest: reserialised }, keysetOfRelease(release))),
    ).toBe("SIGNATURE_INVALID");
  });

  test("a signature of the wrong length or by another listed key's bytes: SIGNATURE_INVALID", () => {
    const release = makeRelease();
    const sig = release.files.manifestSignature!;
    expect(
      refusal(() =>
        verifyManifestSignature({ ...release.files, manifestSignature: sig.subarray(0, 63) }, keysetOfRelease(release)),
      ),
    ).toBe("SIGNATURE_INVALID");
    const flipped = new Uint8Array(sig);
    flipped[10]! ^= 1;
    expect(
      refusal(() =>
        verifyManifestSignature({ ...release.files, manifestSignature: flipped }, keysetOfRelease(release)),
      ),
    ).toBe("SIGNATURE_INVALID");
  });

  test("a signed manifest that is not the format: MANIFEST_MALFORMED", () => {
    const release = makeRelease();
    const manifest = encode(JSON.stringify({ ...manifestOf(release.releaseKey), unexpected: true }));
    expect(
      refusal(() =>
        verifyManifestSignature(
          { ...release.files, manifest, manifestSignature: signBytes(release.releaseKey, manifest) },
          keysetOfRelease(release),
        ),
      ),
    ).toBe("MANIFEST_MALFORMED");
  });

  test("not JSON at all: MANIFEST_MALFORMED", () => {
    const release = makeRelease();
    const manifest = encode("<html>not found</html>");
    expect(
      refusal(() =>
        verifyManifestSignature(
          { ...release.files, manifest, manifestSignature: signBytes(release.releaseKey, manifest) },
          keysetOfRelease(release),
        ),
      ),
    ).toBe("MANIFEST_MALFORMED");
  });
});

describe("acceptance rules", () => {
  test("a manifest within its dates for our channel is accepted", () => {
    expect(checkManifest(manifestOf(makeKey()), RULES, NOW).url).toBe("connector-linux-x64");
  });

  test("MANIFEST_EXPIRED", () =>
    expect(check({ expires: new Date(NOW.getTime() - 1).toISOString() })).toBe("MANIFEST_EXPIRED"));
  test("WRONG_CHANNEL", () => expect(check({ channel: "beta" })).toBe("WRONG_CHANNEL"));
  test("SEQUENCE_ROLLBACK: below the highest accepted", () => expect(check({ sequence: 8 })).toBe("SEQUENCE_ROLLBACK"));
  test("SEQUENCE_ROLLBACK: equal sequence for another version", () =>
    expect(check({ sequence: 9 })).toBe("SEQUENCE_ROLLBACK"));
  test("equal sequence is fine for the same version", () => {
    expect(
      checkManifest(manifestOf(makeKey(), { sequence: 9 }), { ...RULES, highestVersion: "1.5.0" }, NOW).size,
    ).toBeGreaterThan(0);
  });
  test("VERSION_ROLLBACK", () =>
    expect(check({ version: "1.3.9" }, { runningVersion: "1.3.0" })).toBe("VERSION_ROLLBACK"));
  test("NOT_NEWER: the running version", () => expect(check({ version: "1.4.0" })).toBe("NOT_NEWER"));
  test("NOT_NEWER: a pre-release of the running version", () =>
    expect(check({ version: "1.4.0-rc.2" }, { highestVersion: undefined, highestSequence: 0 })).toBe("NOT_NEWER"));
  test("VERSION_SKIPPED", () => expect(check({}, { skipped: ["1.5.0"] })).toBe("VERSION_SKIPPED"));
  test("TARGET_MISSING", () => expect(check({}, { target: "linux-arm64" })).toBe("TARGET_MISSING"));
  test("TARGET_MISSING for a name inherited by every object", () =>
    expect(check({}, { target: "constructor" })).toBe("TARGET_MISSING"));
  test("VERSION_NOT_OFFERED: an explicit version the manifest does not hold", () =>
    expect(check({}, { explicitVersion: "1.6.0" })).toBe("VERSION_NOT_OFFERED"));

  test("an explicit downgrade waives both version checks and the skip list", () => {
    const manifest = manifestOf(makeKey(), { version: "1.3.0", sequence: 11 });
    const rules = { ...RULES, skipped: ["1.3.0"], explicitVersion: "1.3.0" };
    expect(checkManifest(manifest, rules, NOW).url).toBe("connector-linux-x64");
  });

  test("an explicit downgrade never waives the sequence check", () => {
    expect(check({ version: "1.3.0", sequence: 8 }, { explicitVersion: "1.3.0" })).toBe("SEQUENCE_ROLLBACK");
  });
});

describe("verifyBinaryBytes", () => {
  const good = binaryOf("binary");
  const target = { url: "connector-linux-x64", size: good.bytes.byteLength, sha256: good.sha256 };
  test("accepts the exact bytes", () => expect(() => verifyBinaryBytes(good.bytes, target)).not.toThrow());
  test("BODY_TOO_LONG", () =>
    expect(refusal(() => verifyBinaryBytes(encode("binary!"), target))).toBe("BODY_TOO_LONG"));
  test("BODY_TOO_SHORT", () =>
    expect(refusal(() => verifyBinaryBytes(encode("binar"), target))).toBe("BODY_TOO_SHORT"));
  test("HASH_MISMATCH", () => expect(refusal(() => verifyBinaryBytes(encode("BINARY"), target))).toBe("HASH_MISMATCH"));
});
