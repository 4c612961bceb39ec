/**
 * The daemon's upgrade schedule: every `upgrade-interval` (±20 % jitter, so a fleet does not ask at
 * once), inside the maintenance window when one is set, it looks at its channel, and takes a release
 * that is newer, vouched for, meant for this connector (pin, staged rollout) and not skipped. Taking it
 * means: download and stage it here (this user cannot write the binary), ask for it to be applied
 * (the root upgrade unit, or itself when it may replace the binary), and wait for the answer. A
 * "swapped" answer is picked up by the daemon's result watch, which hands over to the new version.
 *
 * Every outcome is logged, kept in the state dir, shown in status and reported to the control plane;
 * an outcome the control plane did not get is sent again after the next check.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { checkRelease } from "../upgrade/check.ts";
import { assertRootsUsable } from "../upgrade/verify.ts";
import { UpgradeError } from "../upgrade/errors.ts";
import { displayUrl, manifestUrlFor, retrievalPolicy } from "../upgrade/release-source.ts";
import { inWindow, msUntilWindow, nextCheckDelay, parseWindow, type UpgradeWindow } from "../upgrade/schedule.ts";
import { requestAndApply, requestAndWait, stageRelease } from "../upgrade/stage-release.ts";
import type { UpgradeResult } from "../upgrade/staging.ts";
import { markReported, readUpgradeState, recordOutcome, writeUpgradeState, type Outcome } from "../upgrade/state.ts";
import { canReplace } from "../upgrade/swap.ts";
import type { UpgradeStatus } from "../status/schema.ts";
import { ownerForWrites } from "../upgrade/owned-file.ts";

/** The first check after start comes sooner than the interval, still jittered. */
const FIRST_CHECK_MAX_MS = 15 * 60_000;
/** A transient failure (network, release host down) is retried sooner than the interval. */
const RETRY_AFTER_FAILURE_MAX_MS = 60 * 60_000;
/** How long the root upgrade unit may take to answer a staged release. */
const APPLY_ANSWER_MS = 10 * 60_000;
const TRANSIENT = new Set(["DOWNLOAD_FAILED", "DOWNLOAD_TIMEOUT", "DOWNLOAD_TOO_SLOW"]);
/** "Could not be done" rather than "this release is not acceptable". */
const FAILURES = new Set([...TRANSIENT, "SWAP_FAILED", "APPLY_TIMEOUT", "BINARY_NOT_WRITABLE", "NO_PREVIOUS_BINARY"]);

/** What status shows of upgrades (the schema is the status snapshot's). */
export type UpgradeView = UpgradeStatus;
type LastCheck = NonNullable<UpgradeStatus["lastCheck"]>;

export interface AutoUpgradeDeps {
  readonly settings: Settings;
  readonly connectorId: string;
  readonly installed: string;
  readonly roots: readonly string[];
  readonly running: { readonly version: string; readonly target: string };
  readonly log: Logger;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Sends one outcome to the control plane (docs/PROTOCOL.md §3.6); throws when it was not taken. */
  readonly report: (outcome: Outcome) => Promise<void>;
  readonly random?: () => number;
  /** True while a hand-over is in progress: the binary on disk is already newer, nothing to check. */
  readonly paused?: () => boolean;
}

export class AutoUpgrade {
  readonly #deps: AutoUpgradeDeps;
  readonly #window?: UpgradeWindow;
  #timer?: TimerHandle;
  #nextCheckAt?: Date;
  #lastCheck?: LastCheck;
  #running?: Promise<void>;
  #reporting?: Promise<void>;
  #stopped = false;

  constructor(deps: AutoUpgradeDeps) {
    this.#deps = deps;
    this.#window = deps.settings.upgradeWindow ? parseWindow(deps.settings.upgradeWindow) : undefined;
  }

  start(): void {
    const { settings, log } = this.#deps;
    if (!settings.autoUpgrade) {
      log.info("automatic upgrades are off (auto-upgrade off)");
      return;
    }
    try {
      manifestUrlFor(settings);
      assertRootsUsable(this.#deps.roots);
    } catch (err) {
      // Nothing to check against: say so once, not at every interval.
      log.info("automatic upgrades are idle", { reason: describeError(err) });
      return;
    }
    this.#schedule(nextCheckDelay(Math.min(settings.upgradeInterval * 1000, FIRST_CHECK_MAX_MS), this.#deps.random));
    void this.reportPending();
  }

  /** No check after this one, not even one rescheduled by a check in flight (a process handing over). */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#nextCheckAt = undefined;
  }

  /** One check now (also what the timer runs); concurrent calls share it. */
  checkNow(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#check().finally(() => (this.#running = undefined));
    return this.#running;
  }

  view(): UpgradeView {
    const { settings } = this.#deps;
    let source: string | undefined;
    try {
      source = displayUrl(manifestUrlFor(settings));
    } catch {
      source = undefined;
    }
    const state = safeState(settings.stateDir);
    return {
      auto: settings.autoUpgrade,
      channel: settings.channel,
      source,
      pinnedVersion: settings.pinVersion,
      window: settings.upgradeWindow,
      nextCheckAt: this.#nextCheckAt?.toISOString(),
      lastCheck: this.#lastCheck,
      lastOutcome: state?.outcomes.at(-1),
      skipped: [...(state?.skipped ?? [])],
    };
  }

  #schedule(delayMs: number): void {
    if (this.#deps.signal.aborted || this.#stopped) return;
    const { clock } = this.#deps;
    this.#timer?.cancel();
    this.#nextCheckAt = new Date(clock.wallNow().getTime() + delayMs);
    this.#timer = clock.setTimeout(() => void this.checkNow(), delayMs);
  }

