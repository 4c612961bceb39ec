/**
 * What `connector upgrade` does, beside the CLI that prints it: upgrade now, say what an upgrade would
 * do (`--check`), apply what the daemon staged (`--apply-staged`, the root oneshot) and roll back.
 * A user who may replace the binary does everything here; one who may not stages the release and asks
 * the upgrade unit, then waits for its answer.
 */
import { readFileSync, rmSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
import { IdentityStore } from "../identity/store.ts";
import { applyStaged, installRelease, rollBack, type ApplyContext } from "./apply.ts";
import { applyDeps } from "./apply-deps.ts";
import { checkRelease, type CheckResult } from "./check.ts";
import { manifestUrlFor, retrievalPolicy } from "./release-source.ts";
import { inRollout, rolloutBucket } from "./rollout.ts";
import { downloadCandidate, requestAndWait, stageRelease } from "./stage-release.ts";
import type { UpgradeResult } from "./staging.ts";
import { canReplace } from "./swap.ts";

/** How long `connector upgrade` waits for the upgrade unit before it gives up (APPLY_TIMEOUT). */
export const UNIT_ANSWER_MS = 5 * 60_000;

export interface ManualContext {
  readonly settings: Settings;
  /** The binary to replace: the running executable. */
  readonly installed: string;
  readonly roots: readonly string[];
  readonly running: { readonly version: string; readonly target: string };
  readonly now: () => Date;
  readonly unitAnswerMs?: number;
}

export type ManualOutcome =
  | { readonly kind: "up-to-date"; readonly version: string }
  | { readonly kind: "result"; readonly result: UpgradeResult };

function applyContext(ctx: ManualContext): ApplyContext {
  return {
    stateDir: ctx.settings.stateDir,
    installed: ctx.installed,
    roots: ctx.roots,
    running: ctx.running,
    channel: ctx.settings.channel,
    now: ctx.now,
    deps: applyDeps,
  };
}

/** `connector upgrade [--version V]`: take the channel's release now (rollout, pin and window do not apply). */
export async function upgradeNow(ctx: ManualContext, explicitVersion?: string): Promise<ManualOutcome> {
  const { settings } = ctx;
  const manifestUrl = manifestUrlFor(settings);
  const policy = retrievalPolicy(settings);
  const check = await checkRelease({
    manifestUrl,
    roots: ctx.roots,
    policy,
    stateDir: settings.stateDir,
    channel: settings.channel,
    running: ctx.running,
    now: ctx.now(),
    explicitVersion,
  });
  if (check.kind !== "available") return { kind: "up-to-date", version: ctx.running.version };
  if (canReplace(ctx.installed)) {
    const downloaded = await downloadCandidate(settings.stateDir, manifestUrl, check.target, policy);
    try {
      const binary = readFileSync(downloaded);
      return { kind: "result", result: await installRelease(applyContext(ctx), check.files, binary, explicitVersion) };
    } finally {
      rmSync(downloaded, { force: true });
    }
  }
  await stageRelease(settings.stateDir, manifestUrl, check.files, check.target, policy);
  return {
    kind: "result",
    result: await requestAndWait(settings.stateDir, "apply", { deadlineMs: ctx.unitAnswerMs ?? UNIT_ANSWER_MS }),
  };
}

/** `connector upgrade --apply-staged`: the root oneshot's job; undefined when nothing was requested. */
export function applyStagedNow(ctx: ManualContext): Promise<UpgradeResult | undefined> {
  return applyStaged(applyContext(ctx));
}

/** `connector upgrade --rollback`: `connector.prev` back in place, its replacement marked skipped. */
export async function rollbackNow(ctx: ManualContext): Promise<UpgradeResult> {
  if (canReplace(ctx.installed)) return rollBack(applyContext(ctx));
  return requestAndWait(ctx.settings.stateDir, "rollback", { deadlineMs: ctx.unitAnswerMs ?? UNIT_ANSWER_MS });
}

export interface CheckReport {
  readonly manifestUrl: string;
  readonly channel: string;
  readonly running: string;
  readonly check: CheckResult;
  /** This connector's rollout bucket, when its identity could be read. */
  readonly rollout?: { readonly bucket: number; readonly percent: number; readonly included: boolean };
  readonly autoUpgrade: boolean;
  readonly pinVersion?: string;
  readonly window?: string;
}

/** `connector upgrade --check`: fetch and verify, change nothing (except raising the rollback floor). */
export async function checkNow(ctx: ManualContext): Promise<CheckReport> {
  const { settings } = ctx;
  const manifestUrl = manifestUrlFor(settings);
  const connectorId = readConnectorId(settings.stateDir);
  const check = await checkRelease({
    manifestUrl,
    roots: ctx.roots,
    policy: retrievalPolicy(settings),
    stateDir: settings.stateDir,
    channel: settings.channel,
    running: ctx.running,
    now: ctx.now(),
    policyOf: connectorId ? { connectorId, pinVersion: settings.pinVersion } : undefined,
  });
  const percent = check.manifest.rollout ?? 100;
  return {
    manifestUrl: manifestUrl.href,
    channel: settings.channel,
    running: ctx.running.version,
    check,
    rollout: connectorId
      ? { bucket: rolloutBucket(connectorId), percent, included: inRollout(connectorId, percent) }
      : undefined,
    autoUpgrade: settings.autoUpgrade,
    pinVersion: settings.pinVersion,
    window: settings.upgradeWindow,
  };
}

function readConnectorId(stateDir: string): string | undefined {
  try {
    return new IdentityStore(stateDir).read()?.connectorId;
  } catch {
    return undefined; // not enrolled, or not readable by this user: the rollout cannot be told
  }
}
