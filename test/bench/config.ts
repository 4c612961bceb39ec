/**
 * Every number that shapes the benchmark (durations, stream counts, deadlines, the guard's tolerance) in
 * one place, each with the reason for its value. `profile(quick)` picks the full or the CI-sized set.
 */

export interface Profile {
  /** Measured seconds of each bulk-throughput run (after the warm-up below). */
  bulkSeconds: number;
  /** Seconds dropped at the start of a bulk run: TCP slow start and relay buffers filling are not steady state. */
  bulkWarmupSeconds: number;
  /** Streams of the aggregate-throughput scenario. */
  aggregateStreams: number;
  /** Measured milliseconds of each request/response latency run. */
  latencyMs: number;
  /** Dropped milliseconds at the start of a latency run (JIT warm-up of the load generator and relays). */
  latencyWarmupMs: number;
  /** Measured milliseconds of the new-streams-per-second run. */
  connRateMs: number;
  /** Idle streams held open for the memory-per-stream scenario. */
  idleStreams: number;
  /** Milliseconds the slow reader drains the fast writer while the relay's memory is sampled. */
  slowReaderMs: number;
  /** Long-distance bulk runs: measured seconds (slow start at 80 ms RTT needs several seconds to reach steady state). */
  longBulkSeconds: number;
  longWarmupSeconds: number;
  /**
   * Rounds of the traffic scenarios: every path measured once per round, paths interleaved, the median
   * kept. On a shared 2-core machine one bulk run of the same code swings by ±10%, and ssh -L's too; the
   * 1 KiB p50 at 1 concurrent read 0.91× ssh -L in one run and 1.11–1.22× in the next four of the same
   * code, so a single ratio could land either side of a target by chance.
   */
  rounds: number;
}

/** A full run: long enough for stable numbers on a 2-core machine (about 15 minutes without long-distance). */
export const FULL: Profile = {
  bulkSeconds: 6,
  bulkWarmupSeconds: 1,
  aggregateStreams: 64,
  latencyMs: 5_000,
  latencyWarmupMs: 500,
  connRateMs: 5_000,
  idleStreams: 10_000,
  slowReaderMs: 5_000,
  longBulkSeconds: 10,
  longWarmupSeconds: 3,
  rounds: 3,
};

/** `--quick`: the CI regression guard; the whole run must stay under 2 minutes, so every phase is short. */
export const QUICK: Profile = {
  bulkSeconds: 2,
  bulkWarmupSeconds: 1,
  aggregateStreams: 16,
  latencyMs: 1_000,
  latencyWarmupMs: 200,
  connRateMs: 1_000,
  idleStreams: 1_000,
  slowReaderMs: 1_500,
  longBulkSeconds: 2,
  longWarmupSeconds: 1,
  rounds: 1,
};

export function profile(quick: boolean): Profile {
  return quick ? QUICK : FULL;
}

/** Request and response size of the latency scenarios (1 KiB, BENCHMARKS.md "Targets"). */
export const REQUEST_BYTES = 1024;

/** Concurrency levels of the latency scenarios (1 and 50, BENCHMARKS.md "Targets"). */
export const LATENCY_CONCURRENCY = [1, 50] as const;

/** Parallel open/first-byte/close loops: enough to keep a relay busy without exhausting ephemeral ports. */
export const CONN_RATE_LOOPS = 8;

/** A failed-stream share above this makes a new-streams rate a failure rather than a number. */
export const MAX_CONN_ERROR_SHARE = 0.01;

/** Idle streams opened at once while building up the idle set: stays below every relay's listen backlog (ssh: 128). */
export const IDLE_OPEN_PARALLEL = 64;

/** The slow reader's pace: 1 MiB/s, far below any relay's throughput, so the writer is always ahead. */
export const SLOW_READER_BYTES_PER_SECOND = 1 << 20;
/** A first slow reader, not measured, before the measured one (memory.ts says why). */
export const SLOW_READER_WARMUP_MS = 1_000;

/** Memory sampling period while a scenario runs (peak RSS); /proc reads are cheap. */
export const RSS_SAMPLE_MS = 100;

