/** The `connector` subcommands, in the order the help lists them. */
import type { CommandEntry } from "./command.ts";

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "preflight",
    summary: "Check that this host can run the connector",
    load: () => import("./preflight.ts").then((m) => m.default),
  },
  {
    name: "enroll",
    summary: "Enroll this connector with a provisioning key (generates its key pair here)",
    load: () => import("./enroll.ts").then((m) => m.default),
  },
  {
    name: "run",
    summary: "Run the connector: keep tunnels to the cloud and relay streams to private apps",
    load: () => import("./run.ts").then((m) => m.default),
  },
  {
    name: "status",
    summary: "Show what the connector is doing, with or without a running daemon",
    load: () => import("./status.ts").then((m) => m.default),
  },
  {
    name: "upgrade",
    summary: "Take the channel's signed release now, check what the daemon would do, or roll back",
    load: () => import("./upgrade.ts").then((m) => m.default),
  },
];
