/**
 * What the supervisor's events mean for status and the logs: a slot's state and gateway, whose session
 * counters status reads (the slot's tunnel while it serves it, then — retired — until it closes, so
 * totals never go backwards), and one line per change. It keeps no tunnels: each event carries the
 * tunnel it is about, and the supervisor is asked for the rest.
 */
import type { Logger } from "../log.ts";
import type { TunnelEvent } from "./live-tunnels.ts";
import type { StatusModel } from "./status-model.ts";

export interface TunnelEventDeps {
  readonly status: StatusModel;
  readonly log: Logger;
  /** True while the daemon is stopping: tunnels going down is expected then. */
  readonly stopping: () => boolean;
}

export function tunnelEventsToStatus(deps: TunnelEventDeps): (event: TunnelEvent) => void {
  const { status, log } = deps;
  return (event) => {
    if (event.type === "retired") {
      status.detachSession(event.slot, event.tunnel.closed); // it counts until its streams are done
      return;
    }
    if (event.type === "rebalance") {
      const fields = { tunnel: event.slot, gateway: event.gateway.url };
      if (event.phase === "scheduled")
        log.info("tunnels share a gateway while another is unused: moving one back", { ...fields, inMs: event.inMs });
      else if (event.phase === "moved") log.info("tunnel moved back to a distinct gateway", fields);
      else log.warn("could not move a tunnel to a distinct gateway", { ...fields, error: event.error });
      return;
    }
    if (event.type !== "slot") return;
    const live = event.tunnel;
    // A tunnel that closed in its slot: its final counters go into the totals. A new one (a
    // make-before-break move): whatever the slot showed before is folded first, so nothing is lost.
    if (live || event.state !== "up") status.detachSession(event.slot);
    if (live) status.attachSession(event.slot, () => live.session.stats());
    status.slotChanged(event.slot, event.state, event.gateway.url, event.since);
    const fields = {
      tunnel: event.slot,
      gateway: event.gateway.url,
      ...(event.error ? { error: event.error } : {}),
      ...(event.retryInMs !== undefined ? { retryInMs: event.retryInMs } : {}),
    };
    const stopping = deps.stopping();
    if (event.state === "down" && !stopping) log.warn(`tunnel ${event.state}`, fields);
    else log.info(`tunnel ${event.state}`, fields);
    if (event.state !== "connecting" && !stopping) log.info("status", status.summary());
  };
}
