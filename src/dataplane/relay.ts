/**
 * `RelayLink` joins one tunnel stream to one TCP socket and moves bytes both ways with bounded memory.
 * The connector uses it between a stream and the private app; the reference gateway between a user's
 * connection and a stream.
 *
 * Memory: socket → stream, `stream.write` keeps Bun's fresh read buffers by reference and says stop
 * at the stream's credit, so we pause the socket until `drain`. Stream → socket, Bun's `write` takes
 * what the kernel accepts and buffers nothing: the rest is copied (the stream's view dies after the
 * call) and kept until `drain`, and credit goes back to the peer (`stream.consumed`) only for bytes
 * the socket took. So a slow reader on either side holds at most one window per direction.
 *
 * Half-close: a FIN from either side becomes a FIN on the other (`socket.shutdown()` keeps reading).
 * A RESET aborts the socket; a socket error resets the stream with CANCELLED.
 *
 * Final flush: once the peer has sent FIN, what is still pending for the socket is all that is left to
 * do. A socket that takes none of it for `FINAL_FLUSH_STALL_MS` (an app that stopped reading, a user
 * that went away without closing) is cut, so neither it nor its pending bytes are held forever.
 */
import type { Socket } from "bun";
import { systemClock, type Clock, type TimerHandle } from "../clock.ts";
import { StreamCode } from "../mux/const.ts";
import type { Stream, StreamCloseReason } from "../mux/stream.ts";

/** Bytes read from the socket before a stream is attached (gateway side: the user speaks first). */
const MAX_EARLY_BYTES = 256 * 1024;

/**
 * How long the final flush may go without the socket taking a byte: 60 s. Generous, because a slow
 * but live reader only needs to take something within it (the last window is at most 16 MiB); short
 * enough that a dead peer's socket is not held until TCP keepalive or forever.
 */
export const FINAL_FLUSH_STALL_MS = 60_000;

/** Where a relay reports the bytes it holds for its socket (the connector's admission gate). */
export interface BufferAccount {
  /** Bytes held now grew (positive) or shrank (negative). */
  hold(delta: number): void;
  /** The socket stopped taking writes (so the kernel's send buffer is full), or caught up. */
  setBlocked(blocked: boolean): void;
}

export class RelayLink {
  socket?: Socket<RelayLink>;
  /** Charged with the bytes pending for the socket; none on the gateway side. */
  account?: BufferAccount;
  #stream?: Stream;
  /** Stream bytes the socket has not taken yet (copies), oldest first. */
  #pending: Uint8Array[] = [];
  /** Socket bytes that arrived before the stream was attached. */
  #early: Uint8Array[] = [];
  #earlyBytes = 0;
  #socketEof = false;
  #streamEof = false;
  #shutdownSent = false;
  #closed = false;
  #flushDeadline: TimerHandle | undefined;
  /** Set while the stream is done but its last bytes still go to the socket: why, for `onFinished`. */
  #finishWhenSocketCloses: string | undefined;
  #bytesMoved = 0;

