/**
 * One iperf3 client run through a path (`-c`, or `-R` for the app→user direction), parsed from its JSON
 * output: the receiver's bits per second, omitted warm-up seconds excluded (iperf3 does that itself).
 *
 * Its cost (cost.ts) is read here, around an interval the harness times itself: iperf3 reports no clock
 * the harness could align with, so the bytes of the cost interval are counted here too, over exactly the
 * same interval — the iperf3 client's own socket bytes (`wchar` when it sends, `rchar` when it receives,
 * from /proc/PID/io; iperf3 moves its data with write/read, which those count). The interval starts when
 * the client's data is flowing (its counter past 1 MiB) plus the omitted warm-up, and ends IPERF_END_MARGIN_MS
 * before the test's own end, so it never covers set-up, warm-up or teardown.
 */
import { readFileSync } from "node:fs";
import * as v from "valibot";
import { DEADLINES } from "./config.ts";
import { type CostSpent, type CostTargets, costBetween, parseIo, readCost } from "./cost.ts";
import { BenchError, type Child } from "./procs.ts";
import type { Rig } from "./rig.ts";

/** Bytes the client must have moved before its data counts as flowing (the control exchange is < 1 KiB). */
const IPERF_FLOWING_BYTES = 1 << 20;
/** How early before the test's end the cost interval closes: the client must still be sending then. */
export const IPERF_END_MARGIN_MS = 100;
/** Polling period of the client's byte counter while waiting for its data to flow. */
const IPERF_POLL_MS = 5;

const IperfJson = v.object({
  error: v.optional(v.string()),
  end: v.optional(v.object({ sum_received: v.optional(v.object({ bits_per_second: v.number() })) })),
});

/** The receiver's rate in bits/s from iperf3 -J output; throws with iperf3's own error when there is one. */
export function parseIperf(text: string): number {
  const parsed = v.parse(IperfJson, JSON.parse(text));
  if (parsed.error) throw new BenchError(`iperf3: ${parsed.error}`);
  const bps = parsed.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new BenchError("iperf3 reported no received total");
  return bps;
}

export interface IperfRun {
  port: number;
  seconds: number;
  omitSeconds: number;
  streams: number;
  reverse: boolean;
}

/**
 * iperf3 -s serves one test at a time and answers "busy" until the previous test's streams are closed —
 * which, through a relay, can lag the client's exit. Retried this many times, this far apart.
 */
const BUSY_RETRIES = 10;
const BUSY_RETRY_MS = 1_000;
/**
 * The busy answer is one byte followed by a close; the server closes with the client's greeting still
 * unread, so its kernel sends RST, and through a relay the RST can overtake the byte (a reset stream
 * drops what is queued). The client then says "control socket has closed unexpectedly" instead. Seen
 * once in CI, at once after the socat column's 16-stream test. Only such a failure within this long
 * of the start counts as busy: later, it is a real failure of the path.
 */
const BUSY_LOOKALIKE_MS = 1_000;

function isBusy(err: unknown, elapsedMs: number): boolean {
  if (!(err instanceof BenchError)) return false;
  return (
    /busy/i.test(err.message) ||
    (/control socket has closed unexpectedly/.test(err.message) && elapsedMs < BUSY_LOOKALIKE_MS)
  );
}

/** The bulk rate, and the cost of the interval the harness timed (or why there is none). */
export interface IperfResult {
  bitsPerSecond: number;
  spent: CostSpent | undefined;
  costWhy?: string;
}

/** The client's data bytes so far: what it wrote (upload) or read (download, -R); undefined once it is gone. */
function clientBytes(pid: number, reverse: boolean): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/io`, "utf8");
  } catch {
    return undefined;
  }
  const io = parseIo(text);
  return io === undefined ? undefined : reverse ? io.rchar : io.wchar;
}

/** Reads the cost interval of one iperf3 run (see the file's comment); throws with the reason it could not. */
async function sampleCost(child: Child, run: IperfRun, targets: CostTargets): Promise<CostSpent> {
  const alive = () => child.proc.exitCode === null && child.proc.signalCode === null;
  const base = clientBytes(child.pid, run.reverse);
  if (base === undefined) throw new BenchError("cannot read the iperf3 client's /proc/PID/io");
  const deadline = performance.now() + DEADLINES.loadgenSlackMs;
  for (;;) {
    const now = clientBytes(child.pid, run.reverse);
    if (now === undefined || !alive()) throw new BenchError("iperf3 ended before its data flowed");
    if (now - base >= IPERF_FLOWING_BYTES) break;
    if (performance.now() > deadline) throw new BenchError("iperf3's data did not start flowing");
    await Bun.sleep(IPERF_POLL_MS);
  }
  const flowing = performance.now();
  await Bun.sleep(run.omitSeconds * 1000);
  const before = readCost(targets);
  const bytesBefore = clientBytes(child.pid, run.reverse);
  const startedAt = performance.now();
  await Bun.sleep(Math.max(0, flowing + (run.omitSeconds + run.seconds) * 1000 - IPERF_END_MARGIN_MS - startedAt));
  const bytesAfter = clientBytes(child.pid, run.reverse);
  const after = readCost(targets);
  if (!alive() || bytesBefore === undefined || bytesAfter === undefined)
    throw new BenchError("iperf3 ended before the cost interval closed");
  return costBetween(before, after, bytesAfter - bytesBefore, performance.now() - startedAt);
}

async function runOnce(rig: Rig, run: IperfRun, cost?: CostTargets): Promise<IperfResult> {
  const cmd = [
    rig.tools.iperf3!,
    "-c",
    "127.0.0.1",
    "-p",
    String(run.port),
    "-t",
    String(run.seconds),
    "-O",
    String(run.omitSeconds),
  ];
  cmd.push("-P", String(run.streams), "--connect-timeout", "10000", "-J");
  if (run.reverse) cmd.push("-R");
  const timeout = (run.seconds + run.omitSeconds) * 1000 + DEADLINES.loadgenSlackMs;
  const name = `iperf3-${run.reverse ? "down" : "up"}-${run.streams}`;
  const child = rig.spawn(name, cmd);
  const sampling = cost
    ? sampleCost(child, run, cost).then(
        (spent) => ({ spent }),
        (err: unknown) => ({ why: err instanceof Error ? err.message : String(err) }),
      )
    : Promise.resolve({ why: "no process to read" });
  const done = await Promise.race([child.proc.exited.then(() => true), Bun.sleep(timeout).then(() => false)]);
  if (!done) {
    await rig.procs.stop(child);
    throw new BenchError(`${name} did not finish within ${timeout} ms: ${rig.procs.tail(child)}`);
  }
  const text = readFileSync(`${child.logBase}.out`, "utf8");
  if (!text.trim()) throw new BenchError(`iperf3 printed nothing: ${rig.procs.tail(child)}`);
  const bitsPerSecond = parseIperf(text);
  const sampled = await sampling;
  return "spent" in sampled
    ? { bitsPerSecond, spent: sampled.spent }
    : { bitsPerSecond, spent: undefined, costWhy: sampled.why };
}

/**
 * The receiver's bits/s of one iperf3 run through `run.port`, retrying while the server is still busy,
 * and the cost of `cost`'s processes over the interval described above.
 */
export async function runIperf(rig: Rig, run: IperfRun, cost?: CostTargets): Promise<IperfResult> {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      return await runOnce(rig, run, cost);
    } catch (err) {
      if (attempt >= BUSY_RETRIES || !isBusy(err, performance.now() - started)) throw err;
      await Bun.sleep(BUSY_RETRY_MS);
    }
  }
}
