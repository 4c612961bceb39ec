/**
 * The graceful stop's middle part (SIGTERM, or a hand-over to a successor): every tunnel sends GO_AWAY
 * (gateways route no new streams here), then the open streams get until the grace period ends to
 * finish; the log says how many were open ("draining: N streams open") and how the wait ended. The wait is for the streams' own ends (`idle()`, woken by each tunnel's last stream), not a
 * look every so often; a second signal (`cut`) ends it at once. What is left open is closed by the
 * caller's shutdown.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";

/** What draining needs of the supervisor. */
export interface Drainable {
  /** GO_AWAY on every tunnel, no reconnects. */
  drain(): void;
  activeStreams(): number;
  /** Resolves once every tunnel has no open stream. */
  idle(): Promise<void>;
}

export interface DrainOptions {
  /** The tunnels' supervisor; undefined when there is none (still starting, or revoked). */
  readonly tunnels: Drainable | undefined;
  readonly graceMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Why (the signal's name, or "hand-over"), for the log. */
  readonly reason: string;
  /** Aborted by a second signal: stop waiting. */
  readonly cut?: AbortSignal;
  /** Right after the GO_AWAYs (a hand-over lets go of the daemon lock then). */
  readonly afterGoAway?: () => void;
}

/** How a drain ended: every stream finished, the grace period ran out, a second signal, or no tunnels. */
export type DrainOutcome = "finished" | "grace-over" | "cut" | "no-tunnels";

export async function drainTunnels(options: DrainOptions): Promise<DrainOutcome> {
  const { tunnels, graceMs, clock, log } = options;
  if (!tunnels) {
    options.afterGoAway?.();
    return "no-tunnels";
  }
  tunnels.drain();
  options.afterGoAway?.();
  const open = tunnels.activeStreams();
  if (open > 0) log.info(`draining: ${open} streams open`, { openStreams: open, gracePeriodSeconds: graceMs / 1000 });
  const outcome = await streamsDone(tunnels, graceMs, clock, options.cut);
  const left = tunnels.activeStreams();
  // A second signal (cut) was logged as such by the stop control; the shutdown closes what is left.
  if (outcome === "cut") return outcome;
  if (left > 0) log.warn("grace period over: closing remaining streams", { openStreams: left });
  else log.info("all streams finished");
  return outcome;
}

/** Waits for `idle()` (checked again each time, as it is only a wake-up), the deadline, or `cut`. */
function streamsDone(tunnels: Drainable, graceMs: number, clock: Clock, cut?: AbortSignal): Promise<DrainOutcome> {
  return new Promise((resolve) => {
    let over = false;
    const finish = (outcome: DrainOutcome) => {
      if (over) return;
      over = true;
      timer.cancel();
      cut?.removeEventListener("abort", onCut);
      resolve(outcome);
    };
    const onCut = () => finish("cut");
    const timer = clock.setTimeout(() => finish("grace-over"), graceMs);
    if (cut?.aborted) return finish("cut");
    cut?.addEventListener("abort", onCut, { once: true });
    const look = (): void => {
      if (over) return;
      if (tunnels.activeStreams() === 0) return finish("finished");
      void tunnels.idle().then(look);
    };
    look();
  });
}
