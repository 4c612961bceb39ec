/**
 * The log lines of the daemon's events (events.ts): one line per event, at the level an operator
 * filters on — a tunnel down is a warning unless the daemon is stopping. Field names are part of the
 * log contract (docs/OPERATIONS.md "Logs"): `tunnel`, `gateway`, `code`, `error`, `retryInMs`.
 */
import type { Logger } from "../log.ts";
import type { DaemonEvent } from "./events.ts";

export interface EventLogDeps {
  readonly log: Logger;
  /** The one-line status summary written after each tunnel change. */
  readonly summary: () => Record<string, unknown>;
}

export function logEvents(deps: EventLogDeps): (event: DaemonEvent) => void {
  const { log } = deps;
  return (event) => {
    if (event.type === "rebalance") {
      const fields = { tunnel: event.slot, gateway: event.gateway };
      if (event.phase === "scheduled")
        log.info("tunnels share a gateway while another is unused: moving one back", { ...fields, inMs: event.inMs });
      else if (event.phase === "moved") log.info("tunnel moved back to a distinct gateway", fields);
      else log.warn("could not move a tunnel to a distinct gateway", { ...fields, error: event.error });
      return;
    }
    if (event.type !== "tunnel") return;
    const fields = {
      tunnel: event.slot,
      gateway: event.gateway,
      ...(event.code ? { code: event.code } : {}),
      ...(event.error ? { error: event.error } : {}),
      ...(event.retryInMs !== undefined ? { retryInMs: event.retryInMs } : {}),
      ...(event.reconnect ? { reconnect: true } : {}),
    };
    if (event.state === "down" && !event.stopping) log.warn(`tunnel ${event.state}`, fields);
    else log.info(`tunnel ${event.state}`, fields);
    if (event.state !== "connecting" && !event.stopping) log.info("status", deps.summary());
  };
}
