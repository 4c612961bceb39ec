/**
 * `HandshakeSink` owns a socket while a connection is being set up (proxy CONNECT, TLS, HTTP
 * upgrade) and turns socket events into awaitable steps, each bounded by a shared deadline. It holds
 * at most one HTTP head (`MAX_HTTP_HEAD_BYTES`); anything after the head is handed to the next owner.
 */
import { errnoCode } from "../../errors.ts";
import { tlsFailureKind, type TlsFailureKind } from "../../tls-failure.ts";
import { HttpHeadError } from "./errors.ts";
import { HeadCollector } from "./http-head.ts";
import type { SocketSink } from "./socket-slot.ts";

/** The socket closed (or failed) while a step was waiting. */
export class SocketClosedError extends Error {
  override readonly name = "SocketClosedError";
  constructor(
    /** What Bun reported before or with the close (TLS alert, reset), if anything. */
    readonly socketError: Error | undefined,
  ) {
    super(socketError ? `connection closed: ${socketError.message}` : "connection closed");
  }
}

/** The TLS handshake failed: the peer's certificate did not verify, or no common TLS version/cipher. */
export class TlsHandshakeError extends Error {
  override readonly name = "TlsHandshakeError";
  /** OpenSSL-style reason, e.g. SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, EPROTO. */
  readonly reason: string;
  /** Which check failed (src/tls-failure.ts). */
  readonly kind: TlsFailureKind;
  constructor(readonly tlsError: Error | null) {
    super(tlsError?.message ?? "TLS handshake failed");
    const code = errnoCode(tlsError);
    this.reason =
      code === undefined || code === "EPROTO"
        ? this.message.replace(/^error:[0-9a-f]+:SSL routines:OPENSSL_internal:/, "")
        : code;
    this.kind = tlsFailureKind(code, this.message) ?? "other";
  }
}

/** The overall budget of a dial or accept ran out during `phase`. */
export class DeadlineError extends Error {
  override readonly name = "DeadlineError";
  constructor(readonly phase: string) {
    super(`timed out during ${phase}`);
  }
}

/** One timer for a whole multi-step exchange; `race` bounds each step by what is left. */
export class Deadline {
  #timer: ReturnType<typeof setTimeout> | null = null;
  #phase = "start";
  readonly #expired: Promise<never>;

  constructor(ms: number) {
    this.#expired = new Promise<never>((_, reject) => {
      this.#timer = setTimeout(() => reject(new DeadlineError(this.#phase)), ms);
    });
    this.#expired.catch(() => {}); // observed through race(); never an unhandled rejection
  }

  race<T>(phase: string, step: Promise<T>): Promise<T> {
    this.#phase = phase;
    return Promise.race([step, this.#expired]);
  }

  clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

export class HandshakeSink implements SocketSink {
  readonly #tls = Promise.withResolvers<void>();
  readonly #closed = Promise.withResolvers<never>();
  readonly #collector: HeadCollector;
  readonly #maxEarly: number;
  #headWaiter: PromiseWithResolvers<{ head: string; rest: Uint8Array }> | null = null;
  /** Bytes received while nobody was reading a head. */
  #early: Uint8Array[] = [];
  #socketError: Error | undefined;
  #isClosed = false;

  constructor(maxHeadBytes: number) {
    this.#collector = new HeadCollector(maxHeadBytes);
    this.#maxEarly = 2 * maxHeadBytes;
    this.#tls.promise.catch(() => {});
    this.#closed.promise.catch(() => {});
  }

  /** Resolves when TLS is established; rejects with the verification error or on close. */
  tlsReady(): Promise<void> {
    return Promise.race([this.#tls.promise, this.#closed.promise]);
  }

  /** Resolves with the next HTTP head and the bytes after it; rejects on close or a bad head. */
  readHead(): Promise<{ head: string; rest: Uint8Array }> {
    this.#headWaiter = Promise.withResolvers();
    const waiter = this.#headWaiter;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) this.data(chunk);
    return Promise.race([waiter.promise, this.#closed.promise]);
  }

  /**
   * Bytes that came after the last head was handed out: they belong to the next owner, after the
   * head's `rest` (a peer may send frames right behind its 101, in the same or the next read).
   */
  takeBuffered(): Uint8Array[] {
    const early = this.#early;
    this.#early = [];
    return early;
  }

  get socketError(): Error | undefined {
    return this.#socketError;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  data(chunk: Uint8Array): void {
    const waiter = this.#headWaiter;
    if (waiter === null) {
      this.#early.push(chunk);
      if (this.#early.reduce((n, c) => n + c.length, 0) > this.#maxEarly) {
        this.#closed.reject(new HttpHeadError("peer sent data before it was asked for"));
      }
      return;
    }
    try {
      const done = this.#collector.push(chunk);
      if (done) {
        this.#headWaiter = null;
        waiter.resolve(done);
      }
    } catch (err) {
      this.#headWaiter = null;
      waiter.reject(err);
    }
  }

  drain(): void {}

  handshake(ok: boolean, error: Error | null): void {
    if (ok) this.#tls.resolve();
    else this.#tls.reject(new TlsHandshakeError(error));
  }

  error(error: Error): void {
    this.#socketError ??= error;
  }

  close(error?: Error): void {
    this.#isClosed = true;
    this.#closed.reject(new SocketClosedError(error ?? this.#socketError));
  }
}
