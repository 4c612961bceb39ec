/**
 * Users of a private app, for tests that must prove "no user connection failed": runs where the
 * gateway's user port is reachable (inside a test container too) and, until stdin closes or SIGTERM,
 *   - opens a new connection every INTERVAL ms: sends a line, expects it echoed, closes (a failure is a
 *     refused/reset connection, a wrong echo, or none within 60 s: a safety deadline, since a loaded
 *     machine answers late, not wrong);
 *   - keeps ONE long-lived connection and round-trips a line on it every 250 ms.
 * Prints one JSON line per second (`{"ok":N,"failed":N,"long":"alive"|"dead",...}`) and a final one
 * with `"final":true`, the longest connect+echo latency, and the failures' reasons (at most 20).
 *
 *   bun test/support/scripts/user-load.ts HOST:PORT [INTERVAL_MS] [--until-sigterm]
 * (--until-sigterm: stdin is not watched, e.g. under systemd-run where it is /dev/null)
 */
import type { Socket } from "bun";

const [target, intervalArg, untilArg] = process.argv.slice(2);
if (!target || !/^[\d.]+:\d+$/.test(target)) {
  console.error("usage: user-load.ts HOST:PORT [INTERVAL_MS]");
  process.exit(2);
}
const [host, portText] = target.split(":") as [string, string];
const port = Number(portText);
const intervalMs = Number(intervalArg ?? 20);
const ECHO_DEADLINE_MS = 60_000;

const stats = {
  ok: 0,
  failed: 0,
  maxLatencyMs: 0,
  maxLatencyAt: "",
  slow: [] as string[],
  longRoundTrips: 0,
  long: "starting" as "starting" | "alive" | "dead",
  longDeadReason: "",
  reasons: [] as string[],
};

function fail(reason: string): void {
  stats.failed += 1;
  if (stats.reasons.length < 20) stats.reasons.push(`${new Date().toISOString()} ${reason}`);
}

/** One connection: write `line`, resolve when it came back whole, reject otherwise. */
function roundTrip(socket: Socket<{ buffer: string; waiter?: (text: string) => void }>, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo within ${ECHO_DEADLINE_MS / 1000} s`)), ECHO_DEADLINE_MS);
    socket.data.waiter = (text) => {
      if (!text.includes(line)) return;
      clearTimeout(timer);
      socket.data.buffer = "";
      socket.data.waiter = undefined;
      resolve();
    };
    socket.write(line);
  });
}

type State = { buffer: string; waiter?: (text: string) => void; closed?: (why: string) => void };
const handlers = {
  data(socket: Socket<State>, chunk: Uint8Array) {
    socket.data.buffer += new TextDecoder().decode(chunk);
    socket.data.waiter?.(socket.data.buffer);
  },
  close(socket: Socket<State>) {
    socket.data.closed?.("closed by the other end");
  },
  error(socket: Socket<State>, err: Error) {
    socket.data.closed?.(err.message);
  },
};

async function oneUser(n: number): Promise<void> {
  const started = performance.now();
  let socket: Socket<State> | undefined;
  try {
    socket = await Bun.connect<State>({ hostname: host, port, data: { buffer: "" }, socket: handlers });
    const closed = new Promise<never>((_, reject) => (socket!.data.closed = (why) => reject(new Error(why))));
    await Promise.race([roundTrip(socket, `user-${n}\n`), closed]);
    stats.ok += 1;
    const latency = performance.now() - started;
    // The slow ones, with when they began: a gap is read against the daemon's log.
    if (latency > 500 && stats.slow.length < 20)
      stats.slow.push(`${new Date(Date.now() - latency).toISOString()} ${latency.toFixed(0)} ms`);
    if (latency > stats.maxLatencyMs) {
      stats.maxLatencyMs = latency;
      stats.maxLatencyAt = new Date().toISOString();
    }
  } catch (err) {
    fail(`user ${n}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    if (socket) {
      socket.data.closed = undefined;
      socket.end();
    }
  }
}

let stopping = false;
async function longLived(): Promise<void> {
  let socket: Socket<State>;
  try {
    socket = await Bun.connect<State>({ hostname: host, port, data: { buffer: "" }, socket: handlers });
  } catch (err) {
    stats.long = "dead";
    stats.longDeadReason = `connect: ${err instanceof Error ? err.message : String(err)}`;
    return;
  }
  let dead = "";
  socket.data.closed = (why) => (dead ||= why);
  for (let i = 0; !stopping; i++) {
    try {
      if (dead) throw new Error(dead);
      await roundTrip(socket, `long-${i}\n`);
      stats.longRoundTrips += 1;
      stats.long = "alive";
    } catch (err) {
      stats.long = "dead";
      stats.longDeadReason = err instanceof Error ? err.message : String(err);
      return;
    }
    await Bun.sleep(250);
  }
  socket.data.closed = undefined;
  socket.end();
}

const long = longLived();
let n = 0;
const inFlight = new Set<Promise<void>>();
const spawner = setInterval(() => {
  const p = oneUser(n++).finally(() => inFlight.delete(p));
  inFlight.add(p);
}, intervalMs);
const progress = setInterval(
  () => console.log(JSON.stringify({ ...stats, reasons: undefined, slow: undefined })),
  1000,
);

async function finish(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(spawner);
  clearInterval(progress);
  await Promise.all([...inFlight, long]);
  console.log(JSON.stringify({ ...stats, final: true }));
  process.exit(0);
}
process.on("SIGTERM", () => void finish());
if (untilArg !== "--until-sigterm") {
  process.stdin.on("end", () => void finish());
  process.stdin.resume();
}
