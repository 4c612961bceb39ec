/**
 * The human-readable `connector status` block: one label per line, aligned, readable at a
 * glance; every value comes from the snapshot, so the text and `--json` never disagree.
 */
import { redundancyLost, type StatusSnapshot } from "./schema.ts";

const LABEL_WIDTH = 15;
const DAY_MS = 24 * 60 * 60 * 1000;

/** "45 s", "12 min", "3 h 12 min", "4 d 2 h": two units at most, read at a glance. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** An ISO time relative to `now`: "in 12 s" or "3 h ago" (the raw text if it does not parse). */
function relative(iso: string, now: Date): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const delta = at - now.getTime();
  return delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
}

/** How long since `iso` ("3 h 12 min"), for "up …" and "down …". */
function since(iso: string, now: Date): string {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? `since ${iso}` : formatDuration(now.getTime() - at);
}

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
        ? `; renewal failing (${renewalError}), next try ${relative(renewAt, now)}`
        : `; renews ${renewAt.slice(0, 10)} (${relative(renewAt, now)})`;
  return `expires ${notAfter.slice(0, 10)} (${when})${renewal}`;
}

/** The access token's expiry and refresh (never its text); nothing when no daemon runs. */
function tokenLines(token: StatusSnapshot["accessToken"], now: Date): string[] {
  if (!token) return [];
  if (token.expiresAt === null) return [line("access token", `none yet${token.error ? ` (${token.error})` : ""}`)];
  const refresh = token.error
    ? `; refresh failing (${token.error})${token.refreshAt ? `, next try ${relative(token.refreshAt, now)}` : ""}`
    : token.refreshAt
      ? `; refreshes ${relative(token.refreshAt, now)}`
      : "";
  const expiry = Date.parse(token.expiresAt) <= now.getTime() ? "expired" : "expires";
  return [line("access token", `${expiry} ${relative(token.expiresAt, now)}${refresh}`)];
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

type TunnelStatus = StatusSnapshot["tunnels"][number];

/** A tunnel that is not up: why (the last failure's code and message) and when it dials again. */
function tunnelTrouble(t: TunnelStatus, now: Date): string {
  const e = t.lastError;
  const failures = t.failures && t.failures > 1 ? `, ${t.failures} failures in a row` : "";
  const why = e ? `: ${e.code} ${e.after === "up" ? "(was up)" : "(dial failed)"} ${e.message}` : "";
  const retry = t.retryAt ? `; retry ${relative(t.retryAt, now)}` : "";
  return `${why}${retry}${failures}`;
}

function tunnelLines(snapshot: StatusSnapshot, now: Date): string[] {
  if (snapshot.tunnels.length === 0) return [line("tunnels", "none")];
  return [
    line("tunnels", `${snapshot.tunnels.filter((t) => t.state === "up").length} of ${snapshot.tunnels.length} up`),
    ...snapshot.tunnels.map((t, slot) => {
      const head = `  #${slot} ${t.gateway}  ${t.state} ${since(t.since, now)}`;
      if (t.state !== "up") return `${head}${tunnelTrouble(t, now)}`;
      const rtt = t.rttMs === null ? "rtt -" : `rtt ${t.rttMs.toFixed(0)} ms`;
      const streams = t.streams === undefined ? "" : `, ${t.streams} streams`;
      return `${head}, ${rtt}${streams}`;
    }),
  ];
}

/** Since start: reconnects and failures by reason, only when there were any. */
function tunnelHistoryLine(counters: StatusSnapshot["tunnelCounters"]): string[] {
  if (!counters) return [];
  const failed = Object.entries({ ...counters.connectFailures })
    .filter(([, n]) => n > 0)
    .map(([code, n]) => `${code} ${n}`);
  const lost = Object.entries(counters.disconnects)
    .filter(([code, n]) => n > 0 && code !== "CONNECTOR_CLOSED")
    .map(([code, n]) => `${code} ${n}`);
  if (counters.reconnects === 0 && failed.length === 0 && lost.length === 0) return [];
  const parts = [`${counters.reconnects} reconnect${counters.reconnects === 1 ? "" : "s"}`];
  if (failed.length > 0) parts.push(`dials failed: ${failed.join(", ")}`);
  if (lost.length > 0) parts.push(`went down: ${lost.join(", ")}`);
  return [line("since start", parts.join("; "))];
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
  return `version ${catalog.version}, stored copy fetched ${relative(catalog.fetchedAt, now)} (the control plane has not answered since start)`;
}

function upgradeLines(upgrade: StatusSnapshot["upgrade"], now: Date): string[] {
  if (!upgrade) return [];
  const schedule = upgrade.auto
    ? `auto, channel ${upgrade.channel}${upgrade.pinnedVersion ? `, pinned to ${upgrade.pinnedVersion}` : ""}${upgrade.window ? `, window ${upgrade.window} UTC` : ""}${upgrade.nextCheckAt ? `; next check ${relative(upgrade.nextCheckAt, now)}` : ""}`
    : `off (auto-upgrade off), channel ${upgrade.channel}`;
  const lines = [line("upgrades", upgrade.source ? schedule : `${schedule}; no release source configured`)];
  const check = upgrade.lastCheck;
  if (check)
    lines.push(
      line(
        "last check",
        `${relative(check.at, now)}: ${check.result}${check.version ? ` (${check.version})` : ""}${check.detail ? ` — ${check.detail}` : ""}`,
      ),
    );
  const o = upgrade.lastOutcome;
  if (o)
    lines.push(
      line(
        "last upgrade",
        `${relative(o.at, now)}: ${o.from}${o.to ? ` → ${o.to}` : ""} ${o.result}${o.code ? ` [${o.code}]` : ""}${o.message ? ` — ${o.message}` : ""}`,
      ),
    );
  if (upgrade.skipped.length > 0) lines.push(line("skipped", upgrade.skipped.join(", ")));
  return lines;
}

function versionText(snapshot: StatusSnapshot): string {
  if (snapshot.pid === undefined) return snapshot.version;
  const uptime = snapshot.uptimeSeconds === undefined ? "" : `, up ${formatDuration(snapshot.uptimeSeconds * 1000)}`;
  return `${snapshot.version} (pid ${snapshot.pid}${uptime})`;
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
    line("version", versionText(snapshot)),
    line("certificate", certificateLine(snapshot.certificate, now)),
    line("control plane", control),
    ...(snapshot.catalog ? [line("app catalog", catalogText(snapshot.catalog, now))] : []),
    ...tokenLines(snapshot.accessToken, now),
    ...tunnelLines(snapshot, now),
    ...tunnelHistoryLine(snapshot.tunnelCounters),
    ...redundancyLine(snapshot),
    line("streams", streamsText(snapshot.streams)),
    line(
      "bytes",
      `to cloud ${formatBytes(snapshot.bytes.toCloud)}, from cloud ${formatBytes(snapshot.bytes.fromCloud)}`,
    ),
    ...appLines(snapshot),
    ...upgradeLines(snapshot.upgrade, now),
  ].join("\n");
}
