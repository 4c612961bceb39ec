/**
 * Load-generator jobs about streams rather than bytes: the end-to-end readiness probe, new streams per
 * second, holding thousands of idle streams, and the slow reader (kernel-level backpressure through
 * socket.pause, verified: a paused Bun socket stops reading, so the writer's side fills and blocks).
 */
import type { Socket } from "bun";
import { emit, open } from "./loadgen-io.ts";
import { CostMeter, type CostTargets } from "./cost.ts";
import { Mode } from "./wire.ts";

/** One attempt of the probe, and one open/first-byte of the connection-rate loop, must answer within this. */
const FIRST_BYTE_TIMEOUT_MS = 5_000;
/** Pause between failed probe attempts. */
const PROBE_RETRY_MS = 100;
/** Slow-reader pacing period: the byte budget is refilled this often. */
const SLOW_TICK_MS = 100;
/** An idle-stream holder stops by itself after this long even if never told to (the parent always tells it). */
const IDLE_HOLD_LIMIT_MS = 15 * 60_000;

interface FirstByte {
  resolve: (() => void) | undefined;
  error: string | undefined;
  got: boolean;
}

const firstByteHandlers: Bun.SocketHandler<FirstByte> = {
  data(socket) {
    socket.data.got = true;
    socket.data.resolve?.();
  },
  close(socket) {
    socket.data.error ??= "closed before the first byte";
    socket.data.resolve?.();
  },
  error(socket, err) {
    socket.data.error ??= err.message;
  },
};

/** Opens a stream in `mode` and waits for the app's first byte: proof the whole path carries it. */
async function openAndGreet(port: number, mode: number): Promise<Socket<FirstByte>> {
  const state: FirstByte = { resolve: undefined, error: undefined, got: false };
  const greeted = new Promise<void>((resolve) => (state.resolve = resolve));
  const socket = await open(port, mode, firstByteHandlers, state);
  const late = await Promise.race([greeted.then(() => false), Bun.sleep(FIRST_BYTE_TIMEOUT_MS).then(() => true)]);
  if (late || !state.got) {
    socket.terminate();
    throw new Error(state.error ?? `no first byte within ${FIRST_BYTE_TIMEOUT_MS} ms`);
  }
  return socket;
}

export async function runProbe(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt";
  for (let attempt = 1; attempt <= Math.ceil(timeoutMs / PROBE_RETRY_MS) + 1; attempt++) {
    try {
      (await openAndGreet(port, Mode.ping)).end();
      return emit({ ok: true, attempts: attempt });
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) break;
    await Bun.sleep(PROBE_RETRY_MS);
  }
  throw new Error(`127.0.0.1:${port} did not carry a stream to the app within ${timeoutMs} ms (last: ${last})`);
}

export async function runConnRate(
  port: number,
  loops: number,
  durationMs: number,
  costTargets?: CostTargets,
): Promise<void> {
  let completed = 0;
  let errors = 0;
  let lastError: string | undefined;
  const meter = new CostMeter(costTargets);
  meter.start(0);
  const start = performance.now();
  const end = start + durationMs;
  // the cost window closes at the end of the run, before the last streams in flight finish
  const meterTimer = setTimeout(() => meter.stop(completed), durationMs);
  const loop = async () => {
    while (performance.now() < end) {
      try {
        (await openAndGreet(port, Mode.ping)).end();
        completed++;
      } catch (err) {
        errors++;
        lastError = err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  clearTimeout(meterTimer);
  meter.stop(completed); // no-op when the timer already closed the window
  const elapsed = performance.now() - start;
  emit({ perSecond: (completed * 1000) / elapsed, completed, errors, lastError, cost: meter.window });
}

export async function runIdle(port: number, count: number, parallel: number, timeoutMs: number): Promise<void> {
  const sockets: Socket<FirstByte>[] = [];
  const start = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      if (performance.now() - start > timeoutMs)
        throw new Error(`opened only ${sockets.length} of ${count} idle streams in ${timeoutMs} ms`);
      sockets.push(await openAndGreet(port, Mode.idle));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  emit({ ready: true, opened: sockets.length, ms: performance.now() - start });
  // hold until the parent closes stdin (or the safety limit passes)
  const reader = Bun.stdin.stream().getReader();
  await Promise.race([
    (async () => {
      for (let i = 0; i < 1_000 && !(await reader.read()).done; i++);
    })(),
    Bun.sleep(IDLE_HOLD_LIMIT_MS),
  ]);
  const dropped = sockets.filter((s) => s.data.error !== undefined).length;
  for (const socket of sockets) socket.end();
  emit({ closed: true, dropped });
}

interface SlowConn {
  read: number;
  budget: number;
  error: string | undefined;
  done: boolean;
}

export async function runSlowReader(port: number, bytesPerSecond: number, durationMs: number): Promise<void> {
  const handlers: Bun.SocketHandler<SlowConn> = {
    data(socket, bytes) {
      socket.data.read += bytes.length;
      if (socket.data.read >= socket.data.budget) socket.pause();
    },
    close(socket) {
      if (!socket.data.done) socket.data.error ??= "closed by the peer";
    },
    error(socket, err) {
      socket.data.error ??= err.message;
    },
  };
  const socket = await open(port, Mode.source, handlers, { read: 0, budget: 0, error: undefined, done: false });
  socket.pause();
  const perTick = (bytesPerSecond * SLOW_TICK_MS) / 1000;
  const ticks = Math.ceil(durationMs / SLOW_TICK_MS);
  for (let i = 0; i < ticks && socket.data.error === undefined; i++) {
    socket.data.budget += perTick;
    socket.resume();
    await Bun.sleep(SLOW_TICK_MS);
  }
  socket.data.done = true; // Bun may run the close handler inside end()
  socket.end();
  if (socket.data.error) return emit({ error: socket.data.error });
  emit({ read: socket.data.read, ms: ticks * SLOW_TICK_MS });
}
