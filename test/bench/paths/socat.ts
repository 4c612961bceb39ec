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
  const relays = iperf ? [app.pid, iperf.pid] : [app.pid];
  return {
    id: "socat",
    appPort: app.port,
    iperfPort: iperf?.port,
    measured: { pid: app.pid, tree: true },
    // both listeners and their per-connection children: a scenario uses one of them, the other idles
    cost: { relay: { pids: relays, tree: true }, rest: { pids: [], tree: false } },
  };
}
