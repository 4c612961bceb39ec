/**
 * `PendingOpens` is the gateway side of opening streams (PROTOCOL §5.2, §5.4): it sends OPEN with the next
 * increasing id, settles the caller's promise on OPEN_RESULT (or a RESET instead of it), and expires
 * opens that get no answer. Every open gets the same timeout, so deadlines are in creation order and
 * the earliest is always at the head: the session's single timer needs no per-stream timers.
 */
import { StreamCode } from "./const.ts";
import { OpenRejectedError, OpenTimeoutError } from "./errors.ts";
import type { OpenResultFrame } from "./frame-decoder.ts";
import { encodeOpen } from "./frame-encoder.ts";
import type { Outbound } from "./outbound.ts";
import type { SessionCounters } from "./session-stats.ts";
import type { OpenRequest, Stream, StreamCloseReason } from "./stream.ts";
import type { StreamRegistry } from "./stream-registry.ts";

interface PendingOpen {
  readonly stream: Stream;
  readonly deadline: number;
  readonly resolve: (stream: Stream) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

export class PendingOpens {
  readonly #byId = new Map<number, PendingOpen>();
  #fifo: PendingOpen[] = [];
  #head = 0;
  #lastId = 0;

  constructor(
    private readonly streams: StreamRegistry,
    private readonly out: Outbound,
    private readonly counters: SessionCounters,
    private readonly timeoutMs: number,
  ) {}

  /** Sends OPEN for a new stream; the promise settles on OPEN_RESULT, RESET, timeout or tunnel loss. */
  open(request: OpenRequest, now: number): Promise<Stream> {
    let frame: Uint8Array;
    try {
      frame = encodeOpen(this.#lastId + 1, request.app, request.host, request.port);
    } catch (err) {
      return Promise.reject(err);
    }
    const stream = this.streams.create(++this.#lastId, request, false);
    return new Promise<Stream>((resolve, reject) => {
      const entry: PendingOpen = { stream, deadline: now + this.timeoutMs, resolve, reject, settled: false };
      this.#byId.set(stream.id, entry);
      this.#fifo.push(entry);
      this.out.control(frame);
    });
  }

  /** OPEN_RESULT for `stream`; one for a stream that is not opening is a stream protocol error. */
  onOpenResult(stream: Stream, frame: OpenResultFrame): void {
    const entry = this.#take(stream.id);
    if (!entry) return stream.reset(StreamCode.PROTOCOL, "OPEN_RESULT for a stream that is not opening");
    stream.handleOpenResult(frame.code, frame.message);
    if (frame.code === StreamCode.OK) return entry.resolve(stream);
    this.counters.openFailed(frame.code);
    entry.reject(new OpenRejectedError(frame.code, frame.message));
  }

  /**
   * A stream ended; if it was still opening (a RESET instead of OPEN_RESULT, a stream protocol error,
   * the tunnel going down), its open fails with that reason.
   */
  released(stream: Stream, reason: StreamCloseReason): void {
    const entry = this.#take(stream.id);
    if (!entry) return;
    if (reason.kind === "tunnel") return entry.reject(reason.error);
    const code = reason.kind === "fin" ? StreamCode.INTERNAL : reason.code;
    this.counters.openFailed(code);
    entry.reject(new OpenRejectedError(code, reason.kind === "fin" ? "stream ended while opening" : reason.message));
  }

  /** Rejects and resets (CANCELLED) every open whose deadline has passed. */
  expire(now: number): void {
    this.#skipSettled();
    while (this.#head < this.#fifo.length && this.#fifo[this.#head]!.deadline <= now) {
      const entry = this.#fifo[this.#head++]!;
      if (entry.settled) continue;
      this.#take(entry.stream.id);
      this.counters.openFailed(StreamCode.TIMEOUT);
      entry.reject(new OpenTimeoutError(this.timeoutMs));
      entry.stream.reset(StreamCode.CANCELLED, "open timed out");
    }
  }

  /** Earliest deadline still pending (Infinity when none). */
  nextDeadline(): number {
    this.#skipSettled();
    return this.#head < this.#fifo.length ? this.#fifo[this.#head]!.deadline : Infinity;
  }

  rejectAll(error: Error): void {
    for (const entry of this.#byId.values()) entry.reject(error);
    this.#byId.clear();
    this.#fifo = [];
    this.#head = 0;
  }

  #take(id: number): PendingOpen | undefined {
    const entry = this.#byId.get(id);
    if (!entry) return undefined;
    this.#byId.delete(id);
    entry.settled = true;
    return entry;
  }

  #skipSettled(): void {
    while (this.#head < this.#fifo.length && this.#fifo[this.#head]!.settled) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#fifo.length) {
      this.#fifo = this.#fifo.slice(this.#head);
      this.#head = 0;
    }
  }
}
