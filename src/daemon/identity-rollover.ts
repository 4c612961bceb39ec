/**
 * What `connector run` does with a renewed identity: new control-plane requests and new tunnels
 * use it at once, and the tunnels already up are moved onto it one at a time — each slot's replacement
 * is up (or `ROLL_SLOT_TIMEOUT_MS` has passed) before the next slot moves, so capacity never drops by
 * more than one tunnel while replacements come up. A replaced tunnel gets no new streams and is closed
 * once its streams are done, at the latest when `graceMs` runs out (the daemon passes the old
 * certificate's remaining life). The wait for a slot is for the supervisor's event that it is up.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Tunnel } from "../supervisor/connection.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import { type Subscribe, untilTrue } from "./event-wait.ts";

/** How long one slot may take to come back before the next one is moved anyway. */
export const ROLL_SLOT_TIMEOUT_MS = 30_000;

export interface RolloverDeps {
  readonly supervisor: Supervisor<Tunnel>;
  /** The supervisor's events (slot changes): each one is a moment to look again. */
  readonly events: Subscribe;
  readonly clock: Clock;
  readonly log: Logger;
  /** Open streams of a replaced tunnel get this long to finish. */
  readonly graceMs: number;
  /** Aborted when the daemon stops. */
  readonly signal: AbortSignal;
}

/** How the roll ended: every slot looked at, or cut short (the daemon or the supervisor stopping). */
export type RollOutcome = "rolled" | "stopped";

/** Moves every tunnel that is up onto the current credentials, one slot at a time. */
export async function rollTunnels(deps: RolloverDeps): Promise<RollOutcome> {
  const { supervisor, log } = deps;
  const over = () => deps.signal.aborted || supervisor.stopping;
  for (const [slot, tunnel] of supervisor.tunnels()) {
    if (over()) return "stopped";
    if (supervisor.tunnel(slot) !== tunnel) continue; // already replaced (GO_AWAY, failure) meanwhile
    if (!supervisor.replace(slot, tunnel, deps.graceMs)) continue;
    const up = await untilTrue(deps.events, () => over() || supervisor.isUp(slot), {
      clock: deps.clock,
      timeoutMs: ROLL_SLOT_TIMEOUT_MS,
      signal: deps.signal,
    });
    if (over()) return "stopped";
    if (up) log.info("tunnel moved to the renewed certificate", { tunnel: slot });
    else
      log.warn("tunnel not back within the roll timeout; moving on", { tunnel: slot, timeoutMs: ROLL_SLOT_TIMEOUT_MS });
  }
  return "rolled";
}
