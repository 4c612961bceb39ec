/**
 * The human-readable `connector status` block (§4): one label per line, aligned, readable at a
 * glance; every value comes from the snapshot, so the text and `--json` never disagree.
 */
import type { StatusSnapshot } from "./schema.ts";

const LABEL_WIDTH = 15;
const DAY_MS = 24 * 60 * 60 * 1000;

function line(label: string, value: string): string {
  return `${label.padEnd(LABEL_WIDTH)}${value}`;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const STATE_HINT: Record<StatusSnapshot["state"], string> = {
  connected: "all tunnels up",
  degraded: "some tunnels down",
  disconnected: "no tunnel up",
  "not-running": "the daemon is not running (systemctl start connector, or connector run)",
  "not-enrolled": "no identity in the state dir (connector enroll --key …)",
  revoked: "the cloud revoked this connector; enroll it again with a new key",
};

function certificateLine(certificate: StatusSnapshot["certificate"], now: Date): string {
  const { notAfter, renewAt, renewalError } = certificate;
  if (notAfter === null) return "none";
  const days = Math.floor((Date.parse(notAfter) - now.getTime()) / DAY_MS);
  const when = days < 0 ? `expired ${-days} days ago` : `in ${days} days`;
  const renewal = renewAt === undefined ? "" : renewalError ? `; renewal failing (${renewalError}), next try ${renewAt}` : `; renews ${renewAt.slice(0, 10)}`;
  return `expires ${notAfter.slice(0, 10)} (${when})${renewal}`;
}

function tunnelLines(snapshot: StatusSnapshot): string[] {
  if (snapshot.tunnels.length === 0) return [line("tunnels", "none")];
  return [
    line("tunnels", `${snapshot.tunnels.filter((t) => t.state === "up").length} of ${snapshot.tunnels.length} up`),
    ...snapshot.tunnels.map((t) => {
      const rtt = t.rttMs === null ? "rtt -" : `rtt ${t.rttMs.toFixed(0)} ms`;
      const streams = t.streams === undefined ? "" : `, ${t.streams} streams`;
      return `  ${t.gateway}  ${t.state} since ${t.since}, ${rtt}${streams}`;
    }),
  ];
}

function appLines(snapshot: StatusSnapshot): string[] {
  if (snapshot.apps.length === 0) return [line("apps", "none")];
  return [
    line("apps", String(snapshot.apps.length)),
    ...snapshot.apps.map((app) => {
      const servers = app.servers.map((s) => `${s.address} ${s.healthy ? "healthy" : "UNHEALTHY"}`).join(", ");
      return `  ${app.name}: ${servers || "no servers"}`;
    }),
  ];
}

function countsText(label: string, counts: Readonly<Record<string, number>> | undefined, lower = true): string {
  const entries = Object.entries(counts ?? {}).filter(([, n]) => n > 0);
  return entries.length === 0 ? "" : `; ${label}: ${entries.map(([what, n]) => `${lower ? what.toLowerCase() : what} ${n}`).join(", ")}`;
}

function streamsText(streams: StatusSnapshot["streams"]): string {
  return (
    `created ${streams.created}, closed ${streams.closed}, active ${streams.active}` +
    countsText("failed to open", streams.failures) +
    countsText("busy (limit hit)", streams.busy, false) +
    countsText("reset by connector", streams.ended, false)
  );
}

export function renderStatus(snapshot: StatusSnapshot, now: Date = new Date()): string {
  const who = snapshot.connectorId === null ? "-" : `${snapshot.connectorId} "${snapshot.name ?? ""}" (group ${snapshot.group ?? "-"})`;
  const control = snapshot.controlPlane
    ? `${snapshot.controlPlane.url} (${snapshot.controlPlane.reachable === null ? "not connected" : snapshot.controlPlane.reachable ? "reachable" : "unreachable"})`
    : "-";
  const upgrade = snapshot.upgrade?.lastCheck ? `last check ${snapshot.upgrade.lastCheck}: ${snapshot.upgrade.result ?? "-"}` : "never checked";
  return [
    line("connector", who),
    line("state", `${snapshot.state} — ${STATE_HINT[snapshot.state]}`),
    line("version", snapshot.version),
    line("certificate", certificateLine(snapshot.certificate, now)),
    line("control plane", control),
    ...tunnelLines(snapshot),
    line("streams", streamsText(snapshot.streams)),
    line("bytes", `to cloud ${formatBytes(snapshot.bytes.toCloud)}, from cloud ${formatBytes(snapshot.bytes.fromCloud)}`),
    ...appLines(snapshot),
    line("upgrade", upgrade),
  ].join("\n");
}
