/**
 * `StreamRegistry` holds one session's live streams by id and is the `StreamHost` they call back: it
 * turns their requests (OPEN_RESULT, WINDOW_UPDATE, RESET, "ready to send") into frames on the
 * outbound queue, counts them, and forgets a stream's id once the stream ends (PROTOCOL §5.4).
 */
import type { GrowthPace } from "./flow-control.ts";
import type { ConnectorError } from "../errors.ts";
import type { SessionConfig } from "./config.ts";
import { StreamCode } from "./const.ts";
import { SessionInternalError, StreamFaultError } from "./errors.ts";
import { encodeOpenResult, encodeReset, encodeWindowUpdate } from "./frame-encoder.ts";
import type { Outbound } from "./outbound.ts";
import type { SessionCounters } from "./session-stats.ts";
import { type OpenRequest, Stream, type StreamCloseReason, type StreamHost } from "./stream.ts";

export interface RegistryDeps {
  readonly config: SessionConfig;
  readonly out: Outbound;
  readonly counters: SessionCounters;
  /** Reports a stream fault or a consumer failure (session event `streamError`). */
  readonly streamError: (streamId: number, error: ConnectorError) => void;
  /** A stream ended (after its id was forgotten). */
  readonly released: (stream: Stream, reason: StreamCloseReason) => void;
  /** The session's clock and the tunnel's smallest recent PING round trip, for window growth. */
  readonly now: () => number;
  readonly minRttMs: () => number | undefined;
}

export class StreamRegistry implements StreamHost {
  readonly #streams = new Map<number, Stream>();
  readonly config: SessionConfig;
  /** Sum over live streams of their receive windows' growth beyond INITIAL_WINDOW. */
  #grownWindowBytes = 0;

  constructor(private readonly deps: RegistryDeps) {
    this.config = deps.config;
  }

  get size(): number {
    return this.#streams.size;
  }

  get(id: number): Stream | undefined {
    return this.#streams.get(id);
  }

  create(id: number, request: OpenRequest, incoming: boolean): Stream {
    const stream = new Stream(id, this, request, incoming);
    this.#streams.set(id, stream);
    this.deps.counters.streamsCreated++;
    return stream;
  }

  /** The stream a frame is for; an unknown or closed id is answered RESET PROTOCOL (PROTOCOL §5.4). */
  forFrame(streamId: number, type: number): Stream | undefined {
    const stream = this.#streams.get(streamId);
    if (!stream) {
      this.deps.counters.resetsSent++;
      this.deps.out.control(encodeReset(streamId, StreamCode.PROTOCOL, `frame type ${type} for unknown stream`));
    }
    return stream;
  }

  /**
   * An OPEN whose app or host cannot be read (not UTF-8): its id is spent (ids only increase), no
   * stream is made, and RESET PROTOCOL (not OPEN_RESULT: the stream never existed) ends it at the peer.
   */
  refuseMalformedOpen(streamId: number, message: string): void {
    this.deps.counters.resetsSent++;
    this.deps.out.control(encodeReset(streamId, StreamCode.PROTOCOL, message));
    this.deps.streamError(streamId, new StreamFaultError(StreamCode.PROTOCOL, message));
  }

  /** Ends every stream because the tunnel is gone. */
  abortAll(error: ConnectorError): void {
    for (const stream of [...this.#streams.values()]) stream.abort(error);
  }

  /** Bytes held in streams: queued to send, and delivered but not consumed. */
  heldBytes(): { queuedBytes: number; unconsumedBytes: number } {
    let queuedBytes = 0;
    let unconsumedBytes = 0;
    for (const s of this.#streams.values()) {
      queuedBytes += s.queuedBytes;
      unconsumedBytes += s.unconsumedBytes;
    }
    return { queuedBytes, unconsumedBytes };
  }

  // ---- StreamHost ----

  growthPace(): GrowthPace {
    return { now: this.deps.now(), minRttMs: this.deps.minRttMs() };
  }
  reserveWindowGrowth(extra: number): boolean {
    if (this.#grownWindowBytes + extra > this.config.windowGrowthBudget) return false;
    this.#grownWindowBytes += extra;
    return true;
  }
  releaseWindowGrowth(bytes: number): void {
    this.#grownWindowBytes -= bytes;
  }
  markReady(stream: Stream): void {
    this.deps.out.ready(stream);
  }
  sendOpenResult(stream: Stream, code: StreamCode, message: string): void {
    if (code !== StreamCode.OK) this.deps.counters.openFailed(code);
    this.deps.out.control(encodeOpenResult(stream.id, code, message));
  }
  sendWindowUpdate(stream: Stream, increment: number): void {
    this.deps.out.control(encodeWindowUpdate(stream.id, increment));
  }
  sendReset(stream: Stream, code: StreamCode, message: string): void {
    this.deps.counters.resetsSent++;
    this.deps.out.control(encodeReset(stream.id, code, message));
    if (code === StreamCode.PROTOCOL || code === StreamCode.FLOW_CONTROL) {
      this.deps.streamError(stream.id, new StreamFaultError(code, message));
    }
  }
  released(stream: Stream, reason: StreamCloseReason): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    this.deps.counters.streamsClosed++;
    this.deps.released(stream, reason);
  }
  handlerFailed(stream: Stream, error: unknown): void {
    this.deps.streamError(stream.id, new SessionInternalError("stream handler threw", { cause: error }));
  }
}
