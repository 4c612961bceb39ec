/**
 * The human-readable `connector status` block: one label per line, aligned, readable at a
 * glance; every value comes from the snapshot, so the text and `--json` never disagree.
 */
import { redundancyLost, type StatusSnapshot } from "./schema.ts";

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
  "not-responding":
    "the daemon is running (it holds the state dir's lock) but its admin socket does not answer; see its logs",
  "not-enrolled": "no identity in the state dir (connector enroll --key …)",
  revoked: "the cloud revoked this connector; enroll it again with a new key",
};

function certificateLine(certificate: StatusSnapshot["certificate"], now: Date): string {
  const { notAfter, renewAt, renewalError } = certificate;
  if (notAfter === null) return "none";
  const days = Math.floor((Date.parse(notAfter) - now.getTime()) / DAY_MS);
  const when = days < 0 ? `expired ${-days} days ago` : `in ${days} days`;
  const renewal =
    renewAt === undefined
      ? ""
      : renewalError
        ? `; renewal failing (${renewalError}), next try ${renewAt}`
        : `; renews ${renewAt.slice(0, 10)}`;
  return `expires ${notAfter.slice(0, 10)} (${when})${renewal}`;
}

/** The access token's expiry and refresh (never its text); nothing when no daemon runs. */
function tokenLines(token: StatusSnapshot["accessToken"]): string[] {
  if (!token) return [];
  if (token.expiresAt === null) return [line("access token", `none yet${token.error ? ` (${token.error})` : ""}`)];
  const refresh = token.error
    ? `; refresh failing (${token.error})${token.refreshAt ? `, next try ${token.refreshAt}` : ""}`
    : token.refreshAt
      ? `; refreshes ${token.refreshAt}`
      : "";
  return [line("access token", `expires ${token.expiresAt}${refresh}`)];
}

/** The hint after the state; "degraded" with every tunnel up means they share a gateway. */
function stateHint(snapshot: StatusSnapshot): string {
  const allUp = snapshot.tunnels.length > 0 && snapshot.tunnels.every((t) => t.state === "up");
  if (snapshot.state === "degraded" && allUp && snapshot.redundancy && redundancyLost(snapshot.redundancy)) {
    return "all tunnels up, but they share a gateway although another is known (moving one back)";
  }
  return STATE_HINT[snapshot.state];
}

function redundancyLine(snapshot: StatusSnapshot): string[] {
  const r = snapshot.redundancy;
  if (!r) return [];
  const gateways = `${r.distinctGateways} gateway${r.distinctGateways === 1 ? "" : "s"}`;
  const verdict = redundancyLost(r) ? ": LOST, tunnels share a gateway" : "";
  return [
    line(
      "redundancy",
      `${r.tunnels} tunnel${r.tunnels === 1 ? "" : "s"} up on ${gateways} (${r.gatewaysKnown} known)${verdict}`,
    ),
  ];
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
  return entries.length === 0
    ? ""
    : `; ${label}: ${entries.map(([what, n]) => `${lower ? what.toLowerCase() : what} ${n}`).join(", ")}`;
}

function streamsText(streams: StatusSnapshot["streams"]): string {
  return (
    `created ${streams.created}, closed ${streams.closed}, active ${streams.active}` +
    countsText("failed to open", streams.failures) +
    countsText("busy (limit hit)", streams.busy, false) +
    countsText("reset by connector", streams.ended, false)
  );
}

function catalogText(catalog: NonNullable<StatusSnapshot["catalog"]>, now: Date): string {
  if (catalog.source === "control-plane") return `version ${catalog.version}`;
  const ageMinutes = Math.max(0, Math.round((now.getTime() - Date.parse(catalog.fetchedAt)) / 60_000));
  return `version ${catalog.version}, stored copy from ${catalog.fetchedAt} (${ageMinutes} min old; the control plane has not answered since start)`;
}

function upgradeLines(upgrade: StatusSnapshot["upgrade"]): string[] {
  if (!upgrade) return [];
  const schedule = upgrade.auto
    ? `auto, channel ${upgrade.channel}${upgrade.pinnedVersion ? `, pinned to ${upgrade.pinnedVersion}` : ""}${upgrade.window ? `, window ${upgrade.window} UTC` : ""}${upgrade.nextCheckAt ? `; next check ${upgrade.nextCheckAt}` : ""}`
    : `off (auto-upgrade off), channel ${upgrade.channel}`;
  const lines = [line("upgrades", upgrade.source ? schedule : `${schedule}; no release source configured`)];
  const check = upgrade.lastCheck;
  if (check)
    lines.push(
      line(
        "last check",
        `${check.at}: ${check.result}${check.version ? ` (${check.version})` : ""}${check.detail ? ` — ${check.detail}` : ""}`,
      ),
    );
  const o = upgrade.lastOutcome;
  if (o)
    lines.push(
      line(
        "last upgrade",
        `${o.at}: ${o.from}${o.to ? ` → ${o.to}` : ""} ${o.result}${o.code ? ` [${o.code}]` : ""}${o.message ? ` — ${o.message}` : ""}`,
      ),
    );
  if (upgrade.skipped.length > 0) lines.push(line("skipped", upgrade.skipped.join(", ")));
  return lines;
}

export function renderStatus(snapshot: StatusSnapshot, now: Date = new Date()): string {
  const who =
    snapshot.connectorId === null
      ? "-"
      : `${snapshot.connectorId} "${snapshot.name ?? ""}" (group ${snapshot.group ?? "-"})`;
  const control = snapshot.controlPlane
    ? `${snapshot.controlPlane.url} (${snapshot.controlPlane.reachable === null ? "not connected" : snapshot.controlPlane.reachable ? "reachable" : "unreachable"})`
    : "-";
  return [
    line("connector", who),
    line("state", `${snapshot.state} — ${stateHint(snapshot)}`),
    line("version", snapshot.pid === undefined ? snapshot.version : `${snapshot.version} (pid ${snapshot.pid})`),
    line("certificate", certificateLine(snapshot.certificate, now)),
    line("control plane", control),
    ...(snapshot.catalog ? [line("app catalog", catalogText(snapshot.catalog, now))] : []),
    ...tokenLines(snapshot.accessToken),
    ...tunnelLines(snapshot),
    ...redundancyLine(snapshot),
    line("streams", streamsText(snapshot.streams)),
    line(
      "bytes",
      `to cloud ${formatBytes(snapshot.bytes.toCloud)}, from cloud ${formatBytes(snapshot.bytes.fromCloud)}`,
    ),
    ...appLines(snapshot),
    ...upgradeLines(snapshot.upgrade),
  ].join("\n");
}
