/** `connector status`: what the connector is doing (§4), with or without a running daemon. */
import { defineCommand } from "citty";
import { collectStatus } from "../status/collect.ts";
import { renderStatus } from "../status/render.ts";
import { STATUS_EXIT } from "../status/schema.ts";
import { cliContext, printOut } from "./context.ts";
import { globalArgs } from "./global-args.ts";

export default defineCommand({
  meta: { name: "status", description: "Show the connector's state; exit 0 connected, 1 degraded, 2 not running, 3 not enrolled, 4 revoked" },
  args: {
    ...globalArgs,
    json: { type: "boolean", description: "Print the status as JSON" },
  },
  async run({ args }) {
    const { settings } = cliContext(args);
    const snapshot = await collectStatus(settings.stateDir);
    printOut(args.json ? JSON.stringify(snapshot, null, 2) : renderStatus(snapshot));
    return STATUS_EXIT[snapshot.state];
  },
});
