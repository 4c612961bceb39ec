/**
 * Builds the status snapshot. With a daemon answering on `<state-dir>/admin.sock` the snapshot is
 * its answer (HTTP `GET /v1/status` over the Unix socket, validated with the snapshot schema);
 * without one it is built from the stored identity: "not-running" when enrolled, "not-enrolled"
 * otherwise. A socket file that nothing answers on (a killed daemon leaves it behind) is "not
 * running" unless a daemon holds the state dir's lock: then the daemon runs but does not answer (out
 * of file descriptors, stuck), "not-responding". Reading never writes to the state dir.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { ConnectorError, describeError, errnoCode, ExitCode } from "../errors.ts";
import { certificateNotAfter, type Identity } from "../identity/identity.ts";
import { IdentityStore } from "../identity/store.ts";
import { daemonLockHeld } from "../state/daemon-lock.ts";
import { buildInfo } from "../version.ts";
import { ADMIN_QUERY_TIMEOUT_MS, ADMIN_SOCKET_NAME, MAX_STATUS_BYTES } from "./config.ts";
import { STATUS_SCHEMA_VERSION, StatusSnapshotSchema, type StatusSnapshot } from "./schema.ts";

/** What a daemon answers: a daemon of an earlier build may not send the version and time; this CLI adds them. */
const DaemonAnswerSchema = v.object({
  ...StatusSnapshotSchema.entries,
  schemaVersion: v.optional(StatusSnapshotSchema.entries.schemaVersion),
  at: v.optional(StatusSnapshotSchema.entries.at),
});

/** Asks a daemon for its snapshot; undefined when no daemon answers. */
export type DaemonQuery = (socketPath: string) => Promise<StatusSnapshot | undefined>;

export interface CollectDeps {
  readonly readIdentity?: (stateDir: string) => Identity | undefined;
  readonly queryDaemon?: DaemonQuery;
  readonly timeoutMs?: number;
  /** Whether a daemon holds the state dir's lock (undefined: cannot tell). */
  readonly lockHeld?: (stateDir: string) => boolean | undefined;
}

/** Failures that mean "nobody is listening" rather than "the daemon is broken". */
const NOT_LISTENING = new Set(["ENOENT", "ECONNREFUSED", "ENOTSOCK", "ECONNRESET"]);

/** The admin-socket protocol: HTTP/1.1 `GET /v1/status` answering a `StatusSnapshot` as JSON. */
export function httpDaemonQuery(timeoutMs: number = ADMIN_QUERY_TIMEOUT_MS): DaemonQuery {
  return async (socketPath) => {
    let text: string;
    try {
      const response = await fetch("http://localhost/v1/status", {
        unix: socketPath,
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (Number(response.headers.get("content-length") ?? 0) > MAX_STATUS_BYTES)
        throw new Error("status answer too large");
      text = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (err) {
      const code = errnoCode(err);
      const name = err instanceof Error ? err.name : "";
      if (name === "TimeoutError" || (code !== undefined && NOT_LISTENING.has(code))) return undefined;
      if (code === "EACCES" || code === "EPERM") {
        // The daemon may well be running: do not tell an operator outside its group "not running".
        throw new ConnectorError(
          "STATUS_PERMISSION_DENIED",
          `Permission denied on the admin socket ${socketPath}: run as root or as a member of the connector's group.`,
          ExitCode.failure,
        );
      }
      throw new ConnectorError(
        "STATUS_UNAVAILABLE",
        `The daemon's admin socket ${socketPath} answered badly: ${describeError(err)}.`,
        ExitCode.failure,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = v.safeParse(DaemonAnswerSchema, json);
    if (!parsed.success) {
      throw new ConnectorError(
        "STATUS_UNAVAILABLE",
        `The daemon's status answer on ${socketPath} does not match this version's format; are the CLI and the daemon the same version?`,
        ExitCode.failure,
      );
    }
    return { ...parsed.output, schemaVersion: STATUS_SCHEMA_VERSION, at: parsed.output.at ?? new Date().toISOString() };
  };
}

/** The snapshot of a connector whose daemon is not running (or that is not enrolled). */
export function offlineSnapshot(identity: Identity | undefined, now: Date = new Date()): StatusSnapshot {
  const empty = {
    schemaVersion: STATUS_SCHEMA_VERSION,
    at: now.toISOString(),
    version: buildInfo.version,
    tunnels: [],
    streams: { created: 0, closed: 0, active: 0 },
    bytes: { toCloud: 0, fromCloud: 0 },
    apps: [],
  };
  if (!identity) {
    return {
      state: "not-enrolled",
      connectorId: null,
      name: null,
      group: null,
      certificate: { notAfter: null },
      ...empty,
    };
  }
  return {
    state: "not-running",
    connectorId: identity.connectorId,
    name: identity.name,
    group: identity.group,
    certificate: { notAfter: certificateNotAfter(identity).toISOString() },
    controlPlane: { url: identity.controlUrl, reachable: null },
    ...empty,
  };
}

export async function collectStatus(stateDir: string, deps: CollectDeps = {}): Promise<StatusSnapshot> {
  const socketPath = join(stateDir, ADMIN_SOCKET_NAME);
  if (existsSync(socketPath)) {
    const live = await (deps.queryDaemon ?? httpDaemonQuery(deps.timeoutMs))(socketPath);
    if (live) return live;
  }
  const read = deps.readIdentity ?? ((dir: string) => new IdentityStore(dir).read());
  const offline = offlineSnapshot(read(stateDir));
  if (offline.state === "not-running" && (deps.lockHeld ?? daemonLockHeld)(stateDir) === true)
    return { ...offline, state: "not-responding" };
  return offline;
}
