/**
 * Entry point of a gateway process, spawned by the cloud process (fleet.ts) with a Bun IPC channel.
 * Waits for `init`, starts the gateway and answers `ready` with its tunnel port (or `failed` and exit
 * 1). Exits 0 after a graceful `stop` (or SIGTERM), and at once when the IPC channel goes away: a
 * gateway never outlives its cloud (a cloud killed with SIGKILL leaves no gateway holding ports).
 * SIGINT is ignored: a terminal's Ctrl-C reaches the cloud too, and the cloud stops its gateways.
 */
import * as v from "valibot";
import { createLogger, type Logger } from "../../../src/log.ts";
import { DEFAULT_STOP_GRACE_MS } from "./config.ts";
import { Gateway } from "./gateway.ts";
import { ParentMessageSchema, type ChildMessage, type InitMessage } from "./messages.ts";

function send(message: ChildMessage): void {
  try {
    process.send?.(message);
  } catch {
    // The cloud is gone; the `disconnect` handler ends this process.
  }
}

let gateway: Gateway | undefined;
let log: Logger = createLogger({ level: "info", format: "pretty" });

function start(init: InitMessage): void {
  log = createLogger({ level: init.logLevel, format: "pretty" }).withTag(init.id);
  try {
    gateway = new Gateway(init, { send, log });
    send({ type: "ready", tunnelPort: gateway.start() });
  } catch (err) {
    send({ type: "failed", message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
}

process.on("message", (raw: unknown) => {
  const parsed = v.safeParse(ParentMessageSchema, raw);
  if (!parsed.success) {
    log.warn(`ignoring a malformed message from the cloud: ${v.summarize(parsed.issues)}`);
    return;
  }
  const message = parsed.output;
  if (message.type === "init") {
    if (!gateway) start(message);
  } else if (message.type === "stop") {
    const stopping = gateway?.stop(message.graceMs) ?? Promise.resolve();
    void stopping.finally(() => process.exit(0));
  } else {
    gateway?.handle(message);
  }
});

process.on("disconnect", () => process.exit(0));
// Ctrl-C in a terminal reaches the whole process group: the cloud stops its gateways itself.
process.on("SIGINT", () => {});
process.on(
  "SIGTERM",
  () => void (gateway?.stop(DEFAULT_STOP_GRACE_MS) ?? Promise.resolve()).finally(() => process.exit(0)),
);

if (!process.send) {
  console.error("test/cloud/gateway/process.ts is started by the reference cloud (test/cloud/main.ts), not by hand");
  process.exit(2);
}
