/**
 * `Outbound` moves frames from the scheduler to the transport. Small writes are flushed once per
 * event-loop turn (`setImmediate`, which runs after every I/O callback of the turn), so the frames of a
 * turn — the writes of 50 app sockets that were all readable at once, the answers to one incoming
 * message — share as few messages, TLS records and syscalls as possible. A microtask flush runs after
 * each socket's callback instead: 50 readable app sockets cost 50 sends to the tunnel where one does
 * (strace); one per turn raised 1 KiB requests/s at 50 concurrent by ~22% and new streams/s by 14–29%.
 * Bulk is not held for the turn: a stream with BULK_FLUSH_BYTES queued, and a drained transport, flush
 * at the next microtask, so the peer starts on a big read while we read the next socket — holding 64
 * bulk streams' reads to the end of the turn cost ~20% of their aggregate (BENCHMARKS.md, 2026-12-03).
 * It stops when `send` returns false and resumes on the transport's drain.
 */
import { MAX_CONTROL_BACKLOG_BYTES, type SessionConfig } from "./config.ts";
import { ControlBacklogError } from "./errors.ts";
import { FrameScheduler, type SendSource } from "./scheduler.ts";
import type { SessionCounters } from "./session-stats.ts";
import type { Transport } from "../transport/transport.ts";

/** Queued bytes from which a stream's data is sent at the next microtask rather than at the end of the turn. */
export const BULK_FLUSH_BYTES = 16 * 1024;

/** What `Outbound` needs to know about a ready stream: how much it has queued. */
export interface ReadySource extends SendSource {
  readonly queuedBytes: number;
}

export class Outbound {
  readonly scheduler: FrameScheduler;
  #flushScheduled = false;
  #soonScheduled = false;
  #blocked = false;
  #stopped = false;

  constructor(
    private readonly transport: Transport,
    private readonly config: SessionConfig,
    private readonly counters: SessionCounters,
    /** Sending failed (a bug, a broken transport, or a peer that never reads); the session closes. */
    private readonly onError: (err: unknown) => void,
  ) {
    this.scheduler = new FrameScheduler(config.maxFrameBytes, config.fairFrameBytes);
  }

  control(frame: Uint8Array): void {
    if (this.#stopped) return;
    this.scheduler.enqueueControl(frame);
    if (this.scheduler.controlBytes > MAX_CONTROL_BACKLOG_BYTES) {
      this.#stopped = true;
      this.onError(new ControlBacklogError(this.scheduler.controlBytes));
      return;
    }
    this.#schedule();
  }

  ready(source: ReadySource): void {
    this.scheduler.markReady(source);
    if (source.queuedBytes >= BULK_FLUSH_BYTES) this.#scheduleSoon();
    else this.#schedule();
  }

  /** The transport's `drain`. */
  drained(): void {
    this.#blocked = false;
    this.#scheduleSoon();
  }

  /** Last flush before closing: what is queued goes out regardless of backpressure; then nothing more. */
  finalFlush(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#send(true);
  }

  /** At the end of this event-loop turn. */
  #schedule(): void {
    if (this.#flushScheduled || this.#blocked || this.#stopped) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushAtTurnEnd);
  }

  /** At the next microtask (bulk); the turn-end flush, if one is due, then finds less or nothing to send. */
  #scheduleSoon(): void {
    if (this.#soonScheduled || this.#blocked || this.#stopped) return;
    this.#soonScheduled = true;
    queueMicrotask(this.#flushSoon);
  }

  #flushAtTurnEnd = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flushSoon = (): void => {
    this.#soonScheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#stopped) return;
    try {
      this.#send(false);
    } catch (err) {
      this.onError(err);
    }
  }

  #send(ignoreBackpressure: boolean): void {
    while (ignoreBackpressure || !this.#blocked) {
      const message = this.scheduler.buildMessage(this.config.maxMessageBytes);
      if (!message) return;
      this.counters.messagesOut++;
      this.counters.framesOut += message.frames;
      this.counters.bytesOut += message.dataBytes;
      if (!this.transport.send(message.parts)) this.#blocked = true;
    }
  }
}
