/**
 * `FrameScheduler` decides what goes into the next transport message: queued control frames first
 * (PONG, WINDOW_UPDATE, RESET, OPEN, OPEN_RESULT…, in the order they were queued), then DATA by
 * round-robin over the streams that have data covered by credit, one frame per stream per turn, so one
 * bulk stream cannot starve the others. Many frames go into one message, up to a byte budget.
 * Payload bytes are never copied: a DATA frame is a 12-byte header from a shared slab followed by
 * views of the stream's chunks. The scheduler holds no I/O; the session sends what it builds.
 */
import { DataFlag, FrameType, HEADER_BYTES } from "./const.ts";
import { writeHeader } from "./frame-encoder.ts";

/** What the scheduler needs from a stream (implemented by `Stream`). */
export interface SendSource {
  readonly id: number;
  /** True while the source sits in the ready ring; owned by the scheduler. */
  scheduled: boolean;
  /** Has DATA covered by credit, or a FIN that is due. */
  readonly sendable: boolean;
  /** Pushes views of at most `max` bytes (within credit) onto `out`; returns how many bytes. */
  pullData(max: number, out: Uint8Array[]): number;
  /** No credit left after the last pull: that frame is flagged CREDIT_EXHAUSTED (PROTOCOL §5.5). */
  readonly creditExhausted: boolean;
  /** FIN should be written now: end was requested and every queued byte has been pulled. */
  readonly finDue: boolean;
  /** Called once the FIN header has been written into a message. */
  finWritten(): void;
}

export interface OutgoingMessage {
  readonly parts: Uint8Array[];
  readonly bytes: number;
  readonly frames: number;
  readonly dataBytes: number;
}

/** Headers are carved from slabs of this many bytes, so a message costs a few allocations, not one per frame. */
const SLAB_BYTES = HEADER_BYTES * 128;
/** Do not start a DATA frame in the last few bytes of a message: a tiny fragment wastes a header. */
const MIN_FRAGMENT = 1024;

/** A FIFO ring buffer (Array#shift is O(n) for long arrays; 10,000 streams may be ready at once). */
class Ring<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }
  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    return item;
  }
  #grow(): void {
    const bigger: (T | undefined)[] = new Array(this.#items.length * 2);
    for (let i = 0; i < this.#size; i++) bigger[i] = this.#items[(this.#head + i) & (this.#items.length - 1)];
    this.#items = bigger;
    this.#head = 0;
  }
}

export class FrameScheduler {
  #control: Uint8Array[] = [];
  #controlHead = 0;
  /** Bytes of control frames queued and not yet put into a message. */
  controlBytes = 0;
  readonly #ready = new Ring<SendSource>();
  #slab = new Uint8Array(0);
  #slabOffset = 0;
  /** Round-robin passes so far (a pass visits every stream that was ready when it began). */
  turns = 0;

  constructor(
    /** DATA payload per frame when a single stream is ready. */
    private readonly soloFrameBytes: number,
    /** DATA payload per frame when several streams compete. */
    private readonly fairFrameBytes: number,
  ) {}

  get idle(): boolean {
    return this.#controlHead === this.#control.length && this.#ready.size === 0;
  }

  enqueueControl(frame: Uint8Array): void {
    this.#control.push(frame);
    this.controlBytes += frame.length;
  }

  /** Puts `source` at the tail of the ring unless it is already there. */
  markReady(source: SendSource): void {
    if (source.scheduled) return;
    source.scheduled = true;
    this.#ready.push(source);
  }

  /** Builds the next message of at most `budget` bytes, or returns undefined when nothing is queued. */
  buildMessage(budget: number): OutgoingMessage | undefined {
    if (this.idle) return undefined;
    const parts: Uint8Array[] = [];
    let bytes = 0;
    let frames = 0;
    while (this.#controlHead < this.#control.length) {
      const frame = this.#control[this.#controlHead]!;
      if (frames > 0 && bytes + frame.length > budget) break;
      this.#controlHead++;
      this.controlBytes -= frame.length;
      parts.push(frame);
      bytes += frame.length;
      frames++;
    }
    if (this.#controlHead === this.#control.length) {
      this.#control = [];
      this.#controlHead = 0;
    }
    let dataBytes = 0;
    outer: while (this.#ready.size > 0) {
      this.turns++;
      const ready = this.#ready.size;
      const frameBytes = ready > 1 ? this.fairFrameBytes : this.soloFrameBytes;
      for (let i = 0; i < ready; i++) {
        const room = budget - bytes - 2 * HEADER_BYTES;
        if (room < Math.min(frameBytes, MIN_FRAGMENT)) break outer;
        const source = this.#ready.shift()!;
        source.scheduled = false;
        if (!source.sendable) continue;
        const header = this.#header();
        parts.push(header);
        const length = source.pullData(Math.min(frameBytes, room), parts);
        if (length > 0) {
          writeHeader(
            header,
            0,
            FrameType.DATA,
            source.id,
            length,
            source.creditExhausted ? DataFlag.CREDIT_EXHAUSTED : 0,
          );
          bytes += HEADER_BYTES + length;
          dataBytes += length;
          frames++;
        } else {
          parts.pop();
          this.#slabOffset -= HEADER_BYTES;
        }
        if (source.finDue) {
          const fin = this.#header();
          writeHeader(fin, 0, FrameType.FIN, source.id, 0);
          parts.push(fin);
          bytes += HEADER_BYTES;
          frames++;
          source.finWritten();
        }
        if (source.sendable) this.markReady(source);
      }
    }
    return frames === 0 ? undefined : { parts, bytes, frames, dataBytes };
  }

  /** A 12-byte view from the current slab; a new slab when it is used up (old ones stay with the transport). */
  #header(): Uint8Array {
    if (this.#slabOffset + HEADER_BYTES > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabOffset = 0;
    }
    const view = this.#slab.subarray(this.#slabOffset, this.#slabOffset + HEADER_BYTES);
    this.#slabOffset += HEADER_BYTES;
    return view;
  }
}
