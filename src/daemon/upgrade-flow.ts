/**
 * Upgrades over the daemon's life, around the schedule (auto-upgrade.ts) and the hand-over
 * (handover.ts):
 *   - a new "swapped" result (whoever applied it) → hand over to the binary on disk; when the new
 *     version does not come up in time, roll back: `connector.prev` restored (by the root upgrade unit,
 *     or here when this user may replace the binary), the version marked skipped, this process serving on;
 *   - at start, a version on probation (installed, not yet proven) counts its starts in the state dir,
 *     which survives reboots: more than MAX_PROBATION_STARTS is a crash loop, rolled back the same way;
 *     probation ends once it has kept a tunnel up for PROBATION_MS.
 * Every outcome is kept in state.json and reported to the control plane by the schedule.
 */
import { sleep, type TimerHandle } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { ownerForWrites } from "../upgrade/owned-file.ts";
import { requestAndApply, requestAndWait } from "../upgrade/stage-release.ts";
import type { UpgradeResult } from "../upgrade/staging.ts";
import {
  readUpgradeState,
  recordOutcome,
  writeUpgradeState,
  type Outcome,
  type UpgradeState,
} from "../upgrade/state.ts";
import { canReplace } from "../upgrade/swap.ts";
import { AutoUpgrade, type AutoUpgradeDeps } from "./auto-upgrade.ts";
import type { HandoverOutcome } from "./handover.ts";
import { watchSwapResult, type SwapResult } from "./swap-result-watch.ts";

/** Starts of a version on probation before it counts as a crash loop. */
export const MAX_PROBATION_STARTS = 3;
/** After this long, restarts of a newly installed version no longer count towards a crash loop. */
export const PROBATION_MAX_AGE_MS = 60 * 60_000;
/** How long a new version must keep a tunnel up before it is trusted. */
export const PROBATION_MS = 10 * 60_000;
const PROBATION_POLL_MS = 30_000;
/** How long the root upgrade unit may take to restore the previous binary. */
const ROLLBACK_ANSWER_MS = 5 * 60_000;
/** How often a hand-over that waits for this process's tunnels looks again. */
const OUTAGE_RECHECK_MS = 30_000;

export interface UpgradeFlowDeps extends Omit<AutoUpgradeDeps, "signal"> {
  readonly signal: AbortSignal;
  readonly handOver: () => Promise<HandoverOutcome>;
  readonly tunnelsUp: () => number;
}

export class UpgradeFlow {
  readonly #deps: UpgradeFlowDeps;
  readonly auto: AutoUpgrade;
  #watch?: { stop(): void };
  #probationTimer?: TimerHandle;
  #upSince?: number;
  #handingOver = false;
  #stopped = false;

  constructor(deps: UpgradeFlowDeps) {
    this.#deps = deps;
    this.auto = new AutoUpgrade({ ...deps, paused: () => this.#handingOver });
  }

  start(): void {
    const { settings, clock, running, log } = this.#deps;
    this.#watch = watchSwapResult({
      stateDir: settings.stateDir,
      clock,
      version: running.version,
      onUnreadable: (error) => log.warn("upgrade result not readable", { error }),
      onSwapped: (result) => void this.#handOver(result),
    });
    this.auto.start();
    this.#watchProbation();
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.stop();
    this.auto.stop();
    this.#probationTimer?.cancel();
  }