  async #check(): Promise<void> {
    const { settings, clock, log } = this.#deps;
    const now = clock.wallNow();
    if (this.#window && !inWindow(this.#window, now)) {
      // Into the window, spread over its first minutes so a fleet does not start together.
      const spread = Math.min(10 * 60_000, windowLengthMs(this.#window) / 2);
      this.#schedule(msUntilWindow(this.#window, now) + Math.floor((this.#deps.random ?? Math.random)() * spread));
      return;
    }
    let nextMs = nextCheckDelay(settings.upgradeInterval * 1000, this.#deps.random);
    if (this.#deps.paused?.()) {
      this.#schedule(nextMs);
      return;
    }
    try {
      await this.#takeIfOffered();
    } catch (err) {
      const code = err instanceof UpgradeError ? err.code : undefined;
      const transient = code === undefined || TRANSIENT.has(code);
      const result = code === undefined || FAILURES.has(code) ? "failed" : "refused";
      this.#lastCheck = { at: now.toISOString(), result, detail: describeError(err) };
      log.warn("upgrade check failed", { code: code ?? "UNEXPECTED", error: describeError(err) });
      this.#record({
        at: now.toISOString(),
        from: this.#deps.running.version,
        result,
        code,
        message: describeError(err).slice(0, 512),
      });
      if (transient) nextMs = Math.min(nextMs, nextCheckDelay(RETRY_AFTER_FAILURE_MAX_MS, this.#deps.random));
    }
    await this.reportPending();
    this.#schedule(nextMs);
  }

  async #takeIfOffered(): Promise<void> {
    const { settings, log, clock, running } = this.#deps;
    const manifestUrl = manifestUrlFor(settings);
    const policy = retrievalPolicy(settings, this.#deps.signal);
    const at = clock.wallNow().toISOString();
    const check = await checkRelease({
      manifestUrl,
      roots: this.#deps.roots,
      policy,
      stateDir: settings.stateDir,
      channel: settings.channel,
      running,
      now: clock.wallNow(),
      policyOf: { connectorId: this.#deps.connectorId, pinVersion: settings.pinVersion },
    });
    if (check.kind === "up-to-date") {
      this.#lastCheck = { at, result: "up-to-date", version: check.manifest.version };
      log.debug("upgrade check: up to date", { version: running.version, offered: check.manifest.version });
      return;
    }
    if (check.kind === "not-taken") {
      this.#lastCheck = { at, result: "not-taken", version: check.manifest.version, detail: check.reason };
      log.info("upgrade check: release not taken", { offered: check.manifest.version, reason: check.reason });
      return;
    }
    log.info("upgrade: taking release", {
      from: running.version,
      to: check.manifest.version,
      sequence: check.manifest.sequence,
    });
    await stageRelease(settings.stateDir, manifestUrl, check.files, check.target, policy);
    // Applied by another process either way: the root upgrade unit, or a child of this one when this
    // user may replace the binary (never in the daemon itself, whose streams would stall meanwhile).
    const result: UpgradeResult = canReplace(this.#deps.installed)
      ? await requestAndApply(settings.stateDir, "apply", this.#deps.installed, settings.channel)
      : await requestAndWait(settings.stateDir, "apply", {
          deadlineMs: APPLY_ANSWER_MS,
          clock,
          signal: this.#deps.signal,
        });
    const ok = result.result === "swapped";
    this.#lastCheck = {
      at,
      result: ok ? "installed" : "refused",
      version: check.manifest.version,
      detail: result.message,
    };
    if (ok) log.info("upgrade: new version installed; handing over", { from: result.from, to: result.to });
    else
      log.warn("upgrade: release refused when applied", {
        to: check.manifest.version,
        code: result.code,
        reason: result.message,
      });
  }

  #record(outcome: Omit<Outcome, "reported">): void {
    const { settings, log } = this.#deps;
    try {
      writeUpgradeState(
        settings.stateDir,
        recordOutcome(readUpgradeState(settings.stateDir), outcome),
        ownerForWrites(settings.stateDir),
      );
    } catch (err) {
      log.warn("upgrade outcome not kept in the state dir", { error: describeError(err) });
    }
  }

  /** Sends every outcome the control plane has not confirmed, oldest first; stops at the first failure. */
  reportPending(): Promise<void> {
    // One at a time: two senders would both send the same outcomes before either marks them.
    this.#reporting ??= this.#sendPending().finally(() => (this.#reporting = undefined));
    return this.#reporting;
  }

  async #sendPending(): Promise<void> {
    const { settings, log } = this.#deps;
    const state = safeState(settings.stateDir);
    if (!state) return;
    const pending = state.outcomes.filter((o) => !o.reported);
    let sent = 0;
    for (const outcome of pending) {
      try {
        await this.#deps.report(outcome);
        sent += 1;
      } catch (err) {
        log.debug("upgrade outcome not reported yet", { error: describeError(err) });
        break;
      }
    }
    if (sent === 0) return;
    try {
      writeUpgradeState(
        settings.stateDir,
        markReported(readUpgradeState(settings.stateDir), sent),
        ownerForWrites(settings.stateDir),
      );
    } catch (err) {
      log.warn("upgrade outcomes reported but not marked", { error: describeError(err) });
    }
  }
}

function windowLengthMs(window: UpgradeWindow): number {
  const minutes = (window.endMinute - window.startMinute + 24 * 60) % (24 * 60) || 24 * 60;
  return minutes * 60_000;
}

function safeState(stateDir: string) {
  try {
    return readUpgradeState(stateDir);
  } catch {
    return undefined;
  }
}
