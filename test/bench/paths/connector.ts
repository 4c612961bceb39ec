/**
 * The connector path, through the contracts only: the reference cloud (`bun test/cloud/main.ts`) with one
 * app per target, the compiled connector enrolled into a scratch state dir and run, then a user stream to
 * the app's gateway listener. Until the dataplane lands any step may be missing; each missing step becomes
 * a skip reason naming it. The provisioning key travels in the environment (never argv, never printed).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { DEADLINES } from "../config.ts";
import { BenchError, waitFor } from "../procs.ts";
import type { Rig } from "../rig.ts";
import { Skip } from "../scenario.ts";
import type { ReadyPath, Targets } from "./path.ts";

/** The part of cloud.json the harness reads (its contract: test/cloud/README.md). */
export const CloudJsonSchema = v.object({
  provisioningKey: v.string(),
  apps: v.record(v.string(), v.object({ listen: v.nullable(v.string()) })),
  /** One process per gateway; `pid` is absent while a gateway is stopped (never in the benchmark). */
  gateways: v.optional(v.array(v.object({ pid: v.optional(v.nullable(v.number())) })), []),
});

/**
 * Why the connector path's syscalls are not counted: Bun's sockets call send/recv, which /proc/PID/io
 * does not count (syscr/syscw count read/write and their vector forms only; checked: 1,000 socket
 * writes by a Bun process moved its syscw by 1). The connector and the gateways are both Bun.
 */
export const BUN_SYSCALLS_UNCOUNTED =
  "not countable from /proc/PID/io: Bun's sockets use send/recv, which syscr/syscw do not count";

/**
 * One gateway and one tunnel: the shape of `ssh -L` (every channel on one TCP connection), so the rows
 * compare like with like, and the fairness row always measures what it is about. With two tunnels the
 * kernel's SO_REUSEPORT spread the bulk connection and the probe over the two gateways half of the
 * time, so "1 KiB under a bulk stream" read 55 ms in one run (same tunnel: the probe queued behind the
 * bulk stream's window) and 0.3 ms in the next (different tunnels: nothing shared).
 */
const GATEWAYS = 1;

export const APP_NAMES = { app: "bench", iperf: "iperf" } as const;

/**
 * The port of a "127.0.0.1:PORT" listener (the cloud.json contract). Anything else is refused: the load
 * generator only ever dials 127.0.0.1, and the benchmark never touches an address outside loopback.
 */
export function loopbackPort(listen: string): number {
  const match = /^127\.0\.0\.1:(\d{1,5})$/.exec(listen);
  const port = Number(match?.[1]);
  if (!match || !(port > 0 && port < 65_536))
    throw new BenchError(`gateway listener ${JSON.stringify(listen)} is not 127.0.0.1:PORT`);
  return port;
}

export function connectorBinary(root: string): string {
  return join(root, "dist", "connector");
}

/** How the connector column is started: the cloud's main script and the connector's command line. */
export interface ConnectorSetup {
  cloudMain: string;
  command: string[];
  /** True when the real binary is used (dist/connector), so `bun build.ts --host` makes sense. */
  real: boolean;
}

/**
 * The real setup (test/cloud/main.ts, dist/connector), or stand-ins given on the command line to
 * validate the harness (a `.ts` stand-in is run with this Bun).
 */
export function connectorSetup(root: string, cloudMain?: string, connectorBin?: string): ConnectorSetup {
  const command = connectorBin
    ? connectorBin.endsWith(".ts")
      ? [process.execPath, connectorBin]
      : [connectorBin]
    : [connectorBinary(root)];
  return { cloudMain: cloudMain ?? join(root, "test", "cloud", "main.ts"), command, real: !connectorBin };
}

/** Why the connector path cannot even be tried, or undefined. */
export function connectorMissing(setup: ConnectorSetup): string | undefined {
  if (!existsSync(setup.cloudMain)) return `reference cloud not present (${setup.cloudMain} missing)`;
  const program = setup.command[setup.command.length - 1]!;
  if (!existsSync(program)) return `${program} not built (bun build.ts --host)`;
  return undefined;
}

