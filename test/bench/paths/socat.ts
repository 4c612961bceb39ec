/**
 * The socat baseline: a plain TCP relay, one listener per target (TCP-LISTEN:…,fork,reuseaddr → TCP:target).
 * socat forks a child per connection, so its memory is read over the process tree (see rss.ts).
 */
import { DEADLINES } from "../config.ts";
import type { Rig } from "../rig.ts";
import type { ReadyPath, Targets } from "./path.ts";

/** Listen backlog: socat's default of 5 would refuse bursts of new streams that other relays accept. */
const BACKLOG = 1024;

function relay(rig: Rig, name: string, target: number): { port: number; pid: number } {
  const port = rig.pickPort();
  const child = rig.spawn(name, [
    rig.tools.socat!,
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=${BACKLOG}`,
    `TCP:127.0.0.1:${target}`,
  ]);
  return { port, pid: child.pid };
}

export async function socatPath(rig: Rig, targets: Targets): Promise<ReadyPath> {
  const app = relay(rig, "socat-app", targets.appPort);
  const iperf = targets.iperfPort === undefined ? undefined : relay(rig, "socat-iperf", targets.iperfPort);
  await rig.probe(app.port, DEADLINES.listenMs);
  return { id: "socat", appPort: app.port, iperfPort: iperf?.port, measured: { pid: app.pid, tree: true } };
}
