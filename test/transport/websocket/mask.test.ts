import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { maskInPlace, MaskKeySource } from "../../../src/transport/websocket/mask.ts";

/** The RFC 6455 §5.3 definition, one byte at a time. */
function naiveMask(buf: Uint8Array, start: number, end: number, key: number): void {
  const k = [key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff];
  for (let i = start; i < end; i++) buf[i] = (buf[i] ?? 0) ^ (k[(i - start) & 3] ?? 0);
}

describe("maskInPlace", () => {
  test("equals the byte-wise definition for any alignment, range and key", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.nat(7),
        fc.nat(300),
        fc.nat(300),
        fc.integer({ min: 0, max: 0xffffffff }),
        (data, viewOffset, a, b, key) => {
          const backing = new Uint8Array(data.length + 8);
          backing.set(data, viewOffset);
          const view = backing.subarray(viewOffset, viewOffset + data.length); // unaligned byteOffset
          const start = Math.min(a, b) % (data.length + 1);
          const end = Math.max(start, Math.max(a, b) % (data.length + 1));
          const expected = new Uint8Array(view);
          naiveMask(expected, start, end, key);
          maskInPlace(view, start, end, key);
          expect(Buffer.from(view).equals(Buffer.from(expected))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("masking twice restores the data", () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    const copy = new Uint8Array(data);
    maskInPlace(copy, 3, 997, 0xcafebabe);
    expect(Buffer.from(copy).equals(Buffer.from(data))).toBe(false);
    maskInPlace(copy, 3, 997, 0xcafebabe);
    expect(Buffer.from(copy).equals(Buffer.from(data))).toBe(true);
  });

  test("a zero key leaves the data untouched", () => {
    const data = Uint8Array.from({ length: 64 }, (_, i) => i);
    maskInPlace(data, 0, 64, 0);
    expect(data).toEqual(Uint8Array.from({ length: 64 }, (_, i) => i));
  });
});

describe("MaskKeySource", () => {
  test("keys are fresh: 1000 draws are not all the same and span the pool refill", () => {
    const source = new MaskKeySource();
    const keys = new Set(Array.from({ length: 1000 }, () => source.nextKey()));
    expect(keys.size).toBeGreaterThan(990);
  });
});
