import { describe, expect, test } from "bun:test";
import { WriteQueue } from "../../../src/transport/websocket/write-queue.ts";

/** A socket that takes at most `budget` bytes per call and records what it took. */
function sink(budget = Number.POSITIVE_INFINITY) {
  const out: number[] = [];
  let calls = 0;
  return {
    out,
    get calls() {
      return calls;
    },
    budget,
    write(buf: Uint8Array, offset: number, length: number): number {
      calls++;
      const n = Math.min(length, this.budget);
      out.push(...buf.subarray(offset, offset + n));
      return n;
    },
  };
}

function put(q: WriteQueue, bytes: number[]): void {
  const { buf, offset } = q.reserve(bytes.length);
  buf.set(bytes, offset);
}

describe("WriteQueue", () => {
  test("frames reserved back to back leave in one write", () => {
    const q = new WriteQueue(64, 2);
    put(q, [1, 2, 3]);
    put(q, [4, 5]);
    const s = sink();
    expect(q.flush(s.write.bind(s))).toBe(true);
    expect(s.calls).toBe(1);
    expect(s.out).toEqual([1, 2, 3, 4, 5]);
    expect(q.size).toBe(0);
  });

  test("a partial write keeps the rest and resumes at the exact byte; size is exact throughout", () => {
    const q = new WriteQueue(8, 2);
    const data = Array.from({ length: 20 }, (_, i) => i);
    for (let i = 0; i < 20; i += 5) put(q, data.slice(i, i + 5));
    expect(q.size).toBe(20);
    const s = sink(3);
    const w = s.write.bind(s);
    expect(q.flush(w)).toBe(false);
    expect(q.size).toBe(20 - s.out.length);
    s.budget = 7;
    q.flush(w);
    expect(q.size).toBe(20 - s.out.length);
    s.budget = Number.POSITIVE_INFINITY;
    expect(q.flush(w)).toBe(true);
    expect(s.out).toEqual(data);
  });

  test("a socket that takes nothing (or returns -1) leaves the queue unchanged", () => {
    const q = new WriteQueue(8, 2);
    put(q, [1, 2]);
    expect(q.flush(() => -1)).toBe(false);
    expect(q.size).toBe(2);
  });

  test("a frame larger than a staging buffer gets its own chunk and stays in order", () => {
    const q = new WriteQueue(4, 2);
    put(q, [1]);
    put(q, [2, 3, 4, 5, 6, 7]);
    put(q, [8]);
    const s = sink();
    q.flush(s.write.bind(s));
    expect(s.out).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("pushFront goes ahead of unstarted data but after a partly written frame", () => {
    const q = new WriteQueue(4, 2);
    put(q, [1, 2, 3, 4]);
    put(q, [5, 6]);
    const s = sink(2);
    q.flush(s.write.bind(s)); // [1,2] written, head chunk partly written
    q.pushFront(Uint8Array.of(99));
    s.budget = Number.POSITIVE_INFINITY;
    q.flush(s.write.bind(s));
    expect(s.out).toEqual([1, 2, 3, 4, 99, 5, 6]);
  });

  test("pushFront with nothing started goes first; later frames still go last", () => {
    const q = new WriteQueue(16, 2);
    put(q, [1]);
    q.pushFront(Uint8Array.of(99));
    put(q, [2]);
    const s = sink();
    q.flush(s.write.bind(s));
    expect(s.out).toEqual([99, 1, 2]);
  });

  test("dropUnstarted keeps only a partly written chunk", () => {
    const q = new WriteQueue(4, 2);
    put(q, [1, 2, 3, 4]);
    put(q, [5, 6]);
    const s = sink(1);
    q.flush(s.write.bind(s));
    q.dropUnstarted();
    expect(q.size).toBe(3);
    s.budget = Number.POSITIVE_INFINITY;
    q.flush(s.write.bind(s));
    expect(s.out).toEqual([1, 2, 3, 4]);
  });

  test("written staging buffers are reused", () => {
    const q = new WriteQueue(8, 1);
    const first = q.reserve(4).buf;
    q.flush(() => 4);
    expect(q.reserve(4).buf).toBe(first);
  });
});
