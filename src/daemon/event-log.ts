/**
 * The log lines of the daemon's events (events.ts): one line per event, at the level an operator
 * filters on — a tunnel down is a warning unless the daemon is stopping, an app server going unhealthy
 * is a warning and its recovery is info. Field names are part of the log contract (docs/OPERATIONS.md
 * "Logs"): `tunnel`, `gateway`, `code`, `error`, `retryInMs`, `app`, `server`, `detail`…; the interop
 * suite reads "tunnel down" and its `retryInMs`.
 */
import type { Logger } from "../log.ts";
import type {
  AppHealthEvent,
  CatalogEvent,
  DaemonEvent,
  RebalanceEvent,
  RenewalEvent,
  TunnelStateEvent,
} from "./events.ts";

export interface EventLogDeps {
  readonly log: Logger;
  /** The one-line status summary written after each tunnel change. */
  readonly summary: () => Record<string, unknown>;
}

export function logEvents(deps: EventLogDeps): (event: DaemonEvent) => void {
  const { log } = deps;
  const identityLog = log.withTag("identity");
  return (event) => {
    switch (event.type) {
      case "tunnel":
        return logTunnel(deps, event);
      case "rebalance":
        return logRebalance(log, event);
      case "app-health":
        return logAppHealth(log, event);
      case "catalog":
        return logCatalog(log, event);
      case "renewal":
        return logRenewal(identityLog, event);
      // Failed opens are logged where they happen (open-handler.ts), with their destination and a
      // limit on repeats; the event is for counting.
      case "open-failed":
        return;
    }
  };
}

function logTunnel(deps: EventLogDeps, event: TunnelStateEvent): void {
  const fields = {
    tunnel: event.slot,
    gateway: event.gateway,
    ...(event.code ? { code: event.code } : {}),
    ...(event.error ? { error: event.error } : {}),
    ...(event.retryInMs !== undefined ? { retryInMs: event.retryInMs } : {}),
    ...(event.reconnect ? { reconnect: true } : {}),
  };
  if (event.state === "down" && !event.stopping) deps.log.warn(`tunnel ${event.state}`, fields);
  else deps.log.info(`tunnel ${event.state}`, fields);
  if (event.state !== "connecting" && !event.stopping) deps.log.info("status", deps.summary());
}

function logRebalance(log: Logger, event: RebalanceEvent): void {
  const fields = { tunnel: event.slot, gateway: event.gateway };
  if (event.phase === "scheduled")
    log.info("tunnels share a gateway while another is unused: moving one back", { ...fields, inMs: event.inMs });
  else if (event.phase === "moved") log.info("tunnel moved back to a distinct gateway", fields);
  else log.warn("could not move a tunnel to a distinct gateway", { ...fields, error: event.error });
}

/** Once per server per change (health.ts tells only transitions), never once per check. */
function logAppHealth(log: Logger, event: AppHealthEvent): void {
  const fields = { app: event.app, server: event.server };
  if (event.healthy) log.info("app server healthy", fields);
  else log.warn("app server unhealthy", { ...fields, ...(event.detail ? { detail: event.detail } : {}) });
}

function logCatalog(log: Logger, event: CatalogEvent): void {
  if (!event.ok) {
    const fields = { code: event.code, error: event.error };
    if (event.during === "start")
      log.error(
        event.revoked
          ? "this connector has been revoked by the cloud; re-enroll it with a new key"
          : "cannot fetch the app catalog",
        { ...fields, ...(event.retryInMs !== undefined ? { retryInMs: event.retryInMs } : {}) },
      );
    // A revocation found by a refresh is logged by revocation.ts, which stops the tunnels.
    else if (!event.revoked) log.warn("catalog refresh failed; keeping the current one", fields);
    return;
  }
  if (event.source === "stored") {
    log.warn(
      "the control plane is unreachable: starting with the stored app catalog, fetching it again in the background",
      {
        ...(event.code ? { code: event.code } : {}),
        ...(event.error ? { error: event.error } : {}),
        version: event.version,
        ...(event.fetchedAt ? { fetchedAt: event.fetchedAt.toISOString() } : {}),
        ...(event.ageSeconds !== undefined ? { ageSeconds: event.ageSeconds } : {}),
      },
    );
    return;
  }
  if (event.changed) log.info("app catalog loaded", { version: event.version, apps: event.apps });
  else log.debug("app catalog unchanged", { version: event.version });
}

function logRenewal(log: Logger, event: RenewalEvent): void {
  // A renewal's success is logged by the renewal itself ("certificate renewed", identity/renew.ts).
  if (event.ok) return;
  const fields = {
    code: event.code,
    error: event.error,
    notAfter: event.notAfter.toISOString(),
    retryAt: event.retryAt.toISOString(),
  };
  if (event.expired)
    log.error(
      "the client certificate has expired and could not be renewed: tunnels will fail; re-enroll this connector (connector enroll --force)",
      fields,
    );
  else log.warn("certificate renewal failed; retrying", fields);
}
