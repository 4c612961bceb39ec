/**
 * What a scenario is: the rows it fills and how it measures one ready path. `Skip` is thrown when a value
 * does not apply to a path (no relay process on the direct path); any other error is reported as a
 * failure of that cell — either way the cell says why it has no number.
 */
import type { Profile } from "./config.ts";
import type { ReadyPath } from "./paths/path.ts";
import type { Outcome, RowSpec } from "./report.ts";
import type { Rig } from "./rig.ts";
import type { MeasuredProcess } from "./rss.ts";

export interface ScenarioContext {
  rig: Rig;
  profile: Profile;
  /** Bulk scenarios use iperf3 (every path through it) when it is installed; else the harness's own sender. */
  useIperf: boolean;
}

/**
 * Scenarios run in phases, each on freshly started relays: memory first, on relays that have carried no
 * traffic (allocators rarely give memory back, so an earlier bulk run would hide what a stream costs);
 * traffic after, on relays that never held 10,000 streams (ssh -L stays measurably slower afterwards:
 * 2.4 instead of 4.6 Gbit/s on the reference machine).
 */
export const PHASES = ["memory", "traffic"] as const;
export type Phase = (typeof PHASES)[number];

export interface Scenario {
  /** The name `--only` selects it by. */
  id: string;
  phase: Phase;
  rows(profile: Profile): RowSpec[];
  /** One outcome per row, in rows() order. */
  measure(ctx: ScenarioContext, path: ReadyPath): Promise<Outcome[]>;
}

export class Skip extends Error {
  override readonly name = "Skip";
}

export function measuredOf(path: ReadyPath): MeasuredProcess {
  if (!path.measured) throw new Skip(path.noMeasuredReason ?? "no measured process");
  return path.measured;
}

/** The median of a cell's rounds (the mean of the middle two for an even count); a skip when no round measured. */
export function medianOutcome(rounds: readonly Outcome[]): Outcome {
  const values = rounds.flatMap((o) => ("value" in o ? [o.value] : [])).sort((a, b) => a - b);
  if (values.length === 0) return rounds[0] ?? { skipped: "not measured" };
  const mid = values.length >> 1;
  return { value: values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2 };
}

/** The outcome for every row of a scenario when it could not measure a path. */
export function outcomeOfError(err: unknown): Outcome {
  if (err instanceof Skip) return { skipped: err.message };
  return { skipped: `failed: ${err instanceof Error ? err.message : String(err)}` };
}
