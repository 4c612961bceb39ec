/**
 * `FrameWriter` is the sending half of a WebSocket connection: it encodes frames straight into the
 * `WriteQueue` (masking them when it is the client), flushes once per microtask so everything sent
 * in one tick leaves in as few `socket.write` calls as possible, stops at a partial write and resumes
 * on the socket's drain. It knows nothing of the close handshake; the owner learns about progress
 * through `onFlushed`.
 */
import { frameHeaderLength, encodeFrame, Opcode, writeFrameHeader, type ControlOpcode } from "./frame-codec.ts";
import { maskInPlace, MaskKeySource } from "./mask.ts";
import { WriteQueue, type WriteFn } from "./write-queue.ts";

export interface FrameWriterOptions {
  /** Writes to the socket, returns the bytes it took. */
  write: WriteFn;
  /** Client role: every frame masked with a fresh key (RFC 6455 §5.3). */
  masked: boolean;
  batchBytes: number;
  poolBuffers: number;
  /** Called after each flush attempt; `empty` when everything was taken. */
  onFlushed(empty: boolean): void;
}

export class FrameWriter {
  readonly #queue: WriteQueue;
  readonly #masks: MaskKeySource | null;
  readonly #options: FrameWriterOptions;
  #writable = true;
  #scheduled = false;
  #stopped = false;
  readonly #write: WriteFn;

  constructor(options: FrameWriterOptions) {
    this.#options = options;
    this.#queue = new WriteQueue(options.batchBytes, options.poolBuffers);
    this.#masks = options.masked ? new MaskKeySource() : null;
    this.#write = options.write;
  }

  /** Bytes accepted and not yet taken by the socket. */
  get size(): number {
    return this.#queue.size;
  }

  /** Queues raw bytes (the server's 101 answer, written before any frame). */
  raw(bytes: Uint8Array): void {
    const { buf, offset } = this.#queue.reserve(bytes.length);
    buf.set(bytes, offset);
    this.#schedule();
  }

  /** Queues one binary message made of `parts`, copied (and masked) into the queue. */
  message(parts: readonly Uint8Array[], length: number): void {
    const maskKey = this.#masks ? this.#masks.nextKey() : null;
    const headerLength = frameHeaderLength(length, maskKey !== null);
    const { buf, offset } = this.#queue.reserve(headerLength + length);
    writeFrameHeader(buf, offset, Opcode.binary, true, length, maskKey);
    let p = offset + headerLength;
    for (const part of parts) {
      buf.set(part, p);
      p += part.length;
    }
    if (maskKey !== null) maskInPlace(buf, offset + headerLength, p, maskKey);
    this.#schedule();
  }

  /** Queues a control frame, ahead of unstarted data when `urgent` (pongs), else after it (close). */
  control(opcode: ControlOpcode, payload: Uint8Array, urgent: boolean): void {
    const frame = encodeFrame(opcode, payload, { maskKey: this.#masks ? this.#masks.nextKey() : null });
    if (urgent) {
      this.#queue.pushFront(frame);
    } else {
      const { buf, offset } = this.#queue.reserve(frame.length);
      buf.set(frame, offset);
    }
    this.#schedule();
  }

  /** Forgets frames not yet started (the connection is failing). */
  dropUnstarted(): void {
    this.#queue.dropUnstarted();
  }

  /** The socket can take more. */
  drained(): void {
    this.#writable = true;
    this.flush();
  }

  flush(): void {
    if (this.#stopped || !this.#writable) return;
    const empty = this.#queue.flush(this.#write);
    if (!empty) this.#writable = false; // the socket took less than offered: wait for its drain
    this.#options.onFlushed(empty);
  }

  /** Releases the buffers; nothing is written after this. */
  stop(): void {
    this.#stopped = true;
    this.#queue.clear();
  }

  #schedule(): void {
    if (this.#scheduled || !this.#writable || this.#stopped) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.flush();
    });
  }
}
