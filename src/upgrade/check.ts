/**
 * One look at the release source: fetch the channel's manifest and key set, verify them against the
 * compiled-in roots and the state dir's history, and say what it means for this connector — up to date,
 * offered but not for us (pin, rollout, skipped), or a release to take. Nothing is downloaded here.
 */
import { errnoCode } from "../errors.ts";
import { fetchReleaseFiles, type RetrievalPolicy } from "./download.ts";
import { UpgradeError } from "./errors.ts";
import type { Manifest, ManifestTarget } from "./format.ts";
import { planUpgrade } from "./schedule.ts";
import { acceptRelease, readUpgradeState, writeUpgradeState } from "./state.ts";
import {
  assertRootsUsable,
  rootIdsOf,
  verifyKeyset,
  verifyManifestSignature,
  verifyRelease,
  type ReleaseFiles,
} from "./verify.ts";

export interface CheckInput {
  readonly manifestUrl: URL;
  readonly roots: readonly string[];
  readonly policy: RetrievalPolicy;
  readonly stateDir: string;
  readonly channel: string;
  readonly running: { readonly version: string; readonly target: string };
  readonly now: Date;
  /** The operator asked for exactly this version (`connector upgrade --version V`): a downgrade is allowed. */
  readonly explicitVersion?: string;
  /** The daemon's schedule also applies pin and staged rollout; a manual upgrade does not. */
  readonly policyOf?: { readonly connectorId: string; readonly pinVersion?: string };
}

export type CheckResult =
  | { readonly kind: "up-to-date"; readonly manifest: Manifest }
  | { readonly kind: "not-taken"; readonly manifest: Manifest; readonly reason: string }
  | {
      readonly kind: "available";
      readonly manifest: Manifest;
      readonly target: ManifestTarget;
      readonly files: ReleaseFiles;
    };

export async function checkRelease(input: CheckInput): Promise<CheckResult> {
  assertRootsUsable(input.roots);
  const files = await fetchReleaseFiles(input.manifestUrl, rootIdsOf(input.roots), input.policy);
  const state = readUpgradeState(input.stateDir);
  // A pinned daemon takes exactly its pin, even an older version: verified as an explicit version.
  const pin = input.explicitVersion === undefined ? input.policyOf?.pinVersion : undefined;
  let verified: { manifest: Manifest; target: ManifestTarget };
  try {
    verified = verifyRelease(
      files,
      input.roots,
      {
        channel: input.channel,
        runningVersion: input.running.version,
        target: input.running.target,
        highestSequence: state.highestSequence,
        highestVersion: state.highestVersion,
        skipped: state.skipped,
        explicitVersion: input.explicitVersion ?? pin,
      },
      input.now,
    );
  } catch (err) {
    if (!(err instanceof UpgradeError)) throw err;
    if (err.code === "VERSION_NOT_OFFERED" && pin !== undefined) {
      const manifest = signedManifest(files, input);
      return { kind: "not-taken", manifest, reason: `pinned to ${pin}; the channel offers ${manifest.version}` };
    }
    if (err.code === "VERSION_SKIPPED" && input.policyOf) {
      // The schedule meets a rolled-back version at every check until a newer one comes: not news.
      const manifest = signedManifest(files, input);
      return {
        kind: "not-taken",
        manifest,
        reason: `${manifest.version} was rolled back on this connector and is skipped`,
      };
    }
    if (err.code !== "NOT_NEWER") throw err;
    // A verified manifest for what runs already: nothing to take. Its sequence still raises the floor
    // below which nothing is accepted, so a replay of an older manifest is refused from now on.
    return { kind: "up-to-date", manifest: upToDateManifest(files, input, state.highestSequence) };
  }
  const { manifest, target } = verified;
  if (input.policyOf) {
    const plan = planUpgrade({
      manifest,
      runningVersion: input.running.version,
      connectorId: input.policyOf.connectorId,
      pinVersion: input.policyOf.pinVersion,
      skipped: state.skipped,
    });
    if (!plan.take)
      return manifest.version === input.running.version
        ? { kind: "up-to-date", manifest }
        : { kind: "not-taken", manifest, reason: plan.reason };
  }
  return { kind: "available", manifest, target, files };
}

/** The manifest behind a refusal by version rules (its signature was checked before them). */
function signedManifest(files: ReleaseFiles, input: CheckInput): Manifest {
  return verifyManifestSignature(files, verifyKeyset(files, input.roots, input.now));
}

/** The manifest behind a NOT_NEWER; a current one for this channel raises the recorded sequence. */
function upToDateManifest(files: ReleaseFiles, input: CheckInput, highestSequence: number): Manifest {
  const manifest = signedManifest(files, input);
  const current = manifest.channel === input.channel && Date.parse(manifest.expires) > input.now.getTime();
  if (current && manifest.sequence > highestSequence) {
    try {
      writeUpgradeState(input.stateDir, acceptRelease(readUpgradeState(input.stateDir), manifest));
    } catch (err) {
      // A read-only state dir (a manual --check as another user) only loses the raised floor.
      if (errnoCode(err) === undefined) throw err;
    }
  }
  return manifest;
}
