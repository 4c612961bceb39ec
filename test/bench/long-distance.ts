/**
 * The long-distance scenario: single-stream bulk each way again, inside a network namespace of its own
 * (only loopback, netem delay on lo: 10 ms and 40 ms one way → 20 and 80 ms round trips). Everything of
 * the scenario — app, iperf3, cloud, connector, sshd/ssh, socat, load generators — runs inside it via
 * `ip netns exec`. Note that every loopback hop pays the delay, so a relay path (two or three hops) sees
 * it more than once: the scenario shows how each path's windows cope with a long fat pipe, not a single RTT.
 */
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { LONG_DISTANCE_DELAYS_MS, type Profile } from "./config.ts";
import { createNamespace, namespaceHost, namespaceUnavailable, setDelay } from "./host.ts";
import type { ConnectorSetup } from "./paths/connector.ts";
import { isReady, type PathStart } from "./paths/path.ts";
import { type PathId, PATHS, type ResultTable, type RowSpec } from "./report.ts";
import { Rig } from "./rig.ts";
import type { Progress } from "./run-host.ts";
import { outcomeOfError, Skip } from "./scenario.ts";
import type { BenchSession } from "./session.ts";
import { startPaths } from "./run-host.ts";
import { startTargets } from "./targets.ts";
import type { Tools } from "./tools.ts";
import { bulkGbits } from "./traffic.ts";
import { costOutcomes, costRows } from "./cost-rows.ts";

export interface LongDistanceOptions {
  session: BenchSession;
  table: ResultTable;
  profile: Profile;
  tools: Tools;
  root: string;
  useIperf: boolean;
  connectorSkip: string | undefined;
  connector: ConnectorSetup;
  paths?: readonly PathId[] | undefined;
  /** Why the scenario is not run at all (e.g. --quick), or undefined. */
  notRun: string | undefined;
  /** Run in the namespace without netem: checks the plumbing on kernels that lack sch_netem. */
  noDelay: boolean;
  progress: Progress;
}

/** Each direction's throughput row and its cost rows (cost-rows.ts). */
function directionsFor(label: string): { bulk: RowSpec; cost: RowSpec[] }[] {
  return ["user→app", "app→user"].map((direction) => {
    const bulk = { name: `bulk, 1 stream, ${direction}, ${label}`, unit: "Gbit/s", higherIsBetter: true };
    return { bulk, cost: costRows(bulk.name, "bytes") };
  });
}

function rowsFor(label: string): RowSpec[] {
  return directionsFor(label).flatMap((d) => [d.bulk, ...d.cost]);
}

function labels(noDelay: boolean): { delayMs: number | undefined; label: string }[] {
  if (noDelay) return [{ delayMs: undefined, label: "netns without delay (plumbing check)" }];
  return LONG_DISTANCE_DELAYS_MS.map((d) => ({ delayMs: d, label: `${2 * d} ms RTT` }));
}

export async function runLongDistance(o: LongDistanceOptions): Promise<void> {
  const runs = labels(o.noDelay);
  const skipAll = (reason: string) =>
    runs.forEach((r) => rowsFor(r.label).forEach((spec) => o.table.recordAll(spec, { skipped: reason })));
  o.progress(`▶ long-distance`);
  const unavailable = o.notRun ?? namespaceUnavailable();
  if (unavailable) {
    o.progress(`  skipped — ${unavailable}`);
    return skipAll(unavailable);
  }
  const name = o.session.namespaceName();
  const procs = o.session.processes(name);
  const dir = join(o.session.dir, name, "work");
  mkdirSync(dir, { recursive: true });
  try {
    try {
      createNamespace(name);
      if (runs[0]?.delayMs !== undefined) setDelay(name, runs[0].delayMs); // fail early when netem is missing
    } catch (err) {
      throw new Skip(err instanceof Error ? err.message : String(err));
    }
    const rig = new Rig(procs, namespaceHost(name), dir, o.tools, o.root);
    const targets = await startTargets(rig, o.useIperf);
    const paths: PathStart[] = await startPaths(
      rig,
      targets,
      { connectorSkip: o.connectorSkip, connector: o.connector, only: o.paths },
      o.progress,
    );
    for (const run of runs) {
      if (run.delayMs !== undefined) setDelay(name, run.delayMs);
      const directions = directionsFor(run.label);
      for (const id of PATHS) {
        const path = paths.find((p) => p.id === id);
        for (const [i, { bulk: spec, cost }] of directions.entries()) {
          const rows = [spec, ...cost];
          if (!path || !isReady(path)) {
            const reason = { skipped: path && !isReady(path) ? path.skipped : "path not started" };
            for (const row of rows) o.table.record(row, id, reason);
            continue;
          }
          const bulk = {
            streams: 1,
            reverse: i === 1,
            seconds: o.profile.longBulkSeconds,
            warmupSeconds: o.profile.longWarmupSeconds,
          };
          try {
            const r = await bulkGbits(rig, o.useIperf, path, bulk);
            o.table.record(spec, id, { value: r.gbits });
            const costs = costOutcomes(path, r.spent, "bytes", r.costWhy);
            cost.forEach((row, c) => o.table.record(row, id, costs[c]!));
            o.progress(`  ${spec.name}: ${id} ${r.gbits.toFixed(2)} Gbit/s`);
          } catch (err) {
            for (const row of rows) o.table.record(row, id, outcomeOfError(err));
          }
        }
      }
    }
  } catch (err) {
    const reason = outcomeOfError(err);
    o.progress(`  skipped — ${"skipped" in reason ? reason.skipped : ""}`);
    // only cells not measured yet take the reason; measured ones stay
    runs.forEach((r) =>
      rowsFor(r.label).forEach((spec) => PATHS.forEach((id) => o.table.recordIfAbsent(spec, id, reason))),
    );
  } finally {
    await procs.stopAll();
    o.session.deleteNamespace(name);
  }
}
