/**
 * `Transport` is what a tunnel session runs over: an ordered, reliable channel of binary messages
 * (one WebSocket over TLS in production, an in-memory pair in tests). The session never sees sockets,
 * TLS or WebSocket framing, so the same session tests run in memory and over real TLS.
 *
 * Backpressure is explicit: `send` reports whether the transport wants more now. A caller that gets
 * `false` stops sending until `drain`; the transport never drops a message it accepted, and the bytes
 * it holds beyond the socket are counted in `bufferedBytes` (we do not trust WebSocket
 * `bufferedAmount`, which Bun's client reports as 0).
 */

export interface TransportClose {
  /** WebSocket close code (1000 normal, 1002 protocol error, 1006 abnormal/no close frame, …). */
  readonly code: number;
  readonly reason: string;
  /** Set when the channel failed rather than closed cleanly. */
  readonly error?: Error;
}

export interface TransportHandlers {
  /** One whole binary message. The buffer is only valid during the call unless copied. */
  message(data: Uint8Array): void;
  /** The transport has room again after `send` returned false. */
  drain(): void;
  /** Called once; no handler is called after it. */
  close(info: TransportClose): void;
}

export interface Transport {
  /** Sends one binary message made of `parts` back to back. Returns false when the caller should wait for `drain`. */
  send(parts: readonly Uint8Array[]): boolean;
  /** Starts a clean close; `close` handler fires when done. Idempotent. */
  close(code?: number, reason?: string): void;
  /** Bytes accepted by `send` and not yet handed to the kernel. */
  readonly bufferedBytes: number;
  /** Attach handlers; messages that arrived before are delivered after this call. */
  setHandlers(handlers: TransportHandlers): void;
}
