/**
 * A path is one way for a user's TCP stream to reach the target app: direct, ssh -L, socat, or the
 * connector (gateway → tunnel → connector). Every path forwards the same two targets (the harness's
 * app and, when installed, iperf3 -s) and names the process whose memory counts as its cost.
 */
import type { CostTargets } from "../cost.ts";
import type { PathId } from "../report.ts";
import type { MeasuredProcess } from "../rss.ts";
import { Skip } from "../scenario.ts";

/** Where the user-side traffic goes; iperf is undefined when iperf3 is not installed. */
export interface Targets {
  appPort: number;
  iperfPort: number | undefined;
}

export interface ReadyPath {
  id: PathId;
  appPort: number;
  iperfPort: number | undefined;
  /** The relay process measured for memory; undefined with a reason when there is none (direct). */
  measured: MeasuredProcess | undefined;
  noMeasuredReason?: string;
  /** The processes whose CPU and syscalls the traffic rows price (cost.ts); undefined (direct): the reason above. */
  cost: CostTargets | undefined;
}

/** A path that could not be started: every row of its column says why. */
export interface SkippedPath {
  id: PathId;
  skipped: string;
}

export type PathStart = ReadyPath | SkippedPath;

export function isReady(path: PathStart): path is ReadyPath {
  return !("skipped" in path);
}

/** Turns a start-up failure (or a Skip: the path is not available yet) into a skipped path, so one broken baseline never stops the others. */
export async function startOrSkip(id: PathId, start: () => Promise<ReadyPath>): Promise<PathStart> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof Skip) return { id, skipped: err.message };
    return { id, skipped: `failed to start: ${err instanceof Error ? err.message : String(err)}` };
  }
}
