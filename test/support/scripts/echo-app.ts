/**
 * The echo app and its user as commands, for tests that run them where the test runner cannot reach
 * (inside a container with a private network):
 *   bun echo-app.ts serve PORT_FILE        echo server on 127.0.0.1 port 0; writes the port to PORT_FILE
 *   bun echo-app.ts transfer HOST:PORT N   sends N pseudo-random bytes, prints the TransferResult as JSON
 */
import { renameSync, writeFileSync } from "node:fs";
import { echoTransfer, startEchoServer } from "../apps.ts";

const [mode, arg, bytes] = process.argv.slice(2);
if (mode === "serve" && arg) {
  const echo = startEchoServer();
  // Atomic: a reader never sees an empty or partial port.
  writeFileSync(`${arg}.tmp`, `${echo.port}\n`);
  renameSync(`${arg}.tmp`, arg);
} else if (mode === "transfer" && arg && bytes) {
  const result = await echoTransfer(arg, Number(bytes), { timeoutMs: 30_000 });
  console.log(JSON.stringify(result));
} else {
  console.error("usage: echo-app.ts serve PORT_FILE | transfer HOST:PORT BYTES");
  process.exit(2);
}
