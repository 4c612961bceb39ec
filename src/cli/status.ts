/** `connector status`: what the connector is doing, with or without a running daemon. */
import { collectStatus } from "../status/collect.ts";
import { renderStatus } from "../status/render.ts";
import { STATUS_EXIT, type StatusSnapshot } from "../status/schema.ts";
import type { Command } from "./command.ts";
import { cliContext } from "./context.ts";
import { printOut } from "./io.ts";
import { GLOBAL_OPTIONS } from "./options.ts";

/** `--watch` refresh period: often enough to follow a reconnect, rare enough to cost nothing. */
const WATCH_INTERVAL_MS = 2_000;

/** "0 connected, 40 degraded, …" from the table scripts branch on, so the help cannot drift from it. */
export function statusExitText(): string {
  const codes = Object.entries(STATUS_EXIT).map(([state, code]) => `${code} ${state.replaceAll("-", " ")}`);
  return `Exit codes: ${codes.join(", ")}; 1 unexpected failure, 2 usage error.`;
}

const command: Command = {
  name: "status",
  about: [statusExitText()],
  options: [
    ...GLOBAL_OPTIONS,
    { name: "json", kind: "boolean", description: "Print the status as JSON" },
    { name: "watch", kind: "boolean", description: "Refresh every 2 s until interrupted" },
  ],
  async run(args, io) {
    const { settings } = cliContext(args, io);
    const json = args.flag("json");
    const watch = args.flag("watch");
    const show = (snapshot: StatusSnapshot) =>
      printOut(io, json ? JSON.stringify(snapshot, null, watch ? 0 : 2) : renderStatus(snapshot));
    let snapshot = await collectStatus(settings.stateDir);
    if (!watch) {
      show(snapshot);
      return STATUS_EXIT[snapshot.state];
    }
    let stop = false;
    const unlisten = io.onInterrupt(() => (stop = true));
    try {
      while (!stop) {
        if (!json && io.stdoutIsTTY) io.stdout("\x1b[2J\x1b[H");
        show(snapshot);
        await Bun.sleep(WATCH_INTERVAL_MS);
        snapshot = await collectStatus(settings.stateDir);
      }
    } finally {
      unlisten();
    }
    return STATUS_EXIT[snapshot.state];
  },
};
export default command;
