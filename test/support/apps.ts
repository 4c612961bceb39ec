/**
 * Private apps for end-to-end tests, on 127.0.0.1 port 0: an echo server (every byte back, half-close
 * passed on) and a helper to move bytes through a user connection and hash both ends.
 */
import { createHash } from "node:crypto";
import type { Socket, TCPSocketListener } from "bun";

export interface EchoServer {
  readonly port: number;
  readonly address: string;
  connections: number;
  stop(): void;
}

/** Echoes everything, honouring backpressure (pauses reading while its writes are pending). */
export function startEchoServer(): EchoServer {
  type State = { pending: Uint8Array[]; eof: boolean };
  const flush = (socket: Socket<State>) => {
    const state = socket.data;
    while (state.pending.length > 0) {
      const head = state.pending[0]!;
      const n = Math.max(0, socket.write(head));
      if (n < head.byteLength) {
        state.pending[0] = head.subarray(n);
        socket.pause();
        return;
      }
      state.pending.shift();
    }
    socket.resume();
    if (state.eof) socket.end();
  };
  const server = {
    connections: 0,
    listener: undefined as TCPSocketListener<State> | undefined,
  };
  const listener = Bun.listen<State>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(socket) {
        server.connections += 1;
        socket.data = { pending: [], eof: false };
      },
      data(socket, chunk) {
        socket.data.pending.push(chunk);
        flush(socket);
      },
      drain: flush,
      end(socket) {
        socket.data.eof = true;
        if (socket.data.pending.length === 0) socket.end();
      },
      error() {},
    },
  });
  return {
    port: listener.port,
    address: `127.0.0.1:${listener.port}`,
    get connections() {
      return server.connections;
    },
    set connections(n: number) {
      server.connections = n;
    },
    stop: () => listener.stop(true),
  };
}

export function splitAddress(address: string): { hostname: string; port: number } {
  const i = address.lastIndexOf(":");
  return { hostname: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

export interface TransferResult {
  sentSha256: string;
  receivedSha256: string;
  receivedBytes: number;
}

/**
 * Connects to `address`, sends `totalBytes` of seeded pseudo-random data (half-closing after), reads
 * everything echoed back until the server closes, and returns both hashes.
 */
export function echoTransfer(
  address: string,
  totalBytes: number,
  options: { chunkBytes?: number; timeoutMs?: number } = {},
): Promise<TransferResult> {
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const sent = createHash("sha256");
  const received = createHash("sha256");
  let receivedBytes = 0;
  let offset = 0;
  const block = new Uint8Array(chunkBytes);
  crypto.getRandomValues(block.subarray(0, Math.min(65536, chunkBytes)));
  for (let i = 65536; i < chunkBytes; i += 65536) block.copyWithin(i, 0, Math.min(65536, chunkBytes - i));
  let salt = 0;
  let socket: Socket<undefined> | undefined;
  return new Promise((resolve, reject) => {
    // A safety deadline (default 60 s): at it the connection is closed, so nothing keeps running.
    const timer = setTimeout(() => {
      socket?.terminate();
      reject(
        new Error(
          `transfer of ${totalBytes} bytes to ${address} timed out (sent ${offset}, received ${receivedBytes})`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    let pendingChunk: Uint8Array | undefined;
    const pump = (s: Socket<undefined>) => {
      socket = s;
      for (;;) {
        if (!pendingChunk) {
          if (offset >= totalBytes) {
            s.shutdown();
            return;
          }
          const size = Math.min(chunkBytes, totalBytes - offset);
          const chunk = block.slice(0, size);
          chunk[0] = salt++ & 0xff; // vary every chunk so reordering would be caught
          sent.update(chunk);
          offset += size;
          pendingChunk = chunk;
        }
        const n = Math.max(0, s.write(pendingChunk));
        if (n < pendingChunk.byteLength) {
          pendingChunk = pendingChunk.subarray(n);
          return;
        }
        pendingChunk = undefined;
      }
    };
    const { hostname, port } = splitAddress(address);
    Bun.connect<undefined>({
      hostname,
      port,
      allowHalfOpen: true,
      socket: {
        open: pump,
        drain: pump,
        data(_socket, chunk) {
          received.update(chunk);
          receivedBytes += chunk.byteLength;
        },
        close() {
          clearTimeout(timer);
          resolve({ sentSha256: sent.digest("hex"), receivedSha256: received.digest("hex"), receivedBytes });
        },
        error(_socket, error) {
          clearTimeout(timer);
          reject(error);
        },
        connectError(_socket, error) {
          clearTimeout(timer);
          reject(error);
        },
      },
    }).catch(reject);
  });
}

/**
 * One request/response over a fresh user connection: sends `payload`, half-closes, returns what came back.
 * The 30 s default is a safety deadline (a loaded machine answers late, not wrong); at it the connection
 * is closed and the promise rejects.
 */
export async function roundTrip(address: string, payload: Uint8Array, timeoutMs = 30_000): Promise<Uint8Array> {
  const { hostname, port } = splitAddress(address);
  const chunks: Uint8Array[] = [];
  let socket: Socket<undefined> | undefined;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket?.terminate();
      reject(
        new Error(
          `no answer from ${address} within ${timeoutMs} ms (${Buffer.concat(chunks).byteLength} bytes so far)`,
        ),
      );
    }, timeoutMs);
    Bun.connect<undefined>({
      hostname,
      port,
      allowHalfOpen: true,
      socket: {
        open(s) {
          socket = s;
          s.write(payload);
          s.shutdown();
        },
        data(_s, chunk) {
          chunks.push(chunk);
        },
        close() {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks));
        },
        error(_s, error) {
          clearTimeout(timer);
          reject(error);
        },
        connectError(_s, error) {
          clearTimeout(timer);
          reject(error);
        },
      },
    }).catch(reject);
  });
}
