/**
 * The status snapshot: what `connector status --json` prints and what the daemon will serve on
 * its admin socket. One schema for both, so the offline view (no daemon) and the live view have the
 * same shape and a client validates what the daemon sends.
 */
import * as v from "valibot";

/** `not-responding`: a daemon holds the state dir's lock but its admin socket does not answer. */
export const ConnectorState = v.picklist([
  "connected",
  "degraded",
  "disconnected",
  "not-running",
  "not-responding",
  "not-enrolled",
  "revoked",
]);
export type ConnectorState = v.InferOutput<typeof ConnectorState>;

const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Text = (max: number) => v.pipe(v.string(), v.maxLength(max));

/**
 * Why a tunnel is down (or why the last attempt failed while it dials again): a stable code from
 * src/supervisor/down-reason.ts, the message, and whether it failed to dial or was up before.
 */
export const TunnelDownSchema = v.object({
  code: Text(64),
  message: Text(1024),
  after: v.picklist(["connect", "up"]),
  at: Text(64),
});

export const TunnelStatusSchema = v.object({
  gateway: Text(512),
  state: v.picklist(["up", "connecting", "down"]),
  /** ISO time of the last state change. */
  since: Text(64),
  /** Last PING round trip, null before the first PONG. */
  rttMs: v.nullable(v.number()),
  streams: v.optional(Count),
  /** Not up: why the last attempt failed; absent when it never failed or is up. */
  lastError: v.optional(TunnelDownSchema),
  /** Down: when it dials again. */
  retryAt: v.optional(Text(64)),
  /** Attempts that failed in a row (0 once up). */
  failures: v.optional(Count),
});

/** Since start: dials that succeeded, of which reconnects (the slot had been up before), and failures by reason. */
export const TunnelCountersSchema = v.object({
  connects: Count,
  reconnects: Count,
  connectFailures: v.record(Text(64), Count),
  disconnects: v.record(Text(64), Count),
});
export type TunnelCounters = v.InferOutput<typeof TunnelCountersSchema>;

/** Bumped when a field changes meaning or goes away; new optional fields keep the version. */
export const STATUS_SCHEMA_VERSION = 1 as const;

/**
 * Whether the tunnels are spread over gateways: `distinctGateways` used by the `tunnels` that are up,
 * out of `gatewaysKnown` in the connector's list.
 */
export const RedundancySchema = v.object({ distinctGateways: Count, tunnels: Count, gatewaysKnown: Count });
export type Redundancy = v.InferOutput<typeof RedundancySchema>;

/** Tunnels share a gateway although another is known: one gateway failure would cut them all. */
export function redundancyLost(r: Redundancy): boolean {
  return r.distinctGateways < Math.min(r.tunnels, r.gatewaysKnown);
}

export const AppStatusSchema = v.object({
  name: Text(128),
  servers: v.array(v.object({ address: Text(300), healthy: v.boolean() })),
});

const UpgradeOutcomeSchema = v.object({
  at: Text(64),
  from: Text(64),
  to: v.optional(Text(64)),
  result: v.picklist(["installed", "rolled-back", "refused", "failed"]),
  code: v.optional(Text(64)),
  message: v.optional(Text(1024)),
  reported: v.boolean(),
});

export const UpgradeStatusSchema = v.object({
  auto: v.boolean(),
  channel: Text(32),
  /** The channel's manifest URL (no credentials); absent when no release source is configured. */
  source: v.optional(Text(2048)),
  pinnedVersion: v.optional(Text(64)),
  window: v.optional(Text(16)),
  nextCheckAt: v.optional(Text(64)),
  lastCheck: v.optional(
    v.object({
      at: Text(64),
      result: v.picklist(["up-to-date", "not-taken", "installed", "refused", "failed"]),
      version: v.optional(Text(64)),
      detail: v.optional(Text(1024)),
    }),
  ),
  lastOutcome: v.optional(UpgradeOutcomeSchema),
  skipped: v.array(Text(64)),
});
export type UpgradeStatus = v.InferOutput<typeof UpgradeStatusSchema>;

export const StatusSnapshotSchema = v.object({
  schemaVersion: v.literal(STATUS_SCHEMA_VERSION),
  /** When the snapshot was taken (ISO). */
  at: Text(64),
  state: ConnectorState,
  connectorId: v.nullable(Text(128)),
  name: v.nullable(Text(63)),
  group: v.nullable(Text(128)),
  /** Version of the binary that answers (the daemon's, or this CLI's when offline). */
  version: Text(64),
  /** The daemon's process id (it changes when an upgrade hands over); absent when no daemon runs. */
  pid: v.optional(Count),
  /** When the daemon started and how long ago (seconds); absent when no daemon runs. */
  startedAt: v.optional(Text(64)),
  uptimeSeconds: v.optional(Count),
  certificate: v.object({
    notAfter: v.nullable(Text(64)),
    /** When the daemon renews it next (or retries a failed renewal); absent when no daemon runs. */
    renewAt: v.optional(Text(64)),
    /** Why the last renewal failed; absent after a success. */
    renewalError: v.optional(Text(1024)),
  }),
  /**
   * The tunnels' access token (docs/PROTOCOL.md §3.5), never its text: when it expires (null before the
   * first), when it is refreshed next, why the last refresh failed. Absent when no daemon runs.
   */
  accessToken: v.optional(
    v.object({ expiresAt: v.nullable(Text(64)), refreshAt: v.optional(Text(64)), error: v.optional(Text(1024)) }),
  ),
  /** Control-plane base URL and whether the daemon last reached it. */
  controlPlane: v.optional(v.object({ url: Text(2048), reachable: v.nullable(v.boolean()) })),
  /** The app catalog in use: from the control plane, or the one kept in the state dir during an outage. */
  catalog: v.optional(
    v.object({ source: v.picklist(["control-plane", "stored"]), version: Text(128), fetchedAt: Text(64) }),
  ),
  tunnels: v.array(TunnelStatusSchema),
  /** Tunnel connects, reconnects and failures by reason since the daemon started; absent when none runs. */
  tunnelCounters: v.optional(TunnelCountersSchema),
  /** Absent when no daemon runs. */
  redundancy: v.optional(RedundancySchema),
  /** `failures`: streams the connector could not open, by PROTOCOL §5.3 code (NOT_ALLOWED, REFUSED, …). */
  /**
   * `busy`: OPENs answered BUSY by the process-wide bound they hit (streams, dials, fds, buffered);
   * `ended`: streams the connector reset itself (notAllowed: the catalog no longer allows them; idle).
   */
  streams: v.object({
    created: Count,
    closed: Count,
    active: Count,
    failures: v.optional(v.record(v.string(), Count)),
    busy: v.optional(v.record(v.string(), Count)),
    ended: v.optional(v.record(v.string(), Count)),
  }),
  bytes: v.object({ toCloud: Count, fromCloud: Count }),
  apps: v.array(AppStatusSchema),
  /** Upgrades: the schedule, the last check and the last outcome. Absent when no daemon runs. */
  upgrade: v.optional(UpgradeStatusSchema),
});
export type StatusSnapshot = v.InferOutput<typeof StatusSnapshotSchema>;

/**
 * `connector status` exit codes (README "Exit codes"): 0 connected, then 40 and up, so no state reads
 * as 1 (an unexpected failure) or 2 (a usage error) to a script or a probe.
 */
export const STATUS_EXIT: Record<ConnectorState, number> = {
  connected: 0,
  degraded: 40,
  disconnected: 41,
  "not-running": 42,
  "not-responding": 43,
  "not-enrolled": 44,
  revoked: 45,
};
