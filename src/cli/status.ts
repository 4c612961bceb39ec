/** `connector status`: what the connector is doing, with or without a running daemon. */
import { defineCommand } from "citty";
import { collectStatus } from "../status/collect.ts";
import { renderStatus } from "../status/render.ts";
import { STATUS_EXIT, type StatusSnapshot } from "../status/schema.ts";
import { cliContext, printOut } from "./context.ts";
import { globalArgs } from "./global-args.ts";

/** `--watch` refresh period: often enough to follow a reconnect, rare enough to cost nothing. */
const WATCH_INTERVAL_MS = 2_000;

export default defineCommand({
  meta: {
    name: "status",
    description:
      "Show the connector's state; exit 0 connected, 40 degraded, 41 disconnected, 42 not running, 43 not responding, 44 not enrolled, 45 revoked",
  },
  args: {
    ...globalArgs,
    json: { type: "boolean", description: "Print the status as JSON" },
    watch: { type: "boolean", description: "Refresh every 2 s until interrupted" },
  },
  async run({ args }) {
    const { settings } = cliContext(args);
    const show = (snapshot: StatusSnapshot) =>
      printOut(args.json ? JSON.stringify(snapshot, null, args.watch ? 0 : 2) : renderStatus(snapshot));
    let snapshot = await collectStatus(settings.stateDir);
    if (!args.watch) {
      show(snapshot);
      return STATUS_EXIT[snapshot.state];
    }
    let stop = false;
    process.once("SIGINT", () => (stop = true));
    while (!stop) {
      if (!args.json && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
      show(snapshot);
      await Bun.sleep(WATCH_INTERVAL_MS);
      snapshot = await collectStatus(settings.stateDir);
    }
    return STATUS_EXIT[snapshot.state];
  },
});
