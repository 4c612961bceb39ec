/** A private app that reads and discards everything, optionally throttled to `bytesPerSecond`. */
import type { Socket } from "bun";

export interface SinkServer {
  readonly port: number;
  readonly address: string;
  received(): number;
  stop(): void;
}

export function startSinkServer(options: { bytesPerSecond?: number } = {}): SinkServer {
  let received = 0;
  const sockets = new Set<Socket<undefined>>();
  const rate = options.bytesPerSecond;
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        sockets.add(socket);
      },
      data(socket, chunk) {
        received += chunk.byteLength;
        if (rate !== undefined) {
          // Reading `chunk` took chunk/rate seconds at this rate: stop reading for that long.
          socket.pause();
          setTimeout(() => socket.resume(), (chunk.byteLength / rate) * 1000);
        }
      },
      close(socket) {
        sockets.delete(socket);
      },
      error() {},
    },
  });
  return {
    port: listener.port,
    address: `127.0.0.1:${listener.port}`,
    received: () => received,
    stop() {
      for (const s of sockets) s.terminate();
      listener.stop(true);
    },
  };
}
