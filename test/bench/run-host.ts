/**
 * Runs one host's part of the benchmark: starts the targets and every path (a path that cannot start is
 * a skip reason for its whole column), then measures each scenario on every path in turn — paths
 * interleaved per scenario, so a drift in the machine's load touches all columns alike.
 */
import { type ConnectorSetup, connectorMissing, connectorPath } from "./paths/connector.ts";
import { directPath } from "./paths/direct.ts";
import { isReady, type PathStart, startOrSkip, type Targets } from "./paths/path.ts";
import { socatPath } from "./paths/socat.ts";
import { sshPath } from "./paths/ssh.ts";
import { type Outcome, type PathId, PATHS, type ResultTable, type RowSpec } from "./report.ts";
import type { Rig } from "./rig.ts";
import { medianOutcome, outcomeOfError, type Scenario, type ScenarioContext } from "./scenario.ts";
import { socatMissing, sshMissing } from "./tools.ts";

export type Progress = (line: string) => void;

/** connectorSkip: why the connector column is skipped before anything starts (e.g. the build failed). */
export interface PathOptions {
  connectorSkip: string | undefined;
  connector: ConnectorSetup;
  /** `--paths`: the columns to measure; the others are skipped as not selected. */
  only?: readonly PathId[] | undefined;
}

const NOT_SELECTED = "not selected (--paths)";

export async function startPaths(
  rig: Rig,
  targets: Targets,
  options: PathOptions,
  progress: Progress,
): Promise<PathStart[]> {
  const selected = (id: PathId) => !options.only || options.only.includes(id);
  const paths: PathStart[] = [selected("direct") ? directPath(targets) : { id: "direct", skipped: NOT_SELECTED }];
  const sshSkip = selected("ssh") ? sshMissing(rig.tools) : NOT_SELECTED;
  paths.push(sshSkip ? { id: "ssh", skipped: sshSkip } : await startOrSkip("ssh", () => sshPath(rig, targets)));
  const socatSkip = selected("socat") ? socatMissing(rig.tools) : NOT_SELECTED;
  paths.push(
    socatSkip ? { id: "socat", skipped: socatSkip } : await startOrSkip("socat", () => socatPath(rig, targets)),
  );
  const connectorSkip = selected("connector")
    ? (options.connectorSkip ?? connectorMissing(options.connector))
    : NOT_SELECTED;
  paths.push(
    connectorSkip
      ? { id: "connector", skipped: connectorSkip }
      : await startOrSkip("connector", () => connectorPath(rig, targets, options.connector)),
  );
  for (const path of paths)
    progress(`  ${path.id}: ${isReady(path) ? `ready on 127.0.0.1:${path.appPort}` : `skipped — ${path.skipped}`}`);
  return paths;
}

function describe(spec: RowSpec, value: number): string {
  return `${Number.isInteger(value) ? value : value.toPrecision(4)} ${spec.unit}`;
}

/** One measurement of `scenario` on one path: an outcome per row (a failure becomes a skip with its reason). */
async function measureOnce(
  ctx: ScenarioContext,
  scenario: Scenario,
  specs: readonly RowSpec[],
  path: PathStart,
  progress: Progress,
  label: string,
): Promise<Outcome[]> {
  if (!isReady(path)) return specs.map(() => ({ skipped: path.skipped }));
  const started = performance.now();
  let outcomes: Outcome[];
  try {
    const measured = await scenario.measure(ctx, path);
    outcomes = specs.map((_, i) => measured[i] ?? { skipped: "not measured" });
  } catch (err) {
    outcomes = specs.map(() => outcomeOfError(err));
  }
  const shown = specs.map((spec, i) => {
    const o = outcomes[i]!;
    return "value" in o ? describe(spec, o.value) : `— (${o.skipped})`;
  });
  progress(`  ${path.id}${label}: ${shown.join(", ")}  [${((performance.now() - started) / 1000).toFixed(1)} s]`);
  return outcomes;
}

/**
 * Measures `scenarios` on every path and records each cell (number or reason) in `table`. A traffic
 * scenario runs `profile.rounds` rounds, each visiting every path in turn, and keeps each cell's median:
 * one run of a bulk, latency or connection-rate row swings by ±10–20% on a shared 2-core machine. A
 * memory scenario runs once: its relays must be fresh, and its rows move far less.
 */
export async function runScenarios(
  ctx: ScenarioContext,
  paths: readonly PathStart[],
  scenarios: readonly Scenario[],
  table: ResultTable,
  progress: Progress,
): Promise<void> {
  for (const scenario of scenarios) {
    const specs = scenario.rows(ctx.profile);
    const rounds = scenario.phase === "traffic" ? ctx.profile.rounds : 1;
    progress(`▶ ${scenario.id}${rounds > 1 ? ` (${rounds} rounds, median)` : ""}`);
    const cells = new Map<PathId, Outcome[][]>();
    for (let round = 1; round <= rounds; round++) {
      for (const id of PATHS) {
        const path = paths.find((p) => p.id === id) ?? { id, skipped: "path not started" };
        if (!isReady(path) && round > 1) continue;
        const label = rounds > 1 ? ` #${round}` : "";
        const outcomes = isReady(path)
          ? await measureOnce(ctx, scenario, specs, path, progress, label)
          : specs.map(() => ({ skipped: path.skipped }));
        cells.set(id, [...(cells.get(id) ?? []), outcomes]);
      }
    }
    for (const [id, runs] of cells)
      specs.forEach((spec, i) => table.record(spec, id, medianOutcome(runs.map((r) => r[i]!))));
  }
}