  constructor(
    private readonly onFinished?: (link: RelayLink, reason: string) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Bytes received from either side so far: the idle check watches it move (src/dataplane/open-streams.ts). */
  get bytesMoved(): number {
    return this.#bytesMoved;
  }

  /** TCP keepalive on the app socket from now on (the stream sweep calls it once a stream has lived a while). */
  keepAlive(idleMs: number): void {
    if (!this.#closed) this.socket?.setKeepAlive(true, idleMs);
  }

  /** Starts relaying; bytes that arrived on the socket before are sent first. */
  attach(stream: Stream): void {
    this.#stream = stream;
    stream.setHandlers({
      data: (chunk) => this.#fromStream(chunk),
      end: () => this.#streamEnded(),
      drain: () => this.socket?.resume(),
      close: (reason) => this.#streamClosed(reason),
    });
    const early = this.#early;
    this.#early = [];
    this.#earlyBytes = 0;
    for (const chunk of early) this.#toStream(chunk);
    if (this.#socketEof) stream.end();
    else this.socket?.resume();
  }

  /** Ends the link from outside (the stream could not be opened): closes the socket. */
  abort(): void {
    this.#closed = true;
    this.socket?.terminate();
  }

  // Socket events (see `relaySocketHandlers`).
  onSocketData(chunk: Uint8Array): void {
    this.#bytesMoved += chunk.byteLength;
    if (this.#stream) return this.#toStream(chunk);
    this.#early.push(chunk);
    this.#earlyBytes += chunk.byteLength;
    if (this.#earlyBytes >= MAX_EARLY_BYTES) this.socket?.pause();
  }

  onSocketDrain(): void {
    while (this.#pending.length > 0 && this.socket) {
      const head = this.#pending[0]!;
      const taken = Math.max(0, this.socket.write(head));
      this.account?.hold(-taken);
      this.#consumed(taken);
      if (taken > 0 && this.#flushDeadline) this.#armFlushDeadline(); // progress: the stall clock restarts
      if (taken < head.byteLength) {
        this.#pending[0] = head.subarray(taken);
        return;
      }
      this.#pending.shift();
    }
    this.account?.setBlocked(false);
    this.#cancelFlushDeadline();
    if (this.#streamEof) this.#shutdownSocket();
  }

  onSocketEnd(): void {
    if (this.#socketEof) return;
    this.#socketEof = true;
    this.#stream?.end();
  }

  onSocketClose(error?: Error): void {
    this.socket = undefined;
    this.#cancelFlushDeadline();
    const finished = this.#finishWhenSocketCloses;
    if (finished !== undefined) {
      this.#finishWhenSocketCloses = undefined;
      this.onFinished?.(this, finished);
      return;
    }
    if (this.#closed) return;
    const stream = this.#stream;
    // After our own shutdown() the peer's FIN shows up as `close` without `end`: that is end-of-file.
    if (!error && (this.#shutdownSent || this.#socketEof)) {
      this.onSocketEnd();
      return;
    }
    this.#closed = true;
    // What the socket delivered before it failed still goes out first (an app's last answer).
    stream?.resetAfterQueued(StreamCode.CANCELLED, error ? `connection failed: ${error.message}` : "connection closed");
    this.onFinished?.(this, error ? "socket error" : "socket closed");
  }

  #toStream(chunk: Uint8Array): void {
    const stream = this.#stream!;
    if (!stream.write(chunk)) this.socket?.pause();
  }

  #fromStream(chunk: Uint8Array): void {
    this.#bytesMoved += chunk.byteLength;
    const socket = this.socket;
    if (!socket) {
      // The destination is gone; nobody will take these bytes, so stop the peer from sending more.
      this.#stream?.reset(StreamCode.CANCELLED, "destination connection closed");
      return;
    }
    if (this.#pending.length === 0) {
      const taken = Math.max(0, socket.write(chunk));
      this.#consumed(taken);
      if (taken === chunk.byteLength) return;
      chunk = chunk.subarray(taken);
    }
    this.#pending.push(chunk.slice());
    this.account?.hold(chunk.byteLength);
    this.account?.setBlocked(true);
  }

  #consumed(n: number): void {
    if (n > 0) this.#stream?.consumed(n);
  }

  #streamEnded(): void {
    this.#streamEof = true;
    if (this.#pending.length === 0) this.#shutdownSocket();
    else this.#armFlushDeadline();
  }

  #armFlushDeadline(): void {
    this.#flushDeadline?.cancel();
    this.#flushDeadline = this.clock.setTimeout(() => {
      this.#flushDeadline = undefined;
      this.#dropPending();
      this.socket?.terminate();
    }, FINAL_FLUSH_STALL_MS);
  }

  #dropPending(): void {
    this.account?.hold(-this.#pending.reduce((sum, chunk) => sum + chunk.byteLength, 0));
    this.account?.setBlocked(false);
    this.#pending = [];
  }

  #cancelFlushDeadline(): void {
    this.#flushDeadline?.cancel();
    this.#flushDeadline = undefined;
  }

  #shutdownSocket(): void {
    if (this.#shutdownSent || !this.socket) return;
    this.#shutdownSent = true;
    if (this.#socketEof) this.socket.end();
    else this.socket.shutdown();
  }

  #streamClosed(reason: StreamCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reason.kind === "fin") {
      if (this.#pending.length === 0) this.socket?.end();
      else if (this.socket) {
        // The socket closes once `drain` has flushed the rest and `end` is sent, or at the deadline;
        // until then it still holds an fd and bytes, so the link is not finished (its admission
        // ticket and idle tracking stay).
        this.#streamEof = true;
        this.#finishWhenSocketCloses = reason.kind;
        this.#armFlushDeadline();
        return;
      }
    } else {
      this.socket?.terminate();
    }
    this.onFinished?.(this, reason.kind);
  }
}

/** Bun socket handlers that forward to the socket's `RelayLink` (passed as the socket's data). */
export const relaySocketHandlers = {
  data(socket: Socket<RelayLink>, chunk: Uint8Array) {
    socket.data.onSocketData(chunk);
  },
  drain(socket: Socket<RelayLink>) {
    socket.data.onSocketDrain();
  },
  end(socket: Socket<RelayLink>) {
    socket.data.onSocketEnd();
  },
  close(socket: Socket<RelayLink>, error?: Error) {
    socket.data.onSocketClose(error);
  },
  error(socket: Socket<RelayLink>, error: Error) {
    socket.data.onSocketClose(error);
  },
} as const;
