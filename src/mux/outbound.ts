/**
 * `Outbound` moves frames from the scheduler to the transport. It flushes once per event-loop turn
 * (`setImmediate`, which runs after every I/O callback of the turn), so every frame queued during the
 * turn — the writes of 50 app sockets that were all readable at once, the answers to one incoming
 * message — shares as few messages, TLS records and syscalls as possible. A microtask flush ran after
 * each socket's callback instead: 50 readable app sockets cost 50 sends to the tunnel where one does
 * (strace), and moving to one per turn raised 1 KiB requests/s at 50 concurrent by ~22% and new
 * streams/s by 14–29% (BENCHMARKS.md, 2026-12-03). It stops when `send` returns false and resumes on
 * the transport's drain.
 */
import { MAX_CONTROL_BACKLOG_BYTES, type SessionConfig } from "./config.ts";
import { ControlBacklogError } from "./errors.ts";
import { FrameScheduler, type SendSource } from "./scheduler.ts";
import type { SessionCounters } from "./session-stats.ts";
import type { Transport } from "../transport/transport.ts";

export class Outbound {
  readonly scheduler: FrameScheduler;
  #flushScheduled = false;
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

  ready(source: SendSource): void {
    this.scheduler.markReady(source);
    this.#schedule();
  }

  /** The transport's `drain`. */
  drained(): void {
    this.#blocked = false;
    this.#schedule();
  }

  /** Last flush before closing: what is queued goes out regardless of backpressure; then nothing more. */
  finalFlush(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#send(true);
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#blocked || this.#stopped) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#stopped) return;
    try {
      this.#send(false);
    } catch (err) {
      this.onError(err);
    }
  };

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
