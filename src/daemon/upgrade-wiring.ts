/**
 * Upgrades as the daemon runs them: the schedule, rollback and crash-loop guard (upgrade-flow.ts), and
 * the hand-over to a new binary (handover.ts), one at a time. What the hand-over needs of the running
 * daemon (is it serving, how to drain, the admin socket) comes in as `UpgradeHost`.
 */
import type { Clock } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import type { UpgradeReport } from "../control/api.ts";
import { trustedRoots } from "../upgrade/trust-roots.ts";
import { buildInfo } from "../version.ts";
import { handOverTo, type HandoverHost, type HandoverOutcome } from "./handover.ts";
import { UpgradeFlow } from "./upgrade-flow.ts";

export interface UpgradeHost
  extends Pick<HandoverHost, "refusal" | "stopping" | "track" | "handedOver" | "reclaimAdminSocket" | "tunnelsUp"> {
  readonly settings: Settings;
  readonly env: Record<string, string | undefined>;
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly signal: AbortSignal;
  readonly connectorId: string;
  /** This binary: the one replaced, and what a hand-over starts. */
  readonly installedBinary: string;
  /** Sends one outcome to the control plane (with the current identity). */
  readonly report: (report: UpgradeReport) => Promise<void>;
}

/**
 * The daemon's upgrade flow (not started). A hand-over serves until the successor is ready, then the
 * host drains; when the successor is not ready within --upgrade-health-timeout, or exits, it is
 * stopped and this process carries on.
 */
export function startUpgrades(host: UpgradeHost): UpgradeFlow {
  const { settings, log } = host;
  let inFlight: Promise<HandoverOutcome> | undefined;
  const handOver = (): Promise<HandoverOutcome> => {
    inFlight ??= handOverTo(host.installedBinary, {
      env: host.env,
      log,
      clock: host.clock,
      healthTimeoutSeconds: settings.upgradeHealthTimeout,
      refusal: () => host.refusal(),
      tunnelsUp: () => host.tunnelsUp(),
      stopping: () => host.stopping(),
      track: (successor) => host.track(successor),
      handedOver: () => host.handedOver(),
      reclaimAdminSocket: () => host.reclaimAdminSocket(),
    }).finally(() => (inFlight = undefined));
    return inFlight;
  };
  return new UpgradeFlow({
    settings,
    connectorId: host.connectorId,
    installed: host.installedBinary,
    roots: trustedRoots,
    running: { version: buildInfo.version, target: buildInfo.target },
    log: log.withTag("upgrade"),
    clock: host.clock,
    random: host.random,
    signal: host.signal,
    report: (o) =>
      host.report({ from: o.from, to: o.to, result: o.result, code: o.code, message: o.message, at: o.at }),
    handOver,
    tunnelsUp: () => host.tunnelsUp(),
  });
}
