/**
 * `WsTransport` is the production `Transport`: one RFC 6455 connection over a connected Bun socket
 * (TLS in practice), client or server role. Guarantees:
 * - a message accepted by `send` is written whole and in order, or the connection fails; `send`
 *   copies its parts, so callers may reuse them at once;
 * - `bufferedBytes` is exact (wire bytes not yet taken by the socket) and bounded by the high-water
 *   mark plus one message, because callers stop on `false` and resume on `drain`;
 * - frames sent in one tick leave in one `socket.write` per staging buffer (batching), flushed in a
 *   microtask; a partial write is resumed on the socket's `drain`;
 * - WebSocket pings are answered ahead of queued data; a text message, a wrongly masked frame or any
 *   other protocol error closes the connection with the matching close code;
 * - `close` runs the close handshake with a timeout; the `close` handler fires exactly once.
 */
import { systemClock, type Clock, type TimerHandle } from "../clock.ts";
import type { Transport, TransportClose, TransportHandlers } from "./transport.ts";
import {
  CLOSE_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
  WRITE_BATCH_BYTES,
  WRITE_HIGH_WATER_BYTES,
  WRITE_LOW_WATER_BYTES,
  WRITE_POOL_BUFFERS,
} from "./websocket/config.ts";
import { CloseCode } from "./close-code.ts";
import { WebSocketProtocolError } from "./websocket/errors.ts";
import {
  encodeClosePayload,
  FrameDecoder,
  Opcode,
  parseClosePayload,
  type ControlOpcode,
  type DataOpcode,
  type FrameSink,
} from "./websocket/frame-codec.ts";
import { FrameWriter } from "./websocket/frame-writer.ts";
import type { ByteSocket, SocketSink } from "./websocket/socket-slot.ts";

export type WsRole = "client" | "server";

export interface WsTransportOptions {
  role: WsRole;
  socket: ByteSocket;
  /** Negotiated subprotocol, for the owner's information. */
  protocol?: string;
  /** Bytes that arrived after the HTTP head: already part of the WebSocket stream. */
  initialData?: readonly Uint8Array[];
  /** Raw bytes written before any frame (the server's 101 answer). */
  preamble?: Uint8Array;
  maxMessageBytes?: number;
  highWaterBytes?: number;
  lowWaterBytes?: number;
  batchBytes?: number;
  closeTimeoutMs?: number;
  /** Schedules the close timeout; a fake clock in tests. */
  clock?: Clock;
}

type State = "open" | "closing" | "closed";

export class WsTransport implements Transport {
  readonly role: WsRole;
  readonly protocol: string;

  readonly #socket: ByteSocket;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #max: number;
  readonly #high: number;
  readonly #low: number;
  readonly #closeTimeoutMs: number;
  readonly #clock: Clock;

  #handlers: TransportHandlers | null = null;
  #state: State = "open";
  /** Messages decoded before handlers were attached (or while earlier ones wait), in order. */
  #pendingMessages: Uint8Array[] = [];
  /** Close that happened before handlers were attached. */
  #pendingClose: TransportClose | null = null;
  #wantDrain = false;
  #userPaused = false;
  /** Latest unanswered ping while the queue is over the high-water mark (RFC 6455 §5.5.3 allows
   * answering only the most recent), so a ping flood cannot grow the queue. */
  #deferredPong: Uint8Array | null = null;
  #closeSent = false;
  #closeReceived: { code: number; reason: string } | null = null;
  /** Set when we failed the connection; reported instead of the peer's close. */
  #failure: TransportClose | null = null;
  #closeTimer: TimerHandle | null = null;
  #socketError: Error | undefined;

