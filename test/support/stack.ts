/**
 * The usual end-to-end setup in one place: an echo app, the reference cloud (CLI subprocess) serving
 * it, and compiled connector daemons enrolled with the cloud's key, each waited on until all its
 * tunnels are up. `stop()` tears everything down in reverse order.
 */
import { startCloud, type CloudProcess } from "./cloud-process.ts";
import { allTunnelsUp, startDaemon, type DaemonOptions, type DaemonProcess } from "./daemon-process.ts";
import { startEchoServer, type EchoServer } from "./apps.ts";

export interface Stack {
  readonly echo: EchoServer;
  readonly cloud: CloudProcess;
  readonly daemons: DaemonProcess[];
  /** Where users of the echo app connect. */
  readonly echoListen: string;
  stop(): Promise<void>;
  /** The daemons' and the cloud's log tails, for a failing assertion's message. */
  logs(chars?: number): string;
}

export interface StackOptions {
  readonly gateways?: number;
  /** More `NAME=HOST:PORT` apps besides `echo`. */
  readonly extraApps?: readonly string[];
  /** More app names served by the same echo server (a second app to change or delete in a test). */
  readonly echoAliases?: readonly string[];
  /** Lifetime of the client certificates the cloud issues (default: the cloud's). */
  readonly certTtlSeconds?: number;
  /** Lifetime of the access tokens the cloud issues (default: the cloud's). */
  readonly tokenTtlSeconds?: number;
  /** One entry per connector daemon (its key comes from the cloud). */
  readonly daemons?: readonly Omit<DaemonOptions, "key">[];
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const echo = startEchoServer();
  const cloud = await startCloud({
    gateways: options.gateways ?? 1,
    apps: [
      `echo=${echo.address}`,
      ...(options.echoAliases ?? []).map((name) => `${name}=${echo.address}`),
      ...(options.extraApps ?? []),
    ],
    ...(options.certTtlSeconds === undefined ? {} : { certTtlSeconds: options.certTtlSeconds }),
    ...(options.tokenTtlSeconds === undefined ? {} : { tokenTtlSeconds: options.tokenTtlSeconds }),
  });
  const specs = options.daemons ?? [{}];
  const daemons = await Promise.all(specs.map((spec) => startDaemon({ ...spec, key: cloud.provisioningKey })));
  const stop = async () => {
    await Promise.all(daemons.map((d) => d.stop(5_000)));
    await cloud.stop();
    echo.stop();
  };
  try {
    await Promise.all(daemons.map((d, i) => d.waitFor("connected", allTunnelsUp(specs[i]!.tunnels ?? 2))));
  } catch (err) {
    await stop();
    throw err;
  }
  const logs = (chars = 3000) =>
    [
      ...daemons.map((d, i) => `--- connector ${i} (tail) ---\n${d.output().slice(-chars)}`),
      `--- cloud (tail) ---\n${cloud.output().slice(-chars)}`,
    ].join("\n");
  return { echo, cloud, daemons, echoListen: cloud.apps.echo!.listen!, stop, logs };
}
