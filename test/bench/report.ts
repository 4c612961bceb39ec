/**
 * The benchmark's result document: the JSON shape `--json` prints (and the guard reads back, validated by
 * the schema here), the ratios connector ÷ ssh -L and connector ÷ direct, and a collector that turns
 * per-path outcomes into rows. A value that was not measured is null with a `skipped` reason — never absent.
 */
import * as v from "valibot";

/** Columns of every row, in display order; the JSON keys are exactly these names. */
export const PATHS = ["direct", "ssh", "socat", "connector"] as const;
export type PathId = (typeof PATHS)[number];

const Value = v.nullable(v.number());

export const ScenarioRowSchema = v.object({
  name: v.string(),
  unit: v.string(),
  higherIsBetter: v.boolean(),
  direct: Value,
  ssh: Value,
  socat: Value,
  connector: Value,
  vsSsh: Value,
  vsDirect: Value,
  skipped: v.optional(v.record(v.picklist(PATHS), v.string())),
});
export type ScenarioRow = v.InferOutput<typeof ScenarioRowSchema>;

export const BenchDocSchema = v.object({
  machine: v.record(v.string(), v.union([v.string(), v.number()])),
  versions: v.record(v.string(), v.nullable(v.string())),
  scenarios: v.array(ScenarioRowSchema),
});
export type BenchDoc = v.InferOutput<typeof BenchDocSchema>;

/** What one path produced for one row: a number, or the reason it has none. */
export type Outcome = { value: number } | { skipped: string };

export interface RowSpec {
  name: string;
  unit: string;
  higherIsBetter: boolean;
}

/** a ÷ b, or null when either is missing or b is not a positive finite number (no meaningful ratio). */
export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

/** Builds one JSON row from per-path outcomes; paths with no outcome are reported as skipped, never dropped. */
export function buildRow(spec: RowSpec, outcomes: Partial<Record<PathId, Outcome>>): ScenarioRow {
  const values = {} as Record<PathId, number | null>;
  const skipped: Partial<Record<PathId, string>> = {};
  for (const path of PATHS) {
    const outcome = outcomes[path];
    if (outcome && "value" in outcome && Number.isFinite(outcome.value)) values[path] = outcome.value;
    else {
      values[path] = null;
      skipped[path] = !outcome ? "not measured" : "skipped" in outcome ? outcome.skipped : "not a finite number";
    }
  }
  const row: ScenarioRow = {
    name: spec.name,
    unit: spec.unit,
    higherIsBetter: spec.higherIsBetter,
    ...values,
    vsSsh: ratio(values.connector, values.ssh),
    vsDirect: ratio(values.connector, values.direct),
  };
  if (Object.keys(skipped).length > 0) row.skipped = skipped;
  return row;
}

/** Collects outcomes row by row in first-seen order, so the table follows the order scenarios ran in. */
export class ResultTable {
  readonly #specs = new Map<string, RowSpec>();
  readonly #outcomes = new Map<string, Partial<Record<PathId, Outcome>>>();

  record(spec: RowSpec, path: PathId, outcome: Outcome): void {
    if (!this.#specs.has(spec.name)) {
      this.#specs.set(spec.name, spec);
      this.#outcomes.set(spec.name, {});
    }
    this.#outcomes.get(spec.name)![path] = outcome;
  }

  /** Records `outcome` only where this row has nothing for `path` yet (a late failure keeps earlier numbers). */
  recordIfAbsent(spec: RowSpec, path: PathId, outcome: Outcome): void {
    if (this.#outcomes.get(spec.name)?.[path] === undefined) this.record(spec, path, outcome);
  }

  /** Records the same outcome for every path (e.g. a scenario skipped as a whole). */
  recordAll(spec: RowSpec, outcome: Outcome): void {
    for (const path of PATHS) this.record(spec, path, outcome);
  }

  rows(): ScenarioRow[] {
    return [...this.#specs.values()].map((spec) => buildRow(spec, this.#outcomes.get(spec.name) ?? {}));
  }
}