async function startCloud(
  rig: Rig,
  targets: Targets,
  cloudMain: string,
): Promise<v.InferOutput<typeof CloudJsonSchema>> {
  const dir = join(rig.dir, "cloud");
  const apps = ["--app", `${APP_NAMES.app}=127.0.0.1:${targets.appPort}`];
  if (targets.iperfPort !== undefined) apps.push("--app", `${APP_NAMES.iperf}=127.0.0.1:${targets.iperfPort}`);
  const cloud = rig.spawn("cloud", [
    process.execPath,
    cloudMain,
    "--dir",
    dir,
    "--gateways",
    String(GATEWAYS),
    ...apps,
  ]);
  const file = join(dir, "cloud.json");
  return waitFor(
    "the reference cloud to write cloud.json",
    () => {
      if (existsSync(file)) {
        try {
          const parsed = v.safeParse(CloudJsonSchema, JSON.parse(readFileSync(file, "utf8")));
          if (parsed.success) return parsed.output;
        } catch {
          // written atomically by contract; a torn read is retried until the deadline
        }
      }
      if (cloud.proc.exitCode !== null)
        throw new BenchError(`reference cloud exited (${cloud.proc.exitCode}): ${rig.procs.tail(cloud)}`);
      return undefined;
    },
    DEADLINES.cloudMs,
    100,
  );
}

function listenerPort(cloud: v.InferOutput<typeof CloudJsonSchema>, app: string): number | undefined {
  const listen = cloud.apps[app]?.listen;
  return listen ? loopbackPort(listen) : undefined;
}

/**
 * Starts cloud + connector and returns the path, or throws: a Skip when the cloud has no gateway listener
 * yet (the dataplane has not landed — not a failure), a BenchError naming the step that failed otherwise.
 */
export async function connectorPath(rig: Rig, targets: Targets, setup: ConnectorSetup): Promise<ReadyPath> {
  const cloud = await startCloud(rig, targets, setup.cloudMain);
  rig.procs.addSecret(cloud.provisioningKey);
  const appPort = listenerPort(cloud, APP_NAMES.app);
  if (appPort === undefined)
    throw new Skip(
      `reference cloud has no user listener for the app yet (apps.${APP_NAMES.app}.listen is null: gateways not implemented)`,
    );
  const iperfPort = targets.iperfPort === undefined ? undefined : listenerPort(cloud, APP_NAMES.iperf);

  const binary = setup.command;
  const stateDir = join(rig.dir, "connector-state");
  const env = { CONNECTOR_PROVISIONING_KEY: cloud.provisioningKey };
  const enroll = await rig.runToEnd(
    "connector-enroll",
    [...binary, "enroll", "--state-dir", stateDir, "--log-format", "json"],
    DEADLINES.enrollMs,
    env,
  );
  if (enroll.code !== 0)
    throw new BenchError(`connector enroll exited ${enroll.code}: ${rig.procs.tail(enroll.child)}`);

  const run = rig.spawn("connector-run", [
    ...binary,
    "run",
    "--state-dir",
    stateDir,
    "--log-format",
    "json",
    "--tunnels",
    String(GATEWAYS),
  ]);
  await waitFor(
    "all tunnels up (connector status --json exits 0)",
    async () => {
      if (run.proc.exitCode !== null)
        throw new BenchError(`connector run exited (${run.proc.exitCode}): ${rig.procs.tail(run)}`);
      const status = await rig.runToEnd(
        "connector-status",
        [...binary, "status", "--state-dir", stateDir, "--json"],
        10_000,
      );
      return status.code === 0 ? true : undefined;
    },
    DEADLINES.tunnelsMs,
    250,
  );
  await rig.probe(appPort, DEADLINES.listenMs);
  const gateways = cloud.gateways.flatMap((g) => (typeof g.pid === "number" ? [g.pid] : []));
  if (gateways.length === 0) throw new BenchError("cloud.json names no gateway process (gateways[].pid)");
  return {
    id: "connector",
    appPort,
    iperfPort,
    measured: { pid: run.pid, tree: false },
    cost: {
      relay: { pids: [run.pid], tree: false },
      // the cloud's gateways: a user stream lands on one of them, so their sum is the path's user side
      rest: { pids: gateways, tree: false },
      syscallsUncounted: BUN_SYSCALLS_UNCOUNTED,
    },
  };
}
