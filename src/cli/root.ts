/** The `connector` command and its subcommands. */
import { defineCommand } from "citty";
import { buildInfo } from "../version.ts";

export const rootCommand = defineCommand({
  meta: {
    name: "connector",
    version: buildInfo.version,
    description: "ZTNA app connector: dials out to the cloud and relays user traffic to private applications",
  },
  subCommands: {
    preflight: () => import("./preflight.ts").then((m) => m.default),
    enroll: () => import("./enroll.ts").then((m) => m.default),
    run: () => import("./run.ts").then((m) => m.default),
    status: () => import("./status.ts").then((m) => m.default),
    upgrade: () => import("./upgrade.ts").then((m) => m.default),
  },
});
