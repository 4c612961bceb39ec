/**
 * New connections per second as a real client sees them: ApacheBench (`ab`) fetching a page over
 * HTTP/1.0 through each path, a new TCP connection per request, the server closing first — the shape of
 * the ab-through-nginx check that once gave the connector ~2,800/s and ssh -L ~245/s while the harness's
 * own "new streams" row put ssh -L ahead. The two rows differ in who closes: the load generator's
 * streams are closed by the client after the app's first byte, ab's by the app after its answer, and ab
 * counts a request only when it has read the close. Both run here, side by side, so a relay that is fast
 * at one and slow at the other shows it (BENCHMARKS.md "Scenarios" explains the gap that was found).
 * The target app answers HTTP itself (wire.ts `Mode.http`), so every path relays the same bytes.
 */
import * as v from "valibot";
import { CONN_RATE_LOOPS, DEADLINES, MAX_CONN_ERROR_SHARE } from "./config.ts";
import { type CostSpent, costBetween, readCost } from "./cost.ts";
import { costOutcomes, costRows } from "./cost-rows.ts";
import { BenchError } from "./procs.ts";
import type { Outcome } from "./report.ts";
import { type Scenario, Skip } from "./scenario.ts";

const BASE = "HTTP/1.0 connections (ApacheBench, the server closes)";

/** What one ab run reports; every field is from its summary. */
export const AbSummary = v.object({
  seconds: v.number(),
  completed: v.number(),
  failed: v.number(),
  non2xx: v.number(),
});
export type AbSummary = v.InferOutput<typeof AbSummary>;

function field(text: string, label: string): number | undefined {
  const m = new RegExp(`^${label}:\\s+([0-9.]+)`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The summary of ab's standard output; throws with ab's text when it is not there (ab failed early). */
export function parseAb(text: string): AbSummary {
  const seconds = field(text, "Time taken for tests");
  const completed = field(text, "Complete requests");
  if (seconds === undefined || completed === undefined)
    throw new BenchError(`ab printed no summary: ${text.trim().split("\n").slice(-3).join(" / ")}`);
  return v.parse(AbSummary, {
    seconds,
    completed,
    failed: field(text, "Failed requests") ?? 0,
    non2xx: field(text, "Non-2xx responses") ?? 0,
  });
}

export const abRate: Scenario = {
  id: "ab",
  phase: "traffic",
  rows: () => [
    { name: `${BASE} per second, ${CONN_RATE_LOOPS} concurrent`, unit: "conn/s", higherIsBetter: true },
    ...costRows(BASE, "streams"),
  ],
  async measure(ctx, path) {
    const ab = ctx.rig.tools.ab;
    if (!ab) throw new Skip("ab not installed (apt-get install apache2-utils)");
    const seconds = Math.max(1, Math.round(ctx.profile.connRateMs / 1000));
    // -t before -n: -t alone caps the run at 50,000 requests, which a fast path reaches before the time is up
    const cmd = [ab, "-q", "-r", "-s", "10", "-c", String(CONN_RATE_LOOPS), "-t", String(seconds), "-n", "10000000"];
    cmd.push(`http://127.0.0.1:${path.appPort}/`);
    const before = path.cost ? readCost(path.cost) : undefined;
    const started = performance.now();
    const { code, child } = await ctx.rig.runToEnd("ab", cmd, seconds * 1000 + DEADLINES.loadgenSlackMs);
    const ms = performance.now() - started;
    const text = await Bun.file(`${child.logBase}.out`).text();
    if (code !== 0) throw new BenchError(`ab exited ${code}: ${ctx.rig.procs.tail(child)}`);
    const r = parseAb(text);
    const failed = r.failed + r.non2xx;
    if (r.completed === 0 || failed > r.completed * MAX_CONN_ERROR_SHARE) {
      const why = `failed: ${failed} of ${r.completed} requests failed`;
      return Array.from({ length: 5 }, (): Outcome => ({ skipped: why }));
    }
    // The cost interval is the ab process's life: its start-up and exit add a few ms to a run of seconds.
    const cost: CostSpent | undefined =
      path.cost && before ? costBetween(before, readCost(path.cost), r.completed, ms) : undefined;
    return [{ value: r.completed / r.seconds }, ...costOutcomes(path, cost, "streams")];
  },
};
