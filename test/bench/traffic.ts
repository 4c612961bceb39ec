/**
 * Scenarios that measure traffic: bulk throughput each way (one stream, and the aggregate of many),
 * 1 KiB request/response latency at 1 and 50 concurrent, and new streams per second. The numbers come
 * from iperf3 or the load generator, both separate processes from the relay under test. Each also prices
 * its traffic (cost-rows.ts): CPU and syscalls of the path's processes over the measured interval only.
 */
import * as v from "valibot";
import { CONN_RATE_LOOPS, DEADLINES, MAX_CONN_ERROR_SHARE, type Profile, REQUEST_BYTES } from "./config.ts";
import { type CostSpent, CostWindowSchema, spentIn } from "./cost.ts";
import { costOutcomes, costRows } from "./cost-rows.ts";
import { runIperf } from "./iperf.ts";
import type { ReadyPath } from "./paths/path.ts";
import type { Outcome } from "./report.ts";
import type { Rig } from "./rig.ts";
import { type Scenario, type ScenarioContext, Skip } from "./scenario.ts";
import { toGbits } from "./stats.ts";

const BulkResult = v.object({ bytesPerSecond: v.number(), cost: v.optional(CostWindowSchema) });
const LatencyResult = v.object({
  count: v.number(),
  p50Us: v.number(),
  p99Us: v.number(),
  requestsPerSecond: v.number(),
  cost: v.optional(CostWindowSchema),
});
const ConnRateResult = v.object({
  perSecond: v.number(),
  completed: v.number(),
  errors: v.number(),
  lastError: v.optional(v.string()),
  cost: v.optional(CostWindowSchema),
});

/** The cost of a load-generator window, or undefined when it read none. */
const spentOf = (window: v.InferOutput<typeof CostWindowSchema> | undefined): CostSpent | undefined =>
  window && spentIn(window);

/** How long the bulk stream of `latency-bulk` runs alone before, and after, the measured requests. */
const BULK_LEAD_MS = 500;

export interface BulkSpec {
  streams: number;
  reverse: boolean;
  seconds: number;
  warmupSeconds: number;
}

export interface BulkOutcome {
  gbits: number;
  /** CPU and syscalls of the path over the measured interval, and the bytes moved in it. */
  spent: CostSpent | undefined;
  costWhy?: string;
}

/**
 * Bulk throughput through `path` in Gbit/s: iperf3 when the run uses it, else the harness's own sender;
 * and what the path's processes spent moving it.
 */
export async function bulkGbits(
  rig: Rig,
  useIperf: boolean,
  path: Pick<ReadyPath, "appPort" | "iperfPort" | "cost">,
  spec: BulkSpec,
): Promise<BulkOutcome> {
  if (useIperf) {
    if (path.iperfPort === undefined) throw new Skip("this path forwards no iperf3 listener");
    const r = await runIperf(
      rig,
      {
        port: path.iperfPort,
        seconds: spec.seconds,
        omitSeconds: spec.warmupSeconds,
        streams: spec.streams,
        reverse: spec.reverse,
      },
      path.cost,
    );
    return { gbits: r.bitsPerSecond / 1e9, spent: r.spent, ...(r.costWhy ? { costWhy: r.costWhy } : {}) };
  }
  const job = {
    cmd: spec.reverse ? ("download" as const) : ("upload" as const),
    port: path.appPort,
    streams: spec.streams,
    durationMs: spec.seconds * 1000,
    warmupMs: spec.warmupSeconds * 1000,
    ...(path.cost ? { cost: path.cost } : {}),
  };
  const result = v.parse(BulkResult, await rig.loadgen(job, job.durationMs + job.warmupMs + DEADLINES.loadgenSlackMs));
  return { gbits: toGbits(result.bytesPerSecond), spent: spentOf(result.cost) };
}

function bulkScenario(
  id: string,
  name: (p: Profile) => string,
  streams: (p: Profile) => number,
  reverse: boolean,
): Scenario {
  return {
    id,
    phase: "traffic",
    rows: (p) => [{ name: name(p), unit: "Gbit/s", higherIsBetter: true }, ...costRows(name(p), "bytes")],
    async measure(ctx: ScenarioContext, path: ReadyPath): Promise<Outcome[]> {
      const p = ctx.profile;
      const spec = { streams: streams(p), reverse, seconds: p.bulkSeconds, warmupSeconds: p.bulkWarmupSeconds };
      const r = await bulkGbits(ctx.rig, ctx.useIperf, path, spec);
      return [{ value: r.gbits }, ...costOutcomes(path, r.spent, "bytes", r.costWhy)];
    },
  };
}

