/**
 * Stand-ins for the verification and state modules that src/upgrade/apply.ts takes as ApplyDeps, so
 * apply can be tested on its own: a "verify" that trusts a manifest exactly when its bytes are the
 * ones the test staged, a binary check by SHA-256, a self-check that really runs the file, and an
 * in-memory state that records what was written and for whom.
 */
import { createHash } from "node:crypto";
import type { ApplyDeps } from "../../src/upgrade/apply.ts";
import type { UpgradeState } from "../../src/upgrade/state.ts";
import { UpgradeError } from "../../src/upgrade/errors.ts";
import type { Manifest } from "../../src/upgrade/format.ts";
import type { AcceptanceRules } from "../../src/upgrade/verify.ts";

export function testManifest(version: string, sequence: number, binary: Uint8Array): Manifest {
  return {
    schema: 1,
    product: "connector",
    channel: "stable",
    version,
    sequence,
    released: "2026-03-01T00:00:00.000Z",
    expires: "2026-06-01T00:00:00.000Z",
    keyId: "0123456789abcdef",
    targets: {
      "linux-x64": {
        url: "connector-linux-x64",
        size: binary.byteLength,
        sha256: createHash("sha256").update(binary).digest("hex"),
      },
    },
  };
}

export interface FakeDeps extends ApplyDeps {
  state: UpgradeState;
  /** The rules each verifyRelease call got. */
  rules: AcceptanceRules[];
  writes: { owner?: { uid: number; gid: number } }[];
  /** When set, verifyRelease throws it (a refusal). */
  refuse?: UpgradeError;
  onVerify?: () => void;
}

export function fakeDeps(trustedManifest: () => Uint8Array | undefined): FakeDeps {
  const deps: FakeDeps = {
    state: { schema: 1, highestSequence: 0, skipped: [], outcomes: [] },
    rules: [],
    writes: [],
    verifyRelease(files, _roots, rules) {
      deps.onVerify?.();
      deps.rules.push(rules);
      if (deps.refuse) throw deps.refuse;
      const trusted = trustedManifest();
      if (trusted === undefined || Buffer.compare(Buffer.from(files.manifest), Buffer.from(trusted)) !== 0)
        throw new UpgradeError("SIGNATURE_INVALID", "not the manifest the test signed");
      const manifest = JSON.parse(Buffer.from(files.manifest).toString("utf8")) as Manifest;
      const target = manifest.targets["linux-x64"];
      if (target === undefined) throw new UpgradeError("TARGET_MISSING", "no linux-x64");
      return { manifest, target };
    },
    verifyBinaryBytes(bytes, target) {
      if (createHash("sha256").update(bytes).digest("hex") !== target.sha256)
        throw new UpgradeError("HASH_MISMATCH", "hash differs");
    },
    async selfCheck(path, expected) {
      const child = Bun.spawnSync([path, "--version"], { env: {} });
      const out = child.stdout.toString().trim();
      if (
        child.exitCode !== 0 ||
        !out.startsWith(`connector ${expected.version} `) ||
        !out.includes(`target ${expected.target})`)
      ) {
        throw new UpgradeError("SELF_CHECK_FAILED", `printed ${JSON.stringify(out)}`);
      }
    },
    readUpgradeState: () => structuredClone(deps.state),
    writeUpgradeState(_dir, state, owner) {
      deps.state = structuredClone(state);
      deps.writes.push(owner === undefined ? {} : { owner });
    },
    acceptRelease: (state, manifest) => ({
      ...state,
      highestSequence: manifest.sequence,
      highestVersion: manifest.version,
    }),
    markSkipped: (state, version) => ({ ...state, skipped: [...state.skipped, version] }),
    recordOutcome: (state, outcome) => ({ ...state, outcomes: [...state.outcomes, { ...outcome, reported: false }] }),
  };
  return deps;
}
