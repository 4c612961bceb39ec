/**
 * Run under a low fd limit (`prlimit --nofile=N:N`): uses up every fd, then dials a listening port and
 * prints, as JSON, how Bun reported the failure, what the dialer answered and what the fd probe said.
 * Argument: the port of a listening server on 127.0.0.1.
 */
import { openSync } from "node:fs";
import { dialDestination } from "../../../src/dataplane/dial.ts";
import { DialError } from "../../../src/dataplane/errors.ts";
import { outOfFds } from "../../../src/host/rlimit.ts";
import { tcpProbe } from "../../../src/apps/health.ts";

const port = Number(process.argv[2]);
const held: number[] = [];
for (;;) {
  try {
    held.push(openSync("/dev/null", "r"));
  } catch {
    break;
  }
}
let bunError: string | undefined;
try {
  await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
} catch (err) {
  bunError = (err as { code?: string }).code ?? String(err);
}
const attempts: [string, boolean][] = [];
let failure: string | undefined;
try {
  await dialDestination("127.0.0.1", port, {}, { data: undefined, onAttempt: (a, ok) => void attempts.push([a, ok]) });
} catch (err) {
  failure = err instanceof DialError ? err.failure : String(err);
}
// The active health check: out of fds it must not answer "unhealthy" (false); it fails the round instead.
const healthCheck = await tcpProbe("127.0.0.1", port).then(
  (healthy) => (healthy ? "healthy" : "unhealthy"),
  (err: unknown) => (err instanceof DialError ? `threw ${err.failure}` : `threw ${String(err)}`),
);
console.log(JSON.stringify({ held: held.length, bunError, failure, attempts, healthCheck, outOfFds: outOfFds() }));
process.exit(0);
