/**
 * What `connector run` does with a renewed identity: new control-plane requests and new tunnels
 * use it at once, and the tunnels already up are moved onto it one at a time — each slot's replacement
 * is up (or `ROLL_SLOT_TIMEOUT_MS` has passed) before the next slot moves, so capacity never drops by
 * more than one tunnel. A replaced tunnel gets no new streams and is closed once its streams are done,
 * at the latest when `graceMs` runs out (the daemon passes the old certificate's remaining life).
 */
import { sleep, type Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Tunnel } from "../supervisor/connection.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import type { StatusModel } from "./status-model.ts";

/** How long one slot may take to come back before the next one is moved anyway. */
export const ROLL_SLOT_TIMEOUT_MS = 30_000;
const ROLL_POLL_MS = 100;

export interface RolloverDeps {
  readonly supervisor: Supervisor<Tunnel>;
  readonly tunnels: Map<number, Tunnel>;
  readonly status: StatusModel;
  readonly clock: Clock;
  readonly log: Logger;
  /** Open streams of a replaced tunnel get this long to finish. */
  readonly graceMs: number;
  readonly stopping: () => boolean;
}

async function waitFor(clock: Clock, done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = clock.now() + timeoutMs;
  while (!done()) {
    if (clock.now() >= deadline) return false;
    await sleep(clock, ROLL_POLL_MS);
  }
  return true;
}

/** Moves every tunnel that is up onto the current credentials, one slot at a time. */
export async function rollTunnels(deps: RolloverDeps): Promise<void> {
  const { supervisor, tunnels, status, log } = deps;
  for (const [slot, tunnel] of [...tunnels]) {
    if (deps.stopping()) return;
    if (tunnels.get(slot) !== tunnel) continue; // already replaced (GO_AWAY, failure) meanwhile
    status.detachSession(slot, tunnel.closed); // it counts until its streams are done
    tunnels.delete(slot);
    if (!supervisor.replace(slot, tunnel, deps.graceMs)) continue;
    const up = await waitFor(deps.clock, () => deps.stopping() || supervisor.isUp(slot), ROLL_SLOT_TIMEOUT_MS);
    if (up) log.info("tunnel moved to the renewed certificate", { tunnel: slot });
    else
      log.warn("tunnel not back within the roll timeout; moving on", { tunnel: slot, timeoutMs: ROLL_SLOT_TIMEOUT_MS });
  }
}
