/**
 * A fast user writing into an app that reads 64 KiB/s for 20 s: the connector's memory stays bounded
 * by the stream windows, whatever the speed difference ("Memory per stream is bounded").
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { join } from "node:path";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { roundTrip, startEchoServer, type EchoServer } from "../support/apps.ts";
import { startSinkServer, type SinkServer } from "../support/sink-server.ts";
import { rssBytes } from "../support/proc.ts";

const MiB = 1024 * 1024;
/** The stream's receive window may grow to MAX_WINDOW (16 MiB) on long links; a slow reader never earns growth. */
const WINDOW_BOUND = 16 * MiB;

let echo: EchoServer;
let slowApp: SinkServer;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  echo = startEchoServer();
  slowApp = startSinkServer({ bytesPerSecond: 64 * 1024 });
  cloud = await startCloud({ apps: [`echo=${echo.address}`, `slow=${slowApp.address}`] });
  daemon = await startDaemon({ key: cloud.provisioningKey, tunnels: 1 });
  await daemon.waitFor("connected", allTunnelsUp(1));
}, 120_000);

afterAll(async () => {
  await daemon?.stop(5_000);
  await cloud?.stop();
  echo?.stop();
  slowApp?.stop();
}, 30_000);

test("a fast writer into a 64 KiB/s reader for 20 s grows connector RSS by no more than the windows allow", async () => {
  // Warm the paths (first stream, TLS buffers, JIT) before taking the baseline.
  for (let i = 0; i < 20; i++) await roundTrip(cloud.apps.echo!.listen!, new Uint8Array(64 * 1024));
  const baseline = rssBytes(daemon.proc.pid);
  const writer = Bun.spawn(
    [process.execPath, join(import.meta.dir, "../support/scripts/bulk-sender.ts"), cloud.apps.slow!.listen!, "20"],
    { stdout: "pipe", stderr: "inherit" },
  );
  let peak = baseline;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    peak = Math.max(peak, rssBytes(daemon.proc.pid));
    await Bun.sleep(250);
  }
  writer.kill("SIGKILL");
  const growth = peak - baseline;
  console.log(
    `slow reader: app read ${(slowApp.received() / MiB).toFixed(1)} MiB in 20 s; connector RSS ${(baseline / MiB).toFixed(1)} MiB -> peak ${(peak / MiB).toFixed(1)} MiB (+${(growth / MiB).toFixed(1)} MiB)`,
  );
  // The app really was slow (so the writer was held back by flow control, not by a fast path).
  expect(slowApp.received()).toBeLessThan(4 * MiB);
  expect(growth).toBeLessThanOrEqual(WINDOW_BOUND);
  expect(daemon.proc.exitCode).toBeNull();
}, 60_000);
