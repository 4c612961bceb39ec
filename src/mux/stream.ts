/**
 * `Stream` is one multiplexed byte stream of a tunnel: one state machine (PROTOCOL §5.4) plus credit-based flow
 * control (PROTOCOL §5.5) in each direction.
 *
 *   opening ──accept / OPEN_RESULT ok──► open ──FIN sent──► localClosed ──FIN received──► closed
 *      │                                   └──FIN received──► remoteClosed ──FIN sent──► closed
 *      └──reject / OPEN_RESULT failure──► closed          any state ──RESET sent/received──► reset
 *
 * Guarantees: every DATA byte sent is covered by the peer's credit; every DATA byte received beyond the
 * credit we granted resets the stream (FLOW_CONTROL). Send memory is bounded by the credit plus one
 * chunk (`write` returns false once queued bytes reach the credit); receive memory is bounded by the
 * window, because credit is only granted back for bytes the consumer reports with `consumed(n)`.
 */
import type { ConnectorError } from "../errors.ts";
import type { SessionConfig } from "./config.ts";
import { StreamCode } from "./const.ts";
import { StreamStateError } from "./errors.ts";
import { type GrowthPace, ReceiveWindow, SendBuffer } from "./flow-control.ts";
import type { SendSource } from "./scheduler.ts";

export type StreamState = "opening" | "open" | "localClosed" | "remoteClosed" | "closed" | "reset";

/** What a gateway asked for in OPEN (PROTOCOL §5.2). */
export interface OpenRequest {
  readonly app: string;
  readonly host: string;
  readonly port: number;
}

export type StreamCloseReason =
  /** Both directions sent FIN. */
  | { readonly kind: "fin" }
  /** OPEN was answered with a failure code (sent by us on the connector, received on the gateway). */
  | { readonly kind: "rejected"; readonly code: StreamCode; readonly message: string }
  /** RESET sent (`by: "local"`) or received (`by: "remote"`); buffered data was dropped. */
  | { readonly kind: "reset"; readonly code: StreamCode; readonly message: string; readonly by: "local" | "remote" }
  /** The tunnel went down under the stream. */
  | { readonly kind: "tunnel"; readonly error: ConnectorError };

/** Callbacks of the stream's consumer (the relay). Each is called at most as documented. */
export interface StreamHandlers {
  /** Bytes from the peer. A view valid only during the call; report delivery with `consumed(n)`. */
  data(chunk: Uint8Array): void;
  /** The peer sent FIN: no more data will come. */
  end(): void;
  /** `write` returned false earlier and the stream can take more now. */
  drain(): void;
  /** The stream is finished (once; nothing is called after it). */
  close(reason: StreamCloseReason): void;
}

/** What a stream needs from its session; implemented by `StreamRegistry`. */
export interface StreamHost {
  readonly config: SessionConfig;
  /** Now and the tunnel's smallest recent round trip, for window growth (flow-control.ts `GrowthPace`). */
  growthPace(): GrowthPace;
  /** Takes `extra` bytes of window growth from the session's budget; false when it is spent. */
  reserveWindowGrowth(extra: number): boolean;
  releaseWindowGrowth(bytes: number): void;
  markReady(stream: Stream): void;
  sendOpenResult(stream: Stream, code: StreamCode, message: string): void;
  sendWindowUpdate(stream: Stream, increment: number): void;
  sendReset(stream: Stream, code: StreamCode, message: string): void;
  /** The stream reached a terminal state: its id is forgotten. */
  released(stream: Stream, reason: StreamCloseReason): void;
  /** A consumer callback threw; the stream is reset INTERNAL, the session reports it. */
  handlerFailed(stream: Stream, error: unknown): void;
}

