/**
 * Socket and output helpers shared by the load-generator jobs: connect with a deadline and send the mode
 * byte; print one JSON result line.
 */
import type { Socket } from "bun";

export const HOST = "127.0.0.1";
/** Per-connection connect deadline: loopback connects take microseconds; seconds mean something is wrong. */
export const CONNECT_TIMEOUT_MS = 10_000;

export function emit(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Connects with a deadline and sends the mode byte. */
export async function open<T>(port: number, mode: number, handlers: Bun.SocketHandler<T>, data: T): Promise<Socket<T>> {
  const connecting = Bun.connect<T>({ hostname: HOST, port, socket: handlers, data });
  connecting.catch(() => {}); // a connect that loses the race to the deadline must not surface later
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`connect to ${HOST}:${port} timed out after ${CONNECT_TIMEOUT_MS} ms`)),
      CONNECT_TIMEOUT_MS,
    );
  });
  let socket: Socket<T>;
  try {
    socket = await Promise.race([connecting, timeout]);
  } finally {
    clearTimeout(timer);
  }
  socket.write(new Uint8Array([mode]));
  return socket;
}
