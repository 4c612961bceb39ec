/**
 * The load generator, always a separate process (`bun test/bench/loadgen.ts '<json>'`) so the process whose
 * memory and CPU are measured is never the one generating load. One job per run, given as JSON in argv[2];
 * results are JSON lines on stdout. Every job is bounded by its duration; every wait by a deadline.
 */
import type { Socket } from "bun";
import * as v from "valibot";
import { SEND_CHUNK_BYTES } from "./config.ts";
import { CostMeter, CostTargetsSchema } from "./cost.ts";
import { rateIn, summarize } from "./stats.ts";
import { Mode, ReportDecoder } from "./wire.ts";
import { runConnRate, runIdle, runProbe, runSlowReader } from "./loadgen-streams.ts";
import { CONNECT_TIMEOUT_MS, emit, open } from "./loadgen-io.ts";

export const JobSchema = v.variant("cmd", [
  v.object({ cmd: v.literal("probe"), port: v.number(), timeoutMs: v.number() }),
  v.object({
    cmd: v.picklist(["upload", "download"]),
    port: v.number(),
    streams: v.number(),
    durationMs: v.number(),
    warmupMs: v.number(),
    cost: v.optional(CostTargetsSchema),
  }),
  v.object({
    cmd: v.literal("latency"),
    port: v.number(),
    concurrency: v.number(),
    durationMs: v.number(),
    warmupMs: v.number(),
    size: v.number(),
    cost: v.optional(CostTargetsSchema),
  }),
  v.object({
    cmd: v.literal("connrate"),
    port: v.number(),
    loops: v.number(),
    durationMs: v.number(),
    cost: v.optional(CostTargetsSchema),
  }),
  v.object({
    cmd: v.literal("idle"),
    port: v.number(),
    count: v.number(),
    parallel: v.number(),
    timeoutMs: v.number(),
  }),
  v.object({ cmd: v.literal("slow"), port: v.number(), bytesPerSecond: v.number(), durationMs: v.number() }),
]);
export type Job = v.InferOutput<typeof JobSchema>;

interface BulkConn {
  reports: { atMs: number; bytes: number }[];
  decoder: ReportDecoder;
  received: number;
  /** Bytes the socket took from this side (upload): the work the cost window divides by. */
  sent: number;
  done: boolean;
  error: string | undefined;
}

const filler = new Uint8Array(SEND_CHUNK_BYTES).fill(0x33);

function pumpUpload(socket: Socket<BulkConn>): void {
  for (let i = 0; i < 64; i++) {
    if (socket.data.done) return;
    const took = socket.write(filler);
    socket.data.sent += Math.max(0, took);
    if (took < filler.length) return; // filler bytes: nothing to keep, drain resumes
  }
  setImmediate(() => pumpUpload(socket));
}

/** Upload: rate from the sink's own reports (bytes that arrived at the app). Download: bytes read here. */
async function runBulk(job: Extract<Job, { cmd: "upload" | "download" }>): Promise<void> {
  const upload = job.cmd === "upload";
  const handlers: Bun.SocketHandler<BulkConn> = {
    data(socket, bytes) {
      const c = socket.data;
      if (!upload) c.received += bytes.length;
      else for (const r of c.decoder.push(bytes)) c.reports.push({ atMs: r.micros / 1000, bytes: r.bytes });
    },
    drain(socket) {
      if (upload) pumpUpload(socket);
    },
    close(socket) {
      if (!socket.data.done) socket.data.error ??= "closed by the peer before the end of the run";
    },
    error(socket, err) {
      socket.data.error ??= err.message;
    },
  };
  const conns: Socket<BulkConn>[] = [];
  for (let i = 0; i < job.streams; i++) {
    const data: BulkConn = {
      reports: [],
      decoder: new ReportDecoder(),
      received: 0,
      sent: 0,
      done: false,
      error: undefined,
    };
    conns.push(await open(job.port, upload ? Mode.sink : Mode.source, handlers, data));
  }
  if (upload) for (const socket of conns) pumpUpload(socket);
  const total = () => conns.reduce((sum, s) => sum + s.data.received, 0);
  const moved = () => conns.reduce((sum, s) => sum + s.data.received + s.data.sent, 0);
  const meter = new CostMeter(job.cost);
  await Bun.sleep(job.warmupMs);
  const startBytes = total();
  const startAt = performance.now();
  meter.start(moved());
  await Bun.sleep(job.durationMs);
  meter.stop(moved());
  // upload reports lag one report period behind; wait for the sink's last report of the window
  if (upload) await Bun.sleep(250);
  const endBytes = total();
  const endAt = performance.now();
  for (const socket of conns) {
    socket.data.done = true; // Bun may run the close handler inside end()
    socket.end();
  }
  const error = conns.map((s) => s.data.error).find((e) => e !== undefined);
  if (error) return emit({ error });
  const cost = meter.window;
  if (!upload) return emit({ bytesPerSecond: ((endBytes - startBytes) * 1000) / (endAt - startAt), cost });
  let bytesPerSecond = 0;
  for (const socket of conns) {
    const rate = rateIn(socket.data.reports, job.warmupMs, job.warmupMs + job.durationMs);
    if (rate === undefined) return emit({ error: "the sink sent too few reports to measure a rate" });
    bytesPerSecond += rate;
  }
  emit({ bytesPerSecond, cost });
}

