/**
 * What the supervisor's events mean for the daemon: a slot's state and gateway, whose session counters
 * status reads (the slot's tunnel while it serves it, then — retired — until it closes, so totals never
 * go backwards), and one `tunnel` event on the daemon's stream (events.ts) per change, which status,
 * metrics and the logs hear. It keeps no tunnels: each event carries the tunnel it is about.
 */
import type { Clock } from "../clock.ts";
import type { DaemonEvents } from "./events.ts";
import type { TunnelEvent } from "./live-tunnels.ts";
import type { StatusModel } from "./status-model.ts";

export interface TunnelEventDeps {
  readonly status: StatusModel;
  readonly events: DaemonEvents;
  /** For `retryAt`: wall time of the next dial. */
  readonly clock: Pick<Clock, "wallNow">;
  /** True while the daemon is stopping: tunnels going down is expected then. */
  readonly stopping: () => boolean;
}

export function tunnelEventsToStatus(deps: TunnelEventDeps): (event: TunnelEvent) => void {
  const { status, events } = deps;
  /** Slots that have been up: the next up is a reconnect. */
  const wasUp = new Set<number>();
  return (event) => {
    if (event.type === "retired") {
      status.detachSession(event.slot, event.tunnel.closed); // it counts until its streams are done
      return;
    }
    if (event.type === "rebalance") {
      const { type: _, ...rest } = event;
      events.emit({ type: "rebalance", ...rest, gateway: event.gateway.url });
      return;
    }
    if (event.type !== "slot") return;
    const live = event.tunnel;
    // A tunnel that closed in its slot: its final counters go into the totals. A new one (a
    // make-before-break move): whatever the slot showed before is folded first, so nothing is lost.
    if (live || event.state !== "up") status.detachSession(event.slot);
    if (live) status.attachSession(event.slot, () => live.session.stats());
    status.slotChanged(event.slot, event.state, event.gateway.url, event.since);
    const reconnect = event.state === "up" && wasUp.has(event.slot);
    if (event.state === "up") wasUp.add(event.slot);
    events.emit({
      type: "tunnel",
      slot: event.slot,
      gateway: event.gateway.url,
      state: event.state,
      at: event.since,
      stopping: deps.stopping(),
      ...(event.state === "up" ? { reconnect } : {}),
      ...(event.code === undefined ? {} : { code: event.code }),
      ...(event.error === undefined ? {} : { error: event.error }),
      ...(event.after === undefined ? {} : { after: event.after }),
      ...(event.retryInMs === undefined
        ? {}
        : {
            retryInMs: event.retryInMs,
            retryAt: new Date(deps.clock.wallNow().getTime() + event.retryInMs),
          }),
    });
  };
}