export const bulkUp = bulkScenario(
  "bulk-up",
  () => "bulk, 1 stream, user→app",
  () => 1,
  false,
);
export const bulkDown = bulkScenario(
  "bulk-down",
  () => "bulk, 1 stream, app→user",
  () => 1,
  true,
);
export const bulkAggregate = bulkScenario(
  "bulk-aggregate",
  (p) => `bulk, ${p.aggregateStreams} streams aggregate, user→app`,
  (p) => p.aggregateStreams,
  false,
);

function latencyScenario(concurrency: number): Scenario {
  const withRate = concurrency > 1;
  const costBase = `1 KiB request/response, ${concurrency} concurrent`;
  return {
    id: `latency-${concurrency}`,
    phase: "traffic",
    rows: () => [
      { name: `1 KiB request/response p50, ${concurrency} concurrent`, unit: "µs", higherIsBetter: false },
      { name: `1 KiB request/response p99, ${concurrency} concurrent`, unit: "µs", higherIsBetter: false },
      ...(withRate
        ? [{ name: `1 KiB requests per second, ${concurrency} concurrent`, unit: "req/s", higherIsBetter: true }]
        : []),
      ...costRows(costBase, "requests"),
    ],
    async measure(ctx, path) {
      const job = {
        cmd: "latency" as const,
        port: path.appPort,
        concurrency,
        durationMs: ctx.profile.latencyMs,
        warmupMs: ctx.profile.latencyWarmupMs,
        size: REQUEST_BYTES,
        ...(path.cost ? { cost: path.cost } : {}),
      };
      const r = v.parse(
        LatencyResult,
        await ctx.rig.loadgen(job, job.durationMs + job.warmupMs + DEADLINES.loadgenSlackMs),
      );
      return [
        { value: r.p50Us },
        { value: r.p99Us },
        ...(withRate ? [{ value: r.requestsPerSecond }] : []),
        ...costOutcomes(path, spentOf(r.cost), "requests"),
      ];
    },
  };
}

export const latency1 = latencyScenario(1);
export const latency50 = latencyScenario(50);

/**
 * Fairness ("one bulk stream cannot starve the others"): 1 KiB round trips on one connection while
 * another connection through the same path carries a bulk upload. The bulk job (its own load-generator
 * process) starts first and runs past the end of the latency run.
 */
export const latencyUnderBulk: Scenario = {
  id: "latency-bulk",
  phase: "traffic",
  rows: () => [{ name: "1 KiB request/response p50 under a bulk stream", unit: "µs", higherIsBetter: false }],
  async measure(ctx, path) {
    const p = ctx.profile;
    const latencyJob = {
      cmd: "latency" as const,
      port: path.appPort,
      concurrency: 1,
      durationMs: p.latencyMs,
      warmupMs: p.latencyWarmupMs,
      size: REQUEST_BYTES,
    };
    const bulkMs = BULK_LEAD_MS + latencyJob.warmupMs + latencyJob.durationMs + BULK_LEAD_MS;
    const bulk = ctx.rig.loadgen(
      { cmd: "upload", port: path.appPort, streams: 1, durationMs: bulkMs, warmupMs: 0 },
      bulkMs + DEADLINES.loadgenSlackMs,
    );
    await Bun.sleep(BULK_LEAD_MS); // the bulk stream is flowing before the first request
    const r = v.parse(
      LatencyResult,
      await ctx.rig.loadgen(latencyJob, latencyJob.durationMs + latencyJob.warmupMs + DEADLINES.loadgenSlackMs),
    );
    v.parse(BulkResult, await bulk);
    return [{ value: r.p50Us }];
  },
};

export const connRate: Scenario = {
  id: "connrate",
  phase: "traffic",
  rows: () => [
    { name: "new streams per second (open, first byte, close)", unit: "streams/s", higherIsBetter: true },
    ...costRows("new streams (open, first byte, close)", "streams"),
  ],
  async measure(ctx, path) {
    const job = {
      cmd: "connrate" as const,
      port: path.appPort,
      loops: CONN_RATE_LOOPS,
      durationMs: ctx.profile.connRateMs,
      ...(path.cost ? { cost: path.cost } : {}),
    };
    const r = v.parse(ConnRateResult, await ctx.rig.loadgen(job, job.durationMs + DEADLINES.loadgenSlackMs));
    if (r.errors > r.completed * MAX_CONN_ERROR_SHARE) {
      const failed = `failed: ${r.errors} of ${r.errors + r.completed} streams failed (last: ${r.lastError ?? "unknown"})`;
      return Array.from({ length: 5 }, () => ({ skipped: failed }));
    }
    return [{ value: r.perSecond }, ...costOutcomes(path, spentOf(r.cost), "streams")];
  },
};
