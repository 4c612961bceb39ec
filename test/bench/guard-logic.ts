/**
 * The regression guard's decision, pure: compares the connector's ratios (÷ ssh -L, ÷ direct) of a quick
 * run with the ratios recorded in baseline-ratios.json and flags gross regressions — a ratio worse than
 * the recorded one by more than `factor` — and recorded ratios the run has no connector value for.
 * Absolute numbers are never compared: they depend on the machine, ratios measured in the same run
 * mostly do not.
 */
import * as v from "valibot";
import type { BenchDoc, ScenarioRow } from "./report.ts";

const RecordedRatio = v.object({ vsSsh: v.nullable(v.number()), vsDirect: v.nullable(v.number()) });

export const BaselineRatiosSchema = v.object({
  /** Why these numbers, and how to re-record them. */
  note: v.string(),
  /** ISO date of the run the ratios come from, null when none has been recorded yet. */
  recordedAt: v.nullable(v.string()),
  /** Machine line of that run, for a reader wondering whether it still applies. */
  machine: v.nullable(v.string()),
  ratios: v.record(v.string(), RecordedRatio),
});
export type BaselineRatios = v.InferOutput<typeof BaselineRatiosSchema>;

export interface GuardVerdict {
  ok: boolean;
  failures: string[];
  notes: string[];
  /** Ratios actually compared. */
  checked: number;
}

const RATIO_KEYS = ["vsSsh", "vsDirect"] as const;
const LABEL = { vsSsh: "connector ÷ ssh -L", vsDirect: "connector ÷ direct" } as const;

/** True when `current` is worse than `recorded` by more than `factor`, in the row's direction of better. */
export function isGrossRegression(current: number, recorded: number, higherIsBetter: boolean, factor: number): boolean {
  return higherIsBetter ? current < recorded / factor : current > recorded * factor;
}

/** Why a row has no connector value (the benchmark always gives a reason; "not measured" otherwise). */
const connectorReason = (row: ScenarioRow): string => row.skipped?.connector ?? "not measured";

function connectorSkipReason(rows: readonly ScenarioRow[]): string | undefined {
  if (rows.length === 0 || rows.some((r) => r.connector !== null)) return undefined;
  return [...new Set(rows.map(connectorReason))].join("; ");
}

export interface JudgeOptions {
  /**
   * The run was limited to some scenarios (`--only`): a recorded row absent from it is noted, not failed.
   * In a full run an absent row fails: it was renamed or dropped, and the baseline must be re-recorded.
   */
  readonly partial?: boolean;
  /** A row's own tolerance instead of `factor` (the cost rows: config.ts GUARD_COST_FACTOR), or undefined. */
  readonly factorFor?: (name: string) => number | undefined;
  /**
   * Rows the guard is meant to judge but that no baseline has recorded yet (added after the last
   * `--record`): each one with a ratio in the run is listed in one note as not checked yet, never failed.
   */
  readonly pending?: (name: string) => boolean;
}

/**
 * Compares a run with the recorded ratios. A recorded ratio fails when the connector's value is missing
 * (the connector column skipped, a scenario that failed on the connector, a row gone from the run): the
 * guard exists to look at the connector, and a connector it could not measure is not a pass. Only a
 * missing baseline tool (no ssh -L, no iperf3) leaves a ratio "not checked".
 */
