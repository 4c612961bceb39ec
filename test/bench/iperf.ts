/**
 * One iperf3 client run through a path (`-c`, or `-R` for the app→user direction), parsed from its JSON
 * output: the receiver's bits per second, omitted warm-up seconds excluded (iperf3 does that itself).
 */
import { readFileSync } from "node:fs";
import * as v from "valibot";
import { DEADLINES } from "./config.ts";
import { BenchError } from "./procs.ts";
import type { Rig } from "./rig.ts";

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

async function runOnce(rig: Rig, run: IperfRun): Promise<number> {
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
  const { child } = await rig.runToEnd(`iperf3-${run.reverse ? "down" : "up"}-${run.streams}`, cmd, timeout);
  const text = readFileSync(`${child.logBase}.out`, "utf8");
  if (!text.trim()) throw new BenchError(`iperf3 printed nothing: ${rig.procs.tail(child)}`);
  return parseIperf(text);
}

/** The receiver's bits/s of one iperf3 run through `run.port`, retrying while the server is still busy. */
export async function runIperf(rig: Rig, run: IperfRun): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      return await runOnce(rig, run);
    } catch (err) {
      if (attempt >= BUSY_RETRIES || !isBusy(err, performance.now() - started)) throw err;
      await Bun.sleep(BUSY_RETRY_MS);
    }
  }
}
