/**
 * The regression guard's decision, pure: compares the connector's ratios (÷ ssh -L, ÷ direct) of a quick
 * run with the ratios recorded in baseline-ratios.json and flags only gross regressions — a ratio worse
 * than the recorded one by more than `factor`. Absolute numbers are never compared: they depend on the
 * machine, ratios measured in the same run mostly do not.
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

function connectorSkipReason(rows: readonly ScenarioRow[]): string | undefined {
  if (rows.length === 0 || rows.some((r) => r.connector !== null)) return undefined;
  const reasons = new Set(rows.map((r) => r.skipped?.connector ?? "not measured"));
  return [...reasons].join("; ");
}

/** Compares a run with the recorded ratios. Passes when the connector column is skipped, and says why. */
export function judge(doc: BenchDoc, baseline: BaselineRatios, factor: number): GuardVerdict {
  const verdict: GuardVerdict = { ok: true, failures: [], notes: [], checked: 0 };
  const skipped = connectorSkipReason(doc.scenarios);
  if (skipped !== undefined) {
    verdict.notes.push(`connector column skipped (${skipped}); nothing to guard, passing`);
    return verdict;
  }
  const byName = new Map(doc.scenarios.map((row) => [row.name, row]));
  for (const [name, recorded] of Object.entries(baseline.ratios)) {
    const row = byName.get(name);
    if (!row) {
      verdict.notes.push(`"${name}": not in this run (renamed or --only), not checked`);
      continue;
    }
    for (const key of RATIO_KEYS) {
      const was = recorded[key];
      const now = row[key];
      if (was === null) continue;
      if (now === null) {
        verdict.notes.push(
          `"${name}" ${LABEL[key]}: no value this run (${row.skipped?.connector ?? "a baseline was skipped"}), not checked`,
        );
        continue;
      }
      verdict.checked++;
      if (isGrossRegression(now, was, row.higherIsBetter, factor)) {
        verdict.failures.push(
          `"${name}" ${LABEL[key]}: ${now.toFixed(3)} vs recorded ${was.toFixed(3)} (${row.higherIsBetter ? "higher" : "lower"} is better; tolerance ${factor}×)`,
        );
      }
    }
  }
  if (verdict.checked === 0)
    verdict.notes.push("no recorded connector ratios to compare with (record them with --record)");
  verdict.ok = verdict.failures.length === 0;
  return verdict;
}

function best(values: (number | null)[], higherIsBetter: boolean): number | null {
  const present = values.filter((x): x is number => x !== null);
  if (present.length === 0) return null;
  return higherIsBetter ? Math.max(...present) : Math.min(...present);
}

/**
 * Several runs folded into one: each row keeps the best of its ratios across the runs, so a ratio counts as
 * regressed only if it regressed in every run. Rows and other fields come from the first run.
 */
export function bestRatios(runs: readonly BenchDoc[]): BenchDoc {
  const [first] = runs;
  if (!first) throw new RangeError("bestRatios of no runs");
  const rowsOf = (name: string) =>
    runs.map((run) => run.scenarios.find((r) => r.name === name)).filter((r) => r !== undefined);
  return {
    ...first,
    scenarios: first.scenarios.map((row) => ({
      ...row,
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
