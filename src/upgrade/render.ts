/** Text for `connector upgrade`: what happened, or what would happen and why. */
import type { CheckReport, ManualOutcome } from "./manual.ts";
import type { UpgradeResult } from "./staging.ts";

export function renderResult(result: UpgradeResult): string {
  switch (result.result) {
    case "swapped":
      return `Upgraded ${result.from} → ${result.to}. A running daemon hands over to the new version by itself (its open streams finish on the old one).`;
    case "rolled-back":
      return `Rolled back${result.from ? ` from ${result.from}` : ""} to ${result.to ?? "the previous binary"}; ${result.from ?? "that version"} is marked skipped.`;
    default:
      return `The ${result.action} was ${result.result}: ${result.message ?? "no reason given"}${result.code ? ` [${result.code}]` : ""}`;
  }
}

export function renderOutcome(outcome: ManualOutcome): string {
  return outcome.kind === "up-to-date" ? `connector ${outcome.version} is up to date.` : renderResult(outcome.result);
}

export function renderCheck(report: CheckReport): string {
  const { check } = report;
  const m = check.manifest;
  const lines = [
    `Release source:  ${report.manifestUrl} (channel ${report.channel})`,
    `Running:         ${report.running}`,
    `Offered:         ${m.version} (sequence ${m.sequence}, released ${m.released}, signature valid until ${m.expires}, rollout ${m.rollout ?? 100} %)`,
  ];
  if (report.rollout)
    lines.push(
      `Rollout:         this connector's bucket is ${report.rollout.bucket.toFixed(1)}: ${report.rollout.included ? "inside" : "outside"} the ${report.rollout.percent} %`,
    );
  else lines.push("Rollout:         unknown (the identity is not readable by this user)");
  lines.push(
    `Auto-upgrade:    ${report.autoUpgrade ? "on" : "off (auto-upgrade off)"}${report.pinVersion ? `, pinned to ${report.pinVersion}` : ""}${report.window ? `, window ${report.window} UTC` : ""}`,
  );
  let decision: string;
  if (check.kind === "up-to-date") decision = `nothing to do: ${report.running} is current`;
  else if (check.kind === "not-taken") decision = `the daemon would not take ${m.version}: ${check.reason}`;
  else if (!report.autoUpgrade)
    decision = `${m.version} is available; the daemon will not take it (auto-upgrade off): run connector upgrade`;
  else
    decision = `the daemon takes ${m.version} at its next check${report.window ? ` inside ${report.window} UTC` : ""}; connector upgrade takes it now`;
  lines.push(`Decision:        ${decision}`);
  return lines.join("\n");
}
