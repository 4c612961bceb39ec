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
import { type PathId, PATHS, type ResultTable, type RowSpec } from "./report.ts";
import type { Rig } from "./rig.ts";
import { outcomeOfError, type Scenario, type ScenarioContext } from "./scenario.ts";
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

export async function startPaths(rig: Rig, targets: Targets, options: PathOptions, progress: Progress): Promise<PathStart[]> {
  const selected = (id: PathId) => !options.only || options.only.includes(id);
  const paths: PathStart[] = [selected("direct") ? directPath(targets) : { id: "direct", skipped: NOT_SELECTED }];
  const sshSkip = selected("ssh") ? sshMissing(rig.tools) : NOT_SELECTED;
  paths.push(sshSkip ? { id: "ssh", skipped: sshSkip } : await startOrSkip("ssh", () => sshPath(rig, targets)));
  const socatSkip = selected("socat") ? socatMissing(rig.tools) : NOT_SELECTED;
  paths.push(socatSkip ? { id: "socat", skipped: socatSkip } : await startOrSkip("socat", () => socatPath(rig, targets)));
  const connectorSkip = selected("connector") ? (options.connectorSkip ?? connectorMissing(options.connector)) : NOT_SELECTED;
  paths.push(connectorSkip ? { id: "connector", skipped: connectorSkip } : await startOrSkip("connector", () => connectorPath(rig, targets, options.connector)));
  for (const path of paths) progress(`  ${path.id}: ${isReady(path) ? `ready on 127.0.0.1:${path.appPort}` : `skipped — ${path.skipped}`}`);
  return paths;
}

function describe(spec: RowSpec, value: number): string {
  return `${Number.isInteger(value) ? value : value.toPrecision(4)} ${spec.unit}`;
}

/** Measures `scenarios` on every path and records each cell (number or reason) in `table`. */
export async function runScenarios(ctx: ScenarioContext, paths: readonly PathStart[], scenarios: readonly Scenario[], table: ResultTable, progress: Progress): Promise<void> {
  for (const scenario of scenarios) {
    const specs = scenario.rows(ctx.profile);
    progress(`▶ ${scenario.id}`);
    for (const id of PATHS) {
      const path = paths.find((p) => p.id === id);
      if (!path || !isReady(path)) {
        for (const spec of specs) table.record(spec, id, { skipped: path && !isReady(path) ? path.skipped : "path not started" });
        continue;
      }
      const started = performance.now();
      try {
        const outcomes = await scenario.measure(ctx, path);
        specs.forEach((spec, i) => table.record(spec, id, outcomes[i] ?? { skipped: "not measured" }));
        const shown = specs.map((spec, i) => {
          const o = outcomes[i];
          return o && "value" in o ? describe(spec, o.value) : `— (${o?.skipped ?? "not measured"})`;
        });
        progress(`  ${id}: ${shown.join(", ")}  [${((performance.now() - started) / 1000).toFixed(1)} s]`);
      } catch (err) {
        const outcome = outcomeOfError(err);
        for (const spec of specs) table.record(spec, id, outcome);
        progress(`  ${id}: — (${"skipped" in outcome ? outcome.skipped : ""})`);
      }
    }
  }
}