/** Settling time before reading RSS after streams open or close: lets allocators and GC catch up. */
export const RSS_SETTLE_MS = 1_000;

/** Sink report period of the harness's own bulk sender (one 16-byte report per period). */
export const SINK_REPORT_MS = 100;

/** Chunk written by the harness's own senders: large enough that syscalls are not the bottleneck. */
export const SEND_CHUNK_BYTES = 256 * 1024;

/** Deadlines of each start-up step; a step that misses its deadline skips that path with a reason. */
export const DEADLINES = {
  /** sshd, socat, iperf3 and the target server listen within milliseconds; 15 s covers a loaded CI machine. */
  listenMs: 15_000,
  /** The reference cloud writes cloud.json after generating its CA. */
  cloudMs: 30_000,
  /** `connector enroll` and `bun build.ts --host`. */
  enrollMs: 30_000,
  buildMs: 120_000,
  /** All tunnels up after `connector run` starts. */
  tunnelsMs: 30_000,
  /** Extra time a load-generator run may take beyond its own duration before it is killed. */
  loadgenSlackMs: 30_000,
  /** Opening the idle streams (10,000 through ssh takes a few seconds). */
  idleOpenMs: 120_000,
  /** SIGTERM to SIGKILL when stopping a process. */
  stopMs: 3_000,
} as const;

/** Guard: a ratio counts as a gross regression only when it is worse than the recorded one by this factor. */
export const GUARD_FACTOR = 2;

/**
 * Guard: the tolerance of the cost rows (CPU per GiB, per 10,000 new streams: connector ÷ sshd and whole
 * path ÷ whole path). CPU per unit of work moves less with load than throughput does (a process that is
 * preempted spends no CPU meanwhile), but a 2 s quick window holds only ~100–200 clock ticks per process
 * and the relays' batching changes with load. Measured on a quiet machine (2026-12-03, four full and
 * four quick runs): about ±15% (connector ÷ sshd per GiB, one stream user→app 0.93–1.03×, 16 streams
 * 1.21–1.49×), so 2× as for the throughput rows: a change that doubles the connector's CPU per byte fails,
 * noise does not.
 */
export const GUARD_COST_FACTOR = 2;

/**
 * Guard: quick runs at most (the first, plus confirmations when it finds a suspect). A ratio fails only if
 * it is out of tolerance in every run: on a shared 2-core machine one quick run can halve a throughput
 * ratio by itself (measured: connector ÷ ssh -L app→user 1.70 in one run, 0.77 in the next).
 */
export const GUARD_RUNS = 3;

/** Namespace one-way delays on loopback: each packet crosses lo once per direction, so RTT = 2 × delay. */
export const LONG_DISTANCE_DELAYS_MS = [10, 40] as const;

/**
 * Rows the guard does not judge (the full run still reports them), because a 1-second quick run on a
 * shared 2-core machine swings them by more than the guard's factor with nothing changed:
 * - tail latency: ssh -L's p99 is bimodal (~0.2 ms or a 40 ms delayed-ACK stall);
 * - one slow stream's RSS growth: a peak of garbage-collected memory; ssh -L's own growth was 2.2 MiB in
 *   one full run and 6.0 MiB in another (the peak RSS row, which includes it, is judged);
 * - latency under a bulk stream: direct's value is 26–60 µs depending on CPU placement.
 */
export const GUARD_EXCLUDE = /\bp99\b|RSS growth|under a bulk stream/;

/**
 * Rows the guard judges against direct only: ssh -L's own request/response latency is bimodal even at
 * p50 (0.15 ms, or 40 ms when Nagle and a delayed ACK meet: 1.6 ms and 42 ms p50 at 50 concurrent in two
 * quick runs of the same code), so a ratio to it recorded on a good run fails every run after a bad one.
 * It matches the request cost rows too ("CPU s per 10,000 requests, 1 KiB request/response, …"): their
 * CPU is spent over those same stalls, and with no direct value they are not recorded at all.
 */
export const GUARD_VS_SSH_EXCLUDE = /request\/response|requests per second/;