export function judge(
  doc: BenchDoc,
  baseline: BaselineRatios,
  factor: number,
  options: JudgeOptions = {},
): GuardVerdict {
  const verdict: GuardVerdict = { ok: true, failures: [], notes: [], checked: 0 };
  const recorded = Object.entries(baseline.ratios);
  const skipped = connectorSkipReason(doc.scenarios);
  if (skipped !== undefined && recorded.length > 0) {
    verdict.failures.push(`connector column not measured (${skipped}); the guard cannot pass without it`);
    verdict.ok = false;
    return verdict;
  }
  const byName = new Map(doc.scenarios.map((row) => [row.name, row]));
  for (const [name, was] of recorded) {
    const row = byName.get(name);
    if (!row) {
      if (options.partial) verdict.notes.push(`"${name}": not in this run (--only), not checked`);
      else verdict.failures.push(`"${name}": not in this run (renamed or dropped? re-record with --record)`);
      continue;
    }
    const tolerance = options.factorFor?.(name) ?? factor;
    for (const key of RATIO_KEYS) {
      const then = was[key];
      const now = row[key];
      if (then === null) continue;
      if (now === null) {
        if (row.connector === null)
          verdict.failures.push(`"${name}" ${LABEL[key]}: connector not measured (${connectorReason(row)})`);
        else
          verdict.notes.push(
            `"${name}" ${LABEL[key]}: no baseline value this run (${row.skipped?.[key === "vsSsh" ? "ssh" : "direct"] ?? "no ratio"}), not checked`,
          );
        continue;
      }
      verdict.checked++;
      if (isGrossRegression(now, then, row.higherIsBetter, tolerance)) {
        verdict.failures.push(
          `"${name}" ${LABEL[key]}: ${now.toFixed(3)} vs recorded ${then.toFixed(3)} (${row.higherIsBetter ? "higher" : "lower"} is better; tolerance ${tolerance}×)`,
        );
      }
    }
  }
  const pending = doc.scenarios.filter(
    (row) =>
      options.pending?.(row.name) && !(row.name in baseline.ratios) && (row.vsSsh !== null || row.vsDirect !== null),
  );
  if (pending.length > 0)
    verdict.notes.push(
      `not checked yet (no recorded ratio; record them with --record on a quiet machine): ${pending.map((r) => `"${r.name}"`).join(", ")}`,
    );
  if (recorded.length === 0)
    verdict.notes.push("no recorded connector ratios to compare with (record them with --record)");
  verdict.ok = verdict.failures.length === 0;
  return verdict;
}

function best(values: (number | null)[], higherIsBetter: boolean): number | null {
  const present = values.filter((x): x is number => x !== null);
  if (present.length === 0) return null;
  return higherIsBetter ? Math.max(...present) : Math.min(...present);
}

/** `row` with the connector value of `measured` (a later run's row) when `row` has none. */
function withConnector(row: ScenarioRow, measured: ScenarioRow | undefined): ScenarioRow {
  if (row.connector !== null || measured === undefined) return row;
  const { connector: _gone, ...skipped } = row.skipped ?? {};
  const out: ScenarioRow = { ...row, connector: measured.connector };
  if (Object.keys(skipped).length > 0) out.skipped = skipped;
  else delete out.skipped;
  return out;
}

/**
 * Several runs folded into one: each row keeps the best of its ratios across the runs, so a ratio counts as
 * regressed only if it regressed in every run, and the connector's value from the first run that measured
 * it (missing only if it was missing in every run). Rows and other fields come from the first run.
 */
export function bestRatios(runs: readonly BenchDoc[]): BenchDoc {
  const [first] = runs;
  if (!first) throw new RangeError("bestRatios of no runs");
  const rowsOf = (name: string) =>
    runs.map((run) => run.scenarios.find((r) => r.name === name)).filter((r) => r !== undefined);
  return {
    ...first,
    scenarios: first.scenarios.map((row) => ({
      ...withConnector(
        row,
        rowsOf(row.name).find((r) => r.connector !== null),
      ),
      vsSsh: best(
        rowsOf(row.name).map((r) => r.vsSsh),
        row.higherIsBetter,
      ),
      vsDirect: best(
        rowsOf(row.name).map((r) => r.vsDirect),
        row.higherIsBetter,
      ),
    })),
  };
}

/**
 * The ratios of a run, in the baseline file's shape, for `guard.ts --record`; rows matching `exclude` are
 * left out, and rows matching `excludeVsSsh` keep only their ratio to direct.
 */
export function recordRatios(
  doc: BenchDoc,
  note: string,
  at: Date,
  exclude?: RegExp,
  excludeVsSsh?: RegExp,
): BaselineRatios {
  const ratios: BaselineRatios["ratios"] = {};
  for (const row of doc.scenarios) {
    if (exclude?.test(row.name)) continue;
    const vsSsh = excludeVsSsh?.test(row.name) ? null : row.vsSsh;
    if (vsSsh !== null || row.vsDirect !== null) ratios[row.name] = { vsSsh, vsDirect: row.vsDirect };
  }
  const machine = Object.entries(doc.machine)
    .filter(([k]) => k !== "date")
    .map(([k, val]) => `${k}: ${val}`)
    .join(", ");
  return { note, recordedAt: at.toISOString(), machine, ratios };
}