interface EchoConn {
  got: number;
  sentAt: number;
  resolve: (() => void) | undefined;
  error: string | undefined;
  done: boolean;
}

/** Closed-loop 1 KiB request/response on `concurrency` streams; latency of each exchange after the warm-up. */
async function runLatency(job: Extract<Job, { cmd: "latency" }>): Promise<void> {
  const request = new Uint8Array(job.size).fill(0x41);
  const handlers: Bun.SocketHandler<EchoConn> = {
    data(socket, bytes) {
      const c = socket.data;
      c.got += bytes.length;
      if (c.got >= job.size) c.resolve?.();
    },
    close(socket) {
      if (!socket.data.done) socket.data.error ??= "closed by the peer";
      socket.data.resolve?.();
    },
    error(socket, err) {
      socket.data.error ??= err.message;
    },
  };
  const conns: Socket<EchoConn>[] = [];
  for (let i = 0; i < job.concurrency; i++) {
    conns.push(
      await open(job.port, Mode.echo, handlers, {
        got: 0,
        sentAt: 0,
        resolve: undefined,
        error: undefined,
        done: false,
      }),
    );
  }
  const samples: number[] = [];
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const end = measureFrom + job.durationMs;
  // the cost window: exchanges completed between its two readings, taken while every stream is busy
  let completed = 0;
  const meter = new CostMeter(job.cost);
  const startTimer = setTimeout(() => meter.start(completed), job.warmupMs);
  const stopTimer = setTimeout(() => meter.stop(completed), job.warmupMs + job.durationMs);
  const loop = async (socket: Socket<EchoConn>) => {
    const c = socket.data;
    while (performance.now() < end && c.error === undefined) {
      c.got = 0;
      const replied = new Promise<void>((resolve) => (c.resolve = resolve));
      const sentAt = performance.now();
      if (socket.write(request) !== request.length)
        throw new Error("a 1 KiB write was not taken whole by an idle socket");
      const late = await Promise.race([replied.then(() => false), Bun.sleep(CONNECT_TIMEOUT_MS).then(() => true)]);
      if (late) c.error = `no response within ${CONNECT_TIMEOUT_MS} ms`;
      else if (c.error === undefined) {
        completed++;
        if (sentAt >= measureFrom) samples.push((performance.now() - sentAt) * 1000);
      }
    }
  };
  await Promise.all(conns.map(loop));
  clearTimeout(startTimer);
  clearTimeout(stopTimer);
  meter.stop(completed); // when the loops ended a hair before the timer: still before the streams close
  for (const socket of conns) {
    socket.data.done = true; // Bun may run the close handler inside end()
    socket.end();
  }
  const error = conns.map((s) => s.data.error).find((e) => e !== undefined);
  if (error) return emit({ error });
  if (samples.length === 0) return emit({ error: "no request completed in the measured window" });
  const s = summarize(samples);
  emit({
    count: s.count,
    p50Us: s.p50,
    p99Us: s.p99,
    maxUs: s.max,
    requestsPerSecond: (s.count * 1000) / job.durationMs,
    cost: meter.window,
  });
}

async function main(): Promise<void> {
  const job = v.parse(JobSchema, JSON.parse(process.argv[2] ?? "null"));
  switch (job.cmd) {
    case "probe":
      return runProbe(job.port, job.timeoutMs);
    case "upload":
    case "download":
      return runBulk(job);
    case "latency":
      return runLatency(job);
    case "connrate":
      return runConnRate(job.port, job.loops, job.durationMs, job.cost);
    case "idle":
      return runIdle(job.port, job.count, job.parallel, job.timeoutMs);
    case "slow":
      return runSlowReader(job.port, job.bytesPerSecond, job.durationMs);
  }
}

if (import.meta.main) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      emit({ error: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    },
  );
}
