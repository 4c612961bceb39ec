/**
 * The daemon's metrics (`run --metrics HOST:PORT`), named by the Prometheus conventions
 * (https://prometheus.io/docs/practices/naming/): base units as suffixes, `_total` on counters,
 * `_timestamp_seconds` for times, `_info` for the build. Every label whose values are known up front
 * (failure reasons, busy bounds) is exported at 0 from the start, so a rate or an alert works before
 * the first failure, and those label values come only from closed lists: text from a gateway never
 * becomes a label. docs/OPERATIONS.md "Metrics" lists every family; a rename there needs a note for
 * dashboards.
 */
import type { BusyReason } from "../dataplane/admission.ts";
import type { DialFailure } from "../dataplane/errors.ts";
import type { EndedCounts } from "../dataplane/open-streams.ts";
import type { ProcessStats } from "../host/process-stats.ts";
import type { StreamCodeName } from "../mux/const.ts";
import { CONNECT_FAILURE_REASONS, DISCONNECT_REASONS } from "../supervisor/down-reason.ts";
import { type Family, renderFamilies, type Sample } from "./exposition.ts";
import type { StatusSnapshot } from "./schema.ts";

export interface BuildLabels {
  readonly version: string;
  readonly commit: string;
  readonly target: string;
}

/**
 * PROTOCOL §5.3 codes the connector answers a failed OPEN with (src/dataplane/open-handler.ts): the
 * catalog refused it, a bound was hit, or the dial failed (`DialFailure`, less CANCELLED: the stream
 * went away first and is not counted).
 */
export const OPEN_FAILURE_CODES = [
  "NOT_ALLOWED",
  "BUSY",
  "DNS_FAILURE",
  "REFUSED",
  "TIMEOUT",
  "UNREACHABLE",
  "INTERNAL",
] as const satisfies readonly StreamCodeName[];
// A dial failure added to the dataplane and not listed here fails the type check.
type Unlisted = Exclude<DialFailure, "CANCELLED" | (typeof OPEN_FAILURE_CODES)[number]>;
const everyDialFailureListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyDialFailureListed;

/** The process-wide bounds an OPEN answered BUSY can hit (src/dataplane/admission.ts). */
export const BUSY_LIMITS = ["streams", "dials", "fds", "buffered"] as const satisfies readonly BusyReason[];
type UnlistedLimit = Exclude<BusyReason, (typeof BUSY_LIMITS)[number]>;
const everyLimitListed: [UnlistedLimit] extends [never] ? true : UnlistedLimit = true;
void everyLimitListed;

/** Why the dataplane reset streams itself (src/dataplane/open-streams.ts). */
export const ENDED_REASONS = ["notAllowed", "idle"] as const satisfies readonly (keyof EndedCounts)[];

/** Down reasons a label may carry; anything else (never expected) is reported as OTHER. */
const DOWN_REASONS = new Set<string>([...Object.keys(CONNECT_FAILURE_REASONS), ...Object.keys(DISCONNECT_REASONS)]);

/** One sample per known key (0 when not counted yet), plus any other key the counts hold. */
function byKey(
  label: string,
  known: readonly string[],
  counts: Readonly<Record<string, number>> | undefined,
): Sample[] {
  const keys = [...new Set([...known, ...Object.keys(counts ?? {})])];
  return keys.map((key) => [{ [label]: key }, counts?.[key] ?? 0] as const);
}

const gauge = (name: string, help: string, samples: readonly Sample[]): Family => ({
  name,
  type: "gauge",
  help,
  samples,
});
const counter = (name: string, help: string, samples: readonly Sample[]): Family => ({
  name,
  type: "counter",
  help,
  samples,
});