  async #handOver(result: SwapResult): Promise<void> {
    const { log } = this.#deps;
    if (this.#handingOver) {
      log.warn("another swap while a hand-over is in progress: ignored", { to: result.to });
      return;
    }
    this.#handingOver = true;
    try {
      await this.#handOverTo(result);
    } finally {
      this.#handingOver = false;
    }
  }

  async #handOverTo(result: SwapResult): Promise<void> {
    const { log, running, clock } = this.#deps;
    // The new version is judged by bringing tunnels up; while this process has none either (the cloud
    // is unreachable), that proves nothing about it: wait for a tunnel here first.
    while (this.#deps.tunnelsUp() === 0) {
      if (this.#deps.signal.aborted || this.#stopped) return;
      log.info("hand-over waits: no tunnel is up to compare the new version with", { to: result.to });
      await sleep(clock, OUTAGE_RECHECK_MS, this.#deps.signal);
    }
    log.info("the binary was upgraded: handing over to it", { from: running.version, to: result.to });
    const outcome = await this.#deps.handOver();
    if (outcome.ok) return;
    if (this.#deps.tunnelsUp() === 0) {
      // This process lost its tunnels during the gate too: an outage, not the new version's fault.
      log.warn("hand-over not done during an outage: the new version runs at the next start", {
        reason: outcome.reason,
        to: result.to,
      });
      return;
    }
    if (outcome.code === "HANDOVER_REFUSED") {
      // Not the new version's fault (this process is stopping, or not serving yet): the next start runs it.
      log.info("hand-over not done: the new version runs at the next start", { reason: outcome.reason, to: result.to });
      return;
    }
    log.error("hand-over failed: the new version did not take over; rolling back, this process keeps serving", {
      code: outcome.code,
      reason: outcome.reason,
      to: result.to,
    });
    this.#record({
      from: running.version,
      ...(result.to ? { to: result.to } : {}),
      result: "failed",
      code: outcome.code,
      message: outcome.reason.slice(0, 512),
    });
    await this.rollBack(result.to ?? "unknown", "hand-over");
    await this.auto.reportPending();
  }

  /** Restores connector.prev in place of `version` (marked skipped); logs what came of it. */
  async rollBack(version: string, why: string): Promise<UpgradeResult | undefined> {
    const { settings, log, clock, installed } = this.#deps;
    try {
      // The installed binary (the version being removed) carries out the rollback, as the root unit does.
      const result = canReplace(installed)
        ? await requestAndApply(settings.stateDir, "rollback", installed, settings.channel)
        : await requestAndWait(settings.stateDir, "rollback", {
            deadlineMs: ROLLBACK_ANSWER_MS,
            clock,
            signal: this.#deps.signal,
          });
      if (result.result === "rolled-back")
        log.warn(`upgrade: ${version} rolled back after a failed ${why}; it will be skipped`, {
          from: result.from,
          to: result.to,
        });
      else log.error(`upgrade: rollback of ${version} ${result.result}`, { code: result.code, reason: result.message });
      return result;
    } catch (err) {
      log.error(`upgrade: rollback of ${version} failed`, { error: describeError(err) });
      return undefined;
    }
  }

  /** Probation ends once a tunnel has been up for PROBATION_MS without a break. */
  #watchProbation(): void {
    const { settings, clock, running } = this.#deps;
    const probation = safeState(settings.stateDir)?.probation;
    if (!probation || probation.version !== running.version) return;
    const check = () => {
      const now = clock.now();
      if (this.#deps.tunnelsUp() === 0) this.#upSince = undefined;
      else this.#upSince ??= now;
      if (this.#upSince !== undefined && now - this.#upSince >= PROBATION_MS) {
        this.#update((s) => (s.probation?.version === running.version ? withoutProbation(s) : s));
        this.#deps.log.info("upgrade: the new version has proven itself; probation over", { version: running.version });
        return;
      }
      this.#probationTimer = clock.setTimeout(check, PROBATION_POLL_MS);
    };
    check();
  }

  /**
   * At start: a version on probation counts this start; past MAX_PROBATION_STARTS it is a crash loop,
   * rolled back here. True when the caller should exit so the service manager starts the restored binary.
   */
  async guardStart(): Promise<boolean> {
    const { settings, running, log } = this.#deps;
    if (!countProbationStart(settings, running.version, log, this.#deps.clock.wallNow())) return false;
    log.error("upgrade: this version keeps restarting before it proved itself: rolling back", {
      version: running.version,
      maxStarts: MAX_PROBATION_STARTS,
    });
    this.#record({
      from: running.version,
      result: "failed",
      code: "CRASH_LOOP",
      message: `started more than ${MAX_PROBATION_STARTS} times within its probation`,
    });
    const result = await this.rollBack(running.version, "crash loop");
    await this.auto.reportPending();
    return result?.result === "rolled-back";
  }

  #record(outcome: Omit<Outcome, "at" | "reported">): void {
    this.#update((s) => recordOutcome(s, { at: this.#deps.clock.wallNow().toISOString(), ...outcome }));
  }

  #update(change: (s: UpgradeState) => UpgradeState): void {
    const { settings, log } = this.#deps;
    try {
      writeUpgradeState(
        settings.stateDir,
        change(readUpgradeState(settings.stateDir)),
        ownerForWrites(settings.stateDir),
      );
    } catch (err) {
      log.warn("upgrade state not written", { error: describeError(err) });
    }
  }
}

function withoutProbation(state: UpgradeState): UpgradeState {
  const { probation: _ended, ...rest } = state;
  return rest;
}

function safeState(stateDir: string): UpgradeState | undefined {
  try {
    return readUpgradeState(stateDir);
  } catch {
    return undefined;
  }
}

/**
 * At start: a version on probation counts this start. Returns true when it has now started more than
 * MAX_PROBATION_STARTS times (a crash loop): the caller rolls back and exits, and the service manager
 * starts the restored binary.
 */
export function countProbationStart(
  settings: Pick<Settings, "stateDir">,
  version: string,
  log: Logger,
  now: Date = new Date(),
): boolean {
  let state: UpgradeState;
  try {
    state = readUpgradeState(settings.stateDir);
  } catch {
    return false;
  }
  const probation = state.probation;
  if (!probation || probation.version !== version) return false;
  // Restarts long after the install (reboots, a long control-plane outage that kept it from proving
  // itself) are not a crash loop: probation lapses after PROBATION_MAX_AGE_MS.
  if (now.getTime() - Date.parse(probation.since) > PROBATION_MAX_AGE_MS) {
    const { probation: _lapsed, ...rest } = state;
    try {
      writeUpgradeState(settings.stateDir, rest, ownerForWrites(settings.stateDir));
    } catch (err) {
      log.warn("upgrade probation not cleared", { error: describeError(err) });
    }
    return false;
  }
  const starts = probation.starts + 1;
  try {
    writeUpgradeState(
      settings.stateDir,
      { ...state, probation: { ...probation, starts } },
      ownerForWrites(settings.stateDir),
    );
  } catch (err) {
    log.warn("upgrade probation start not counted", { error: describeError(err) });
  }
  return starts > MAX_PROBATION_STARTS;
}
