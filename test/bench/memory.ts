/**
 * Scenarios that measure the relay's memory (rss.ts): idle, with thousands of idle streams (total and per
 * stream), and while one slow reader drains a fast writer (peak, and growth over the memory just before —
 * bounded by the flow-control windows if the relay honours backpressure).
 */
import * as v from "valibot";
import {
  DEADLINES,
  IDLE_OPEN_PARALLEL,
  RSS_SAMPLE_MS,
  RSS_SETTLE_MS,
  SLOW_READER_BYTES_PER_SECOND,
  SLOW_READER_WARMUP_MS,
} from "./config.ts";
import { BenchError } from "./procs.ts";
import { type MeasuredProcess, memoryKiB } from "./rss.ts";
import { measuredOf, type Scenario } from "./scenario.ts";

const IdleReady = v.object({ ready: v.literal(true), opened: v.number() });
const SlowResult = v.object({ read: v.number() });

function readKiB(target: MeasuredProcess): number {
  const kib = memoryKiB(target);
  if (kib === undefined) throw new BenchError(`measured process ${target.pid} is gone`);
  return kib;
}

const MiB = (kib: number) => kib / 1024;

export const idleRss: Scenario = {
  id: "idle-rss",
  phase: "memory",
  rows: () => [{ name: "idle RSS", unit: "MiB", higherIsBetter: false }],
  async measure(_ctx, path) {
    return [{ value: MiB(readKiB(measuredOf(path))) }];
  },
};

export const idleStreams: Scenario = {
  id: "idle-streams",
  phase: "memory",
  rows: (p) => [
    { name: `RSS with ${p.idleStreams.toLocaleString("en-US")} idle streams`, unit: "MiB", higherIsBetter: false },
    { name: `RSS per idle stream (${p.idleStreams.toLocaleString("en-US")} open)`, unit: "KiB", higherIsBetter: false },
  ],
  async measure(ctx, path) {
    const target = measuredOf(path);
    const count = ctx.profile.idleStreams;
    await Bun.sleep(RSS_SETTLE_MS);
    const before = readKiB(target);
    const job = {
      cmd: "idle" as const,
      port: path.appPort,
      count,
      parallel: IDLE_OPEN_PARALLEL,
      timeoutMs: DEADLINES.idleOpenMs,
    };
    const held = await ctx.rig.loadgenHeld(job, DEADLINES.idleOpenMs + DEADLINES.loadgenSlackMs);
    let after: number;
    try {
      const ready = v.parse(IdleReady, held.ready);
      if (ready.opened !== count) throw new BenchError(`opened ${ready.opened} of ${count} idle streams`);
      await Bun.sleep(RSS_SETTLE_MS);
      after = readKiB(target);
    } finally {
      await held.release();
    }
    return [{ value: MiB(after) }, { value: (after - before) / count }];
  },
};

export const slowReader: Scenario = {
  id: "slow-reader",
  phase: "memory",
  rows: () => [
    { name: "RSS while a slow reader drains a fast writer (peak)", unit: "MiB", higherIsBetter: false },
    { name: "RSS growth for that one slow stream", unit: "KiB", higherIsBetter: false },
  ],
  async measure(ctx, path) {
    const target = measuredOf(path);
    await Bun.sleep(RSS_SETTLE_MS); // streams of the previous scenario may still be closing
    // Warm-up: a relay's first real traffic pays one-time costs (JIT code, heap arenas, TLS buffers:
    // ~12 MiB for the connector, ~0.2 MiB for ssh) that are not what a slow stream holds.
    const warmUp = {
      cmd: "slow" as const,
      port: path.appPort,
      bytesPerSecond: SLOW_READER_BYTES_PER_SECOND,
      durationMs: SLOW_READER_WARMUP_MS,
    };
    v.parse(SlowResult, await ctx.rig.loadgen(warmUp, warmUp.durationMs + DEADLINES.loadgenSlackMs));
    await Bun.sleep(RSS_SETTLE_MS);
    const before = readKiB(target);
    const job = {
      cmd: "slow" as const,
      port: path.appPort,
      bytesPerSecond: SLOW_READER_BYTES_PER_SECOND,
      durationMs: ctx.profile.slowReaderMs,
    };
    const running = ctx.rig.loadgen(job, job.durationMs + DEADLINES.loadgenSlackMs);
    let peak = before;
    let finished = false;
    void running.then(
      () => (finished = true),
      () => (finished = true),
    );
    const samples = Math.ceil((job.durationMs + DEADLINES.loadgenSlackMs) / RSS_SAMPLE_MS);
    for (let i = 0; i < samples && !finished; i++) {
      peak = Math.max(peak, memoryKiB(target) ?? peak);
      await Bun.sleep(RSS_SAMPLE_MS);
    }
    v.parse(SlowResult, await running);
    return [{ value: MiB(peak) }, { value: peak - before }];
  },
};
