/**
 * Outgoing bytes of one connection, ready to write. Frames are encoded straight into pooled staging
 * buffers (`reserve`), so many small messages leave in one `socket.write`; a frame larger than a
 * staging buffer gets its own. `size` is exact: bytes accepted and not yet taken by the socket.
 * A partial write keeps the rest in place and resumes there; nothing is ever dropped except by
 * `dropUnstarted` when the connection is failing.
 */

interface Chunk {
  buf: Uint8Array;
  /** First byte not yet written. */
  start: number;
  /** End of the bytes reserved so far. */
  end: number;
  /** A staging buffer: appendable while last in the queue, returned to the pool once written. */
  pooled: boolean;
}

/** Writes `buf[offset, offset+length)`, returns how many bytes the socket took (Bun semantics). */
export type WriteFn = (buf: Uint8Array, offset: number, length: number) => number;

export class WriteQueue {
  readonly #chunks: Chunk[] = [];
  readonly #pool: Uint8Array[] = [];
  #size = 0;

  constructor(
    private readonly batchBytes: number,
    private readonly poolBuffers: number,
  ) {}

  /** Bytes waiting to be written. */
  get size(): number {
    return this.#size;
  }

  /** Reserves `n` contiguous bytes at the tail; the caller fills `buf[offset, offset+n)` before the next flush. */
  reserve(n: number): { buf: Uint8Array; offset: number } {
    const last = this.#chunks[this.#chunks.length - 1];
    this.#size += n;
    if (last?.pooled && last.buf.length - last.end >= n) {
      const offset = last.end;
      last.end += n;
      return { buf: last.buf, offset };
    }
    if (n > this.batchBytes) {
      const buf = new Uint8Array(n);
      this.#chunks.push({ buf, start: 0, end: n, pooled: false });
      return { buf, offset: 0 };
    }
    const buf = this.#pool.pop() ?? new Uint8Array(this.batchBytes);
    this.#chunks.push({ buf, start: 0, end: n, pooled: true });
    return { buf, offset: 0 };
  }

  /**
   * Queues `frame` ahead of everything not yet started (control frames that must not wait behind
   * bulk data). A chunk already partly written stays first: its frame must be finished.
   */
  pushFront(frame: Uint8Array): void {
    const head = this.#chunks[0];
    const at = head && head.start > 0 ? 1 : 0;
    // Not pooled: it must not become an append target, or later frames would jump ahead.
    this.#chunks.splice(at, 0, { buf: frame, start: 0, end: frame.length, pooled: false });
    this.#size += frame.length;
  }

  /** Drops every chunk not yet started (keeps a partly written one so its frame completes). */
  dropUnstarted(): void {
    const keep = this.#chunks[0] && this.#chunks[0].start > 0 ? 1 : 0;
    for (const c of this.#chunks.splice(keep)) this.#size -= c.end - c.start;
  }

  /** Writes as much as `write` takes. Returns true when the queue is empty. */
  flush(write: WriteFn): boolean {
    while (this.#chunks.length > 0) {
      const c = this.#chunks[0] as Chunk;
      const want = c.end - c.start;
      const n = want > 0 ? write(c.buf, c.start, want) : 0;
      const taken = Math.max(n, 0);
      c.start += taken;
      this.#size -= taken;
      if (taken < want) return false;
      this.#chunks.shift();
      if (c.pooled && this.#pool.length < this.poolBuffers) this.#pool.push(c.buf);
    }
    return true;
  }

  /** Releases every buffer (connection gone). */
  clear(): void {
    this.#chunks.length = 0;
    this.#pool.length = 0;
    this.#size = 0;
  }
}