  readonly #frameSink: FrameSink = {
    message: (opcode: DataOpcode, data: Uint8Array) => this.#onMessage(opcode, data),
    control: (opcode: ControlOpcode, payload: Uint8Array) => this.#onControl(opcode, payload),
  };

  readonly #socketSink: SocketSink = {
    data: (chunk) => this.#onData(chunk),
    drain: () => this.#writer.drained(),
    handshake: () => {},
    error: (error) => {
      this.#socketError ??= error;
    },
    close: (error) => this.#onSocketClosed(error),
  };

  constructor(options: WsTransportOptions) {
    this.role = options.role;
    this.protocol = options.protocol ?? "";
    this.#socket = options.socket;
    this.#max = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.#high = options.highWaterBytes ?? WRITE_HIGH_WATER_BYTES;
    this.#low = options.lowWaterBytes ?? WRITE_LOW_WATER_BYTES;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.#clock = options.clock ?? systemClock;
    this.#decoder = new FrameDecoder({
      expectMasked: this.role === "server",
      maxMessageBytes: this.#max,
      reuseBuffer: true,
    });
    this.#writer = new FrameWriter({
      write: (buf, offset, length) => this.#socket.write(buf, offset, length),
      masked: this.role === "client",
      batchBytes: options.batchBytes ?? WRITE_BATCH_BYTES,
      poolBuffers: WRITE_POOL_BUFFERS,
      onFlushed: (empty) => this.#onFlushed(empty),
    });
    if (options.preamble) this.#writer.raw(options.preamble);
    // Until handlers exist decoded messages wait; pausing the socket bounds how many.
    this.#socket.pause();
    this.#socket.data.sink = this.#socketSink;
    for (const chunk of options.initialData ?? []) if (chunk.length > 0) this.#onData(chunk);
  }

  get bufferedBytes(): number {
    return this.#writer.size;
  }

  setHandlers(handlers: TransportHandlers): void {
    const first = this.#handlers === null;
    this.#handlers = handlers;
    if (first) queueMicrotask(() => this.#deliverPending());
  }

  send(parts: readonly Uint8Array[]): boolean {
    if (this.#state !== "open") return false;
    let length = 0;
    for (const p of parts) length += p.length;
    if (length > this.#max) throw new RangeError(`message of ${length} bytes exceeds the ${this.#max}-byte limit`);
    this.#writer.message(parts, length);
    if (this.#writer.size >= this.#high) {
      this.#wantDrain = true;
      return false;
    }
    return true;
  }

  close(code: number = CloseCode.NORMAL, reason = ""): void {
    if (this.#state !== "open") return;
    this.#state = "closing";
    this.#queueClose(code, reason);
    this.#armCloseTimer();
  }

  /** Stops reading from the socket, so the peer's sends back up; `resumeReading` undoes it. */
  pauseReading(): void {
    this.#userPaused = true;
    this.#socket.pause();
  }

  resumeReading(): void {
    this.#userPaused = false;
    if (this.#handlers && this.#state !== "closed") this.#socket.resume();
  }

  // ---- incoming ----

  #deliverPending(): void {
    const handlers = this.#handlers;
    if (!handlers) return;
    // Index loop: a handler may cause more messages to be appended while we deliver.
    for (let i = 0; i < this.#pendingMessages.length; i++) handlers.message(this.#pendingMessages[i] as Uint8Array);
    this.#pendingMessages = [];
    if (this.#pendingClose) {
      const info = this.#pendingClose;
      this.#pendingClose = null;
      handlers.close(info);
      return;
    }
    if (this.#state !== "closed" && !this.#userPaused && this.#failure === null) this.#socket.resume();
    this.#maybeDrain(); // a send refused before handlers existed still gets its drain
  }

  #onData(chunk: Uint8Array): void {
    if (this.#state === "closed") return;
    this.#receive(chunk);
  }

  #receive(chunk: Uint8Array): void {
    try {
      this.#decoder.push(chunk, this.#frameSink);
    } catch (err) {
      if (err instanceof WebSocketProtocolError) this.#fail(err.closeCode, err.message, err);
      else throw err;
    }
  }

  #onMessage(opcode: DataOpcode, data: Uint8Array): void {
    if (this.#state === "closed" || this.#closeReceived) return;
    if (opcode === Opcode.text) {
      const err = new WebSocketProtocolError(
        "WS_TEXT_MESSAGE",
        "text messages are not used by the tunnel protocol",
        CloseCode.UNSUPPORTED_DATA,
      );
      this.#fail(err.closeCode, err.message, err);
      return;
    }
    // Kept for later: copied, since the decoder reuses its assembly buffer for the next message.
    if (this.#handlers === null || this.#pendingMessages.length > 0) this.#pendingMessages.push(data.slice());
    else this.#handlers.message(data);
  }

  #onControl(opcode: ControlOpcode, payload: Uint8Array): void {
    if (this.#state === "closed") return;
    if (opcode === Opcode.ping) {
      if (this.#closeSent) return;
      if (this.#writer.size >= this.#high) this.#deferredPong = payload.slice();
      else this.#writer.control(Opcode.pong, payload, true);
    } else if (opcode === Opcode.close) {
      this.#onPeerClose(payload);
    }
    // Pong: nothing to do; tunnel liveness is judged by tunnel-level PING (PROTOCOL.md §5.6).
  }

  #onPeerClose(payload: Uint8Array): void {
    let received: { code: number; reason: string };
    try {
      received = parseClosePayload(payload);
    } catch (err) {
      if (err instanceof WebSocketProtocolError) this.#fail(err.closeCode, err.message, err);
      return;
    }
    if (this.#closeReceived) return;
    this.#closeReceived = received;
    if (!this.#closeSent) {
      this.#state = "closing";
      // Echo the code (RFC 6455 §5.5.1); 1005 means none was given, so answer with none.
      const code = received.code === CloseCode.NO_STATUS ? null : received.code;
      this.#queueClose(code, "");
      this.#armCloseTimer();
    }
    this.#maybeFinishClose();
  }

  // ---- outgoing ----

  /** Queues our close frame after everything accepted so far (no accepted message is dropped). */
  #queueClose(code: number | null, reason: string): void {
    this.#writer.control(Opcode.close, code === null ? new Uint8Array(0) : encodeClosePayload(code, reason), false);
    this.#closeSent = true;
  }

  #onFlushed(empty: boolean): void {
    if (this.#state === "closed") return;
    if (empty && this.#deferredPong && !this.#closeSent) {
      const payload = this.#deferredPong;
      this.#deferredPong = null;
      this.#writer.control(Opcode.pong, payload, true);
      this.#writer.flush(); // the socket just took everything: it can take the pong now
      return;
    }
    if (empty && this.#closeSent) {
      this.#maybeFinishClose();
      return;
    }
    this.#maybeDrain();
  }

  /** Tells the caller to send again once the queue is down to the low-water mark. */
  #maybeDrain(): void {
    if (this.#wantDrain && this.#handlers && this.#state === "open" && this.#writer.size <= this.#low) {
      this.#wantDrain = false;
      this.#handlers.drain();
    }
  }

  // ---- closing ----

  #armCloseTimer(): void {
    if (this.#closeTimer !== null) return;
    this.#closeTimer = this.#clock.setTimeout(() => {
      this.#closeTimer = null;
      this.#finish({ code: CloseCode.ABNORMAL, reason: "close handshake timed out" }, true);
    }, this.#closeTimeoutMs);
  }

  /** Ends the socket once our close frame is written and the peer's received (or we failed). */
  #maybeFinishClose(): void {
    if (this.#state === "closed" || this.#writer.size > 0) return;
    if (this.#failure) {
      this.#finish(this.#failure, false);
    } else if (this.#closeReceived) {
      this.#finish({ code: this.#closeReceived.code, reason: this.#closeReceived.reason }, false);
    }
  }

  /** Protocol error: best-effort close frame after any partly written frame, then report at once. */
  #fail(code: number, reason: string, error: Error): void {
    if (this.#state === "closed" || this.#failure) return;
    this.#failure = { code, reason, error };
    this.#state = "closing";
    this.#writer.dropUnstarted();
    this.#deferredPong = null;
    if (!this.#closeSent) this.#queueClose(code, reason);
    this.#armCloseTimer();
    this.#socket.pause(); // nothing more will be decoded
    this.#report(this.#failure);
  }

  #onSocketClosed(error?: Error): void {
    if (this.#state === "closed") return;
    const err = error ?? this.#socketError;
    if (this.#closeReceived && this.#closeSent) {
      this.#finish({ code: this.#closeReceived.code, reason: this.#closeReceived.reason }, false);
      return;
    }
    const info: TransportClose = {
      code: CloseCode.ABNORMAL,
      reason: err ? `connection lost: ${err.message}` : "connection closed without a close frame",
      ...(err ? { error: err } : {}),
    };
    this.#finish(info, false);
  }

  /** Releases the socket and reports `info` (once). `hard` cuts the socket instead of ending it. */
  #finish(info: TransportClose, hard: boolean): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    if (this.#closeTimer !== null) {
      this.#closeTimer.cancel();
      this.#closeTimer = null;
    }
    this.#writer.stop();
    if (hard) this.#socket.terminate();
    else this.#socket.end();
    this.#report(this.#failure ?? info);
  }

  #reported = false;
  #report(info: TransportClose): void {
    if (this.#reported) return;
    this.#reported = true;
    if (this.#handlers && this.#pendingMessages.length === 0) this.#handlers.close(info);
    else this.#pendingClose = info; // delivered after the messages that came before it
  }
}
