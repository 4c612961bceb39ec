/**
 * A stand-in for a hand-over successor (test/daemon/handover.test.ts): started by spawnSuccessor with
 * fd 3 as its readiness pipe, it behaves as SUCCESSOR_MODE says. `ready` goes through the real new-side
 * code (takeHandoverRequest, signalReady) and exits 3 when the request was not what the test expects.
 */
import { writeFileSync, writeSync } from "node:fs";
import { signalReady, takeHandoverRequest } from "../../src/daemon/handover-child.ts";

const mode = process.env.SUCCESSOR_MODE;
const keepAlive = setInterval(() => {}, 1_000);
// "stubborn" ignores SIGTERM (only SIGKILL ends it); the others exit 0 on it.
// "count" exits 300 ms after the first SIGTERM with the number of SIGTERMs it got as its code.
let terms = 0;
process.on("SIGTERM", () => {
  if (mode === "stubborn") return;
  if (mode === "count") {
    if (terms++ === 0) setTimeout(() => process.exit(terms), 300);
    return;
  }
  clearInterval(keepAlive);
  process.exit(0);
});
// The handler is in place: a test may signal now.
if (process.env.ARMED_FILE) writeFileSync(process.env.ARMED_FILE, "armed");

if (mode === "ready") {
  const { role, problem } = takeHandoverRequest({ ...process.env });
  if (
    !role ||
    process.env.CONNECTOR_HANDOVER !== undefined ||
    role.previousTunnels !== Number(process.env.EXPECT_TUNNELS)
  ) {
    process.stderr.write(`bad hand-over request: ${problem ?? JSON.stringify(role)}\n`);
    process.exit(3);
  }
  const problemWriting = signalReady(role.readinessFd);
  if (problemWriting) process.exit(4);
} else if (mode === "exit") {
  process.exit(7);
} else if (mode === "garbage") {
  writeSync(3, "x".repeat(100));
}
// "silent", "stubborn": never say anything.
