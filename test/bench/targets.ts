/**
 * Starts the target apps of one host: the harness's own server (target.ts, all modes on one port) and,
 * when installed, `iperf3 -s` for the bulk scenarios. Both in their own processes, on 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { DEADLINES } from "./config.ts";
import type { Targets } from "./paths/path.ts";
import { BenchError, waitFor } from "./procs.ts";
import type { Rig } from "./rig.ts";

const Listening = v.object({ port: v.number() });

export async function startTargets(rig: Rig, useIperf: boolean): Promise<Targets> {
  const app = rig.spawn("target", [process.execPath, join(import.meta.dir, "target.ts")]);
  const appPort = await waitFor(
    "the target app to listen",
    () => {
      const text = readFileSync(`${app.logBase}.out`, "utf8");
      // only a complete first line is parsed: the write may be seen half done
      if (text.includes("\n")) return v.parse(Listening, JSON.parse(text.slice(0, text.indexOf("\n")))).port;
      if (app.proc.exitCode !== null)
        throw new BenchError(`target app exited (${app.proc.exitCode}): ${rig.procs.tail(app)}`);
      return undefined;
    },
    DEADLINES.listenMs,
  );
  if (!useIperf || !rig.tools.iperf3) return { appPort, iperfPort: undefined };
  const iperfPort = rig.pickPort();
  const iperf = rig.spawn("iperf3-server", [
    rig.tools.iperf3,
    "-s",
    "--forceflush",
    "-B",
    "127.0.0.1",
    "-p",
    String(iperfPort),
  ]);
  await rig.waitForLog(iperf, /Server listening on/, DEADLINES.listenMs);
  return { appPort, iperfPort };
}