function tunnelFamilies(s: StatusSnapshot): Family[] {
  const slot = (t: StatusSnapshot["tunnels"][number], i: number) => ({ tunnel: String(i), gateway: t.gateway });
  const counters = s.tunnelCounters;
  return [
    gauge("connector_tunnels_up", "Tunnels currently up.", [[{}, s.tunnels.filter((t) => t.state === "up").length]]),
    gauge(
      "connector_tunnel_gateways",
      "Distinct gateways the tunnels that are up use (fewer than tunnels and gateways known: redundancy lost).",
      s.redundancy ? [[{}, s.redundancy.distinctGateways]] : [],
    ),
    gauge(
      "connector_tunnel_up",
      "1 when the tunnel to this gateway is up.",
      s.tunnels.map((t, i) => [slot(t, i), t.state === "up" ? 1 : 0] as const),
    ),
    gauge(
      "connector_tunnel_down_reason",
      "1 for a tunnel that is not up, labelled with why its last attempt failed (a stable code).",
      s.tunnels.flatMap((t, i) => {
        if (t.state === "up" || !t.lastError) return [];
        const reason = DOWN_REASONS.has(t.lastError.code) ? t.lastError.code : "OTHER";
        return [[{ ...slot(t, i), reason }, 1] as const];
      }),
    ),
    gauge(
      "connector_tunnel_consecutive_failures",
      "Attempts of this tunnel that failed in a row (0 once up).",
      s.tunnels.map((t, i) => [slot(t, i), t.failures ?? 0] as const),
    ),
    gauge(
      "connector_tunnel_retry_timestamp_seconds",
      "When a tunnel that is down dials again (Unix time).",
      s.tunnels.flatMap((t, i) =>
        t.state === "down" && t.retryAt ? [[slot(t, i), Date.parse(t.retryAt) / 1000] as const] : [],
      ),
    ),
    gauge(
      "connector_tunnel_rtt_seconds",
      "Last PING round trip per tunnel.",
      s.tunnels.flatMap((t, i) => (t.rttMs === null ? [] : [[slot(t, i), t.rttMs / 1000] as const])),
    ),
    ...(counters
      ? [
          counter("connector_tunnel_connects_total", "Tunnels opened since start.", [[{}, counters.connects]]),
          counter(
            "connector_tunnel_reconnects_total",
            "Tunnels opened again after their slot had been up before (a subset of connects).",
            [[{}, counters.reconnects]],
          ),
          counter(
            "connector_tunnel_connect_failures_total",
            "Tunnel dials that failed, by reason (a stable code).",
            byKey("reason", Object.keys(CONNECT_FAILURE_REASONS), counters.connectFailures),
          ),
          counter(
            "connector_tunnel_disconnects_total",
            "Tunnels that were up and went down, by reason (a stable code).",
            byKey("reason", Object.keys(DISCONNECT_REASONS), counters.disconnects),
          ),
        ]
      : []),
  ];
}

function streamFamilies(s: StatusSnapshot): Family[] {
  return [
    gauge("connector_streams_active", "Streams open now.", [[{}, s.streams.active]]),
    counter("connector_streams_created_total", "Streams opened since start.", [[{}, s.streams.created]]),
    counter("connector_streams_closed_total", "Streams closed since start.", [[{}, s.streams.closed]]),
    counter(
      "connector_stream_open_failures_total",
      "OPENs the connector could not serve, by the code it answered (docs/PROTOCOL.md §5.3).",
      byKey("reason", OPEN_FAILURE_CODES, s.streams.failures),
    ),
    counter(
      "connector_stream_busy_total",
      "OPENs answered BUSY, by the process-wide bound they hit.",
      byKey("limit", BUSY_LIMITS, s.streams.busy),
    ),
    counter(
      "connector_streams_ended_total",
      "Streams the connector reset itself, by reason (notAllowed: the catalog no longer allows them; idle).",
      byKey("reason", ENDED_REASONS, s.streams.ended),
    ),
    counter("connector_stream_sent_bytes_total", "Stream bytes sent to the cloud (read from apps).", [
      [{}, s.bytes.toCloud],
    ]),
    counter("connector_stream_received_bytes_total", "Stream bytes received from the cloud (written to apps).", [
      [{}, s.bytes.fromCloud],
    ]),
  ];
}

/** The series the Prometheus client libraries export for their process; none when the stats are unknown. */
function processFamilies(p: ProcessStats | undefined): Family[] {
  if (!p) return [];
  return [
    counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", [[{}, p.cpuSeconds]]),
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [[{}, p.residentBytes]]),
    gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [[{}, p.virtualBytes]]),
    gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", [
      [{}, p.startTimeSeconds],
    ]),
    ...(p.openFds === undefined
      ? []
      : [gauge("process_open_fds", "Number of open file descriptors.", [[{}, p.openFds]])]),
    ...(p.maxFds === undefined
      ? []
      : [gauge("process_max_fds", "Maximum number of open file descriptors.", [[{}, p.maxFds]])]),
  ];
}

/** Every family for one scrape, in a fixed order. */
export function metricFamilies(s: StatusSnapshot, build: BuildLabels, process?: ProcessStats): Family[] {
  const notAfter = s.certificate.notAfter ? Date.parse(s.certificate.notAfter) / 1000 : 0;
  return [
    gauge("connector_build_info", "Build of the running connector (always 1).", [
      [{ version: build.version, commit: build.commit, target: build.target }, 1],
    ]),
    gauge("connector_revoked", "1 when the cloud revoked this connector.", [[{}, s.state === "revoked" ? 1 : 0]]),
    ...tunnelFamilies(s),
    ...streamFamilies(s),
    gauge(
      "connector_app_server_healthy",
      "1 when the app server answers its health check.",
      s.apps.flatMap((a) => a.servers.map((v) => [{ app: a.name, server: v.address }, v.healthy ? 1 : 0] as const)),
    ),
    gauge("connector_certificate_expiry_timestamp_seconds", "When the client certificate expires (Unix time).", [
      [{}, notAfter],
    ]),
    ...processFamilies(process),
  ];
}

export function renderMetrics(s: StatusSnapshot, build: BuildLabels, process?: ProcessStats): string {
  return renderFamilies(metricFamilies(s, build, process));
}