export class Stream implements SendSource {
  #state: StreamState = "opening";
  #handlers: StreamHandlers | undefined;
  readonly #send = new SendBuffer();
  readonly #receive: ReceiveWindow;
  #ending = false;
  #finSent = false;
  #remoteFin = false;
  #wantDrain = false;
  // Events that came before `setHandlers` (possible on the gateway: DATA right after OPEN_RESULT).
  #pending: Uint8Array[] | undefined;
  #pendingEnd = false;
  #pendingClose: StreamCloseReason | undefined;
  /** Scheduler bookkeeping: true while in the ready ring. */
  scheduled = false;
  /** `resetAfterQueued`: the RESET to send once the queued bytes are out. */
  #resetDue: { code: StreamCode; message: string } | undefined;
  /** Window growth taken from the session's budget, given back when the stream ends. */
  #grownBy = 0;
  readonly #reserveGrowth = (extra: number): boolean => {
    if (!this.host.reserveWindowGrowth(extra)) return false;
    this.#grownBy += extra;
    return true;
  };

  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    /** The OPEN that created this stream (received on the connector, sent on the gateway). */
    readonly request: OpenRequest,
    /** True when the peer opened the stream, so this side answers with accept/reject. */
    readonly incoming: boolean,
  ) {
    this.#receive = new ReceiveWindow();
  }

  /** The tunnel this stream belongs to, as an opaque key (the dataplane's per-tunnel share of its bounds). */
  get owner(): object {
    return this.host;
  }

  get state(): StreamState {
    return this.#state;
  }
  /** Bytes we may still send before the peer grants more. */
  get sendCredit(): number {
    return this.#send.credit;
  }
  /** Bytes accepted by `write` and not yet framed. */
  get queuedBytes(): number {
    return this.#send.queued;
  }
  /** Current receive window (grows up to `maxReceiveWindow`). */
  get receiveWindow(): number {
    return this.#receive.window;
  }
  /** Bytes the peer may still send us. */
  get peerCredit(): number {
    return this.#receive.peerCredit;
  }
  /** Bytes handed to the consumer (or buffered for it) and not yet reported `consumed`. */
  get unconsumedBytes(): number {
    return this.#receive.unconsumed;
  }
  get #terminal(): boolean {
    return this.#state === "closed" || this.#state === "reset";
  }
  get #sending(): boolean {
    return this.#state === "open" || this.#state === "remoteClosed";
  }

  /** Attaches the consumer; anything that arrived before is delivered now, in order. */
  setHandlers(handlers: StreamHandlers): void {
    this.#handlers = handlers;
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    for (const chunk of pending) this.#call((h) => h.data(chunk));
    if (this.#pendingEnd) this.#call((h) => h.end());
    if (this.#pendingClose) this.#notifyClose(this.#pendingClose);
  }

  /**
   * Connector: answer the OPEN with OK; queued writes start flowing. Returns false (doing nothing)
   * when the stream was reset meanwhile (the gateway gave up, or the tunnel went down).
   */
  accept(): boolean {
    if (this.#state === "reset") return false;
    if (!this.incoming || this.#state !== "opening")
      throw new StreamStateError(`cannot accept a stream in state ${this.#state}`);
    this.#state = "open";
    this.host.sendOpenResult(this, StreamCode.OK, "");
    if (this.sendable) this.host.markReady(this);
    return true;
  }

  /** Connector: answer the OPEN with a failure code; the stream is closed. */
  reject(code: StreamCode, message = ""): void {
    if (this.#state === "reset") return;
    if (!this.incoming || this.#state !== "opening" || code === StreamCode.OK) {
      throw new StreamStateError(`cannot reject a stream in state ${this.#state} with code ${code}`);
    }
    this.host.sendOpenResult(this, code, message);
    this.#finish("closed", { kind: "rejected", code, message });
  }

  /**
   * Queues `chunk` by reference (do not modify it afterwards). Returns false when the caller should
   * stop reading its source until `drain`. Writes after a reset or close are dropped.
   */
  write(chunk: Uint8Array): boolean {
    if (this.#terminal) return false;
    if (this.#ending) throw new StreamStateError("write after end");
    if (chunk.length > 0) {
      this.#send.push(chunk);
      if (this.#sending && this.#send.credit > 0) this.host.markReady(this);
    }
    if (this.#send.writable) return true;
    this.#wantDrain = true;
    return false;
  }

  /** Half-close: FIN goes out after every queued byte. */
  end(): void {
    if (this.#terminal || this.#ending) return;
    this.#ending = true;
    if (this.finDue) this.host.markReady(this);
  }

  /**
   * RESET after the bytes already queued, when the peer's credit covers them all: an app that wrote
   * its last answer and reset the connection in the same breath (a server refusing a client, with the
   * request still unread) keeps its answer, as over plain TCP. Otherwise RESET at once, as `reset`.
   * No more writes are taken either way.
   */
  resetAfterQueued(code: StreamCode = StreamCode.CANCELLED, message = ""): void {
    if (this.#terminal || this.#resetDue) return;
    const queued = this.#send.queued;
    if (queued === 0 || !this.#sending || queued > this.#send.credit) return this.reset(code, message);
    this.#resetDue = { code, message };
    this.#ending = true;
    this.host.markReady(this);
  }

  /** Aborts both directions (RESET); queued and buffered data are dropped. */
  reset(code: StreamCode = StreamCode.CANCELLED, message = ""): void {
    if (this.#terminal) return;
    this.host.sendReset(this, code, message);
    this.#finish("reset", { kind: "reset", code, message, by: "local" });
  }

  /** The consumer delivered `n` bytes (e.g. its socket took them): credit flows back to the peer. */
  consumed(n: number): void {
    if (n <= 0 || !this.#receive.consumed(n) || this.#terminal || this.#remoteFin) return;
    const pace = this.host.growthPace();
    const increment = this.#receive.grant(this.host.config.maxReceiveWindow, this.#reserveGrowth, pace);
    this.host.sendWindowUpdate(this, increment);
  }

  // SendSource (the scheduler):
  get sendable(): boolean {
    return this.#sending && ((this.#send.queued > 0 && this.#send.credit > 0) || this.finDue);
  }
  get finDue(): boolean {
    return this.#ending && !this.#finSent && this.#send.queued === 0 && this.#sending && !this.#resetDue;
  }
  pullData(max: number, out: Uint8Array[]): number {
    const taken = this.#send.pull(max, out);
    const due = this.#resetDue;
    if (due && this.#send.queued === 0) {
      // Runs once: with nothing queued and `#resetDue` set (no FIN due) the stream is not sendable, so
      // the scheduler does not pull again. A microtask later: the RESET goes into the next message,
      // behind the data just pulled.
      queueMicrotask(() => this.reset(due.code, due.message));
    }
    return taken;
  }
  get creditExhausted(): boolean {
    return this.#send.credit === 0;
  }
  finWritten(): void {
    this.#finSent = true;
    if (this.#state === "open") this.#state = "localClosed";
    // Both FINs out: close a microtask later, so the consumer's close callback (which may close the
    // session) never runs inside the scheduler while it builds a message.
    else queueMicrotask(() => this.#finish("closed", { kind: "fin" }));
  }

  // Frames from the peer (the session calls these):
  /** OPEN_RESULT for a stream this side opened. */
  handleOpenResult(code: StreamCode, message: string): void {
    if (code !== StreamCode.OK) return this.#finish("closed", { kind: "rejected", code, message });
    this.#state = "open";
    if (this.sendable) this.host.markReady(this);
  }

  handleData(payload: Uint8Array, creditExhausted = false): void {
    if (this.#state === "opening") return this.#violation("DATA before the stream was open");
    if (this.#remoteFin) return this.#violation("DATA after FIN");
    if (!this.#receive.receive(payload.length)) {
      return this.reset(
        StreamCode.FLOW_CONTROL,
        `DATA of ${payload.length} bytes beyond a credit of ${this.#receive.peerCredit}`,
      );
    }
    if (payload.length === 0) return;
    if (this.#handlers) this.#call((h) => h.data(payload));
    else {
      this.#pending ??= [];
      this.#pending.push(payload.slice()); // the message buffer dies after this call
    }
    if (creditExhausted) this.#receive.senderExhausted();
  }

  handleWindowUpdate(increment: number): void {
    if (increment === 0) return this.#violation("WINDOW_UPDATE with a zero increment");
    if (!this.#send.addCredit(increment)) return this.#violation("WINDOW_UPDATE overflows 2^31-1");
    if (this.sendable) this.host.markReady(this);
    if (this.#wantDrain && this.#send.writable && !this.#ending) {
      this.#wantDrain = false;
      this.#call((h) => h.drain());
    }
  }

  handleFin(): void {
    if (this.#state === "opening") return this.#violation("FIN before the stream was open");
    if (this.#remoteFin) return this.#violation("second FIN");
    this.#remoteFin = true;
    if (this.#handlers) this.#call((h) => h.end());
    else this.#pendingEnd = true;
    if (this.#state === "open") this.#state = "remoteClosed";
    else if (this.#state === "localClosed") this.#finish("closed", { kind: "fin" });
  }

  handleReset(code: StreamCode, message: string): void {
    this.#finish("reset", { kind: "reset", code, message, by: "remote" });
  }

  /** The tunnel is gone: terminal, nothing sent. */
  abort(error: ConnectorError): void {
    if (!this.#terminal) this.#finish("reset", { kind: "tunnel", error });
  }

  /** A frame that is not valid in this state: RESET PROTOCOL, the tunnel stays up (PROTOCOL §5.4). */
  #violation(message: string): void {
    this.reset(StreamCode.PROTOCOL, message);
  }

  #finish(state: "closed" | "reset", reason: StreamCloseReason): void {
    if (this.#terminal) return;
    this.#state = state;
    this.host.releaseWindowGrowth(this.#grownBy);
    this.#grownBy = 0;
    this.#send.clear();
    if (state === "reset") {
      this.#pending = undefined;
      this.#pendingEnd = false;
      this.#receive.unconsumed = 0;
    }
    this.host.released(this, reason);
    if (this.#handlers) this.#notifyClose(reason);
    else this.#pendingClose = reason;
  }

  #notifyClose(reason: StreamCloseReason): void {
    const handlers = this.#handlers;
    this.#handlers = undefined;
    this.#pendingClose = undefined;
    try {
      handlers?.close(reason);
    } catch (err) {
      this.host.handlerFailed(this, err);
    }
  }

  /** Calls a consumer callback; one that throws resets the stream instead of breaking the session. */
  #call(fn: (handlers: StreamHandlers) => void): void {
    const handlers = this.#handlers;
    if (!handlers) return;
    try {
      fn(handlers);
    } catch (err) {
      this.host.handlerFailed(this, err);
      this.reset(StreamCode.INTERNAL, "stream consumer failed");
    }
  }
}
