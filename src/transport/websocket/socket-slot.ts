/**
 * Bun fixes a socket's handlers when it is created (per listener for `Bun.listen`), but a tunnel
 * socket changes owner: proxy CONNECT, then TLS, then the HTTP upgrade, then the WebSocket
 * transport. `socket.data` holds a `SocketSlot` whose `sink` is the current owner; the static
 * `slotHandlers` forward every event to it. Swapping owners is one assignment.
 */
import type { Socket, SocketHandler } from "bun";

export interface SocketSink {
  data(chunk: Uint8Array): void;
  drain(): void;
  /** TLS handshake finished (`ok` false: verification failed; Bun closes the socket after). */
  handshake(ok: boolean, error: Error | null): void;
  /** An error Bun reports before `close` (TLS alert, ECONNRESET, a throwing handler). */
  error(error: Error): void;
  close(error?: Error): void;
}

export interface SocketSlot {
  sink: SocketSink;
}

/** A sink that ignores everything (a socket between owners, or one we are abandoning). */
export const nullSink: SocketSink = {
  data() {},
  drain() {},
  handshake() {},
  error() {},
  close() {},
};

/** Handlers for `Bun.connect` / `Bun.listen` / `upgradeTLS` whose sockets carry a `SocketSlot`. */
export const slotHandlers = {
  binaryType: "uint8array",
  data(socket: Socket<SocketSlot>, chunk: Uint8Array) {
    socket.data.sink.data(chunk);
  },
  drain(socket: Socket<SocketSlot>) {
    socket.data.sink.drain();
  },
  handshake(socket: Socket<SocketSlot>, ok: boolean, error: Error | null) {
    socket.data.sink.handshake(ok, error);
  },
  error(socket: Socket<SocketSlot>, error: Error) {
    socket.data.sink.error(error);
  },
  close(socket: Socket<SocketSlot>, error?: Error) {
    socket.data.sink.close(error);
  },
} satisfies SocketHandler<SocketSlot, "uint8array">;

/** The part of a Bun socket the transport uses; a fake in unit tests. */
export interface ByteSocket {
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  data: SocketSlot;
}

/**
 * Writes a small head (upgrade request, CONNECT, refusal) on a fresh socket. Bun's `write` keeps
 * nothing it did not take; on a new connection a few hundred bytes are always taken, so a short
 * write means the socket is already gone. Returns false then.
 */
export function writeHead(socket: Pick<ByteSocket, "write">, bytes: Uint8Array): boolean {
  return socket.write(bytes) === bytes.length;
}
