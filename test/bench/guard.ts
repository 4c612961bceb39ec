/**
 * `bun test/bench/guard.ts [--record]` — the CI regression guard: runs the benchmark with --quick --json and
 * fails (exit 1) on a gross regression of the connector's ratios (÷ ssh -L, ÷ direct) against
 * test/bench/baseline-ratios.json — never on absolute numbers — and when a recorded ratio's connector
 * value is missing (the column skipped, a scenario failed on the connector): a guard that could not
 * measure the connector has not checked it. A missing baseline tool (ssh, iperf3) only leaves its ratios
 * "not checked". A suspect ratio is confirmed by up to GUARD_RUNS runs in all (it must fail in every
 * one). Exit 2 when the benchmark itself could not run (no verdict is possible).
 * `--record` writes the ratios of this run as the new baseline instead of judging it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { GUARD_COST_FACTOR, GUARD_EXCLUDE, GUARD_FACTOR, GUARD_RUNS, GUARD_VS_SSH_EXCLUDE } from "./config.ts";
import { isCostRow } from "./cost-rows.ts";
import { BaselineRatiosSchema, bestRatios, judge, recordRatios } from "./guard-logic.ts";
import { type BenchDoc, BenchDocSchema } from "./report.ts";

const BASELINE = join(import.meta.dir, "baseline-ratios.json");
/** The quick run must finish in under 2 minutes; past 5 something hangs and the guard stops it. */
const RUN_TIMEOUT_MS = 5 * 60_000;
const NOTE =
  "Connector ratios from `bun test/bench/guard.ts --record` (a --quick run). The guard fails when a ratio is worse than this by more than GUARD_FACTOR (config.ts). Re-record after a deliberate change, on the machine CI uses.";

async function runQuick(extra: string[]): Promise<unknown> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts"), "--quick", "--json", ...extra], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const stdout = new Response(proc.stdout).text();
  const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(RUN_TIMEOUT_MS).then(() => false)]);
  if (!done) {
    proc.kill("SIGTERM"); // main.ts stops everything it started on SIGTERM
    await Promise.race([proc.exited, Bun.sleep(10_000)]);
    throw new Error(`the quick benchmark did not finish within ${RUN_TIMEOUT_MS / 1000} s`);
  }
  if (proc.exitCode !== 0) throw new Error(`the quick benchmark exited ${proc.exitCode}`);
  return JSON.parse(await stdout);
}

async function main(): Promise<number> {
  const record = process.argv.includes("--record");
  const extra = process.argv.slice(2).filter((a) => a !== "--record");
  const runs: BenchDoc[] = [];
  const runOnce = async (): Promise<boolean> => {
    try {
      runs.push(v.parse(BenchDocSchema, await runQuick(extra)));
      return true;
    } catch (err) {
      console.error(
        `guard: no verdict, the benchmark did not run: ${err instanceof Error ? err.message : String(err)}`,
      );
      return false;
    }
  };
  if (!(await runOnce())) return 2;
  if (record) {
    const recorded = recordRatios(runs[0]!, NOTE, new Date(), GUARD_EXCLUDE, GUARD_VS_SSH_EXCLUDE);
    writeFileSync(BASELINE, `${JSON.stringify(recorded, null, 2)}\n`);
    console.log(`guard: recorded ${Object.keys(recorded.ratios).length} rows of ratios in ${BASELINE}`);
    return 0;
  }
  const baseline = v.parse(BaselineRatiosSchema, JSON.parse(readFileSync(BASELINE, "utf8")));
  const options = {
    partial: extra.some((a) => a === "--only" || a.startsWith("--only=")),
    factorFor: (name: string) => (isCostRow(name) ? GUARD_COST_FACTOR : undefined),
    // the cost rows --record would keep (a ratio to ssh -L or direct, not excluded) and that it has not yet
    pending: (name: string) => isCostRow(name) && !GUARD_EXCLUDE.test(name) && !GUARD_VS_SSH_EXCLUDE.test(name),
  };
  let verdict = judge(runs[0]!, baseline, GUARD_FACTOR, options);
  while (!verdict.ok && runs.length < GUARD_RUNS) {
    console.log(
      `guard: suspect ${verdict.failures.join("; ")} — confirming with run ${runs.length + 1} of ${GUARD_RUNS}`,
    );
    if (!(await runOnce())) return 2;
    verdict = judge(bestRatios(runs), baseline, GUARD_FACTOR, options);
  }
  for (const note of verdict.notes) console.log(`guard: ${note}`);
  for (const failure of verdict.failures) console.log(`guard: REGRESSION ${failure}`);
  const over = runs.length > 1 ? `, best of ${runs.length} runs` : "";
  console.log(
    `guard: ${verdict.ok ? "pass" : "FAIL"} (${verdict.checked} ratios compared, tolerance ${GUARD_FACTOR}×, cost rows ${GUARD_COST_FACTOR}×${over})`,
  );
  return verdict.ok ? 0 : 1;
}

if (import.meta.main) process.exit(await main());
