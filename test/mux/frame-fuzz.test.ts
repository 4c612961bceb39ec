import { expect, test } from "bun:test";
import fc from "fast-check";
import { Secret } from "../../src/secret.ts";
import { FrameType, GoAwayCode, StreamCode } from "../../src/mux/const.ts";
import { ProtocolError } from "../../src/mux/errors.ts";
import { decodeMessage, type Frame } from "../../src/mux/frame-decoder.ts";
import * as enc from "../../src/mux/frame-encoder.ts";

/** xorshift32: fast, seeded, reproducible. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function corpus(): Uint8Array[] {
  const frames = [
    enc.encodeOpen(1, "wiki", "wiki.corp.example", 443),
    enc.encodeOpenResult(1, StreamCode.OK),
    enc.encodeOpenResult(2, StreamCode.DNS_FAILURE, "no such host"),
    enc.encodeData(3, new Uint8Array(100).fill(7)),
    enc.encodeData(3, new Uint8Array(0)),
    enc.encodeWindowUpdate(3, 65536),
    enc.encodeFin(3),
    enc.encodeReset(4, StreamCode.CANCELLED, "gone"),
    enc.encodePing(new Uint8Array(8).fill(1)),
    enc.encodePong(new Uint8Array(8).fill(2)),
    enc.encodeGoAway(GoAwayCode.DRAINING, "bye"),
    enc.encodeTokenUpdate(new Secret("token-value")),
    enc.encodeHealthReport({ apps: [{ name: "a", servers: [{ address: "10.0.0.1:80", healthy: false }] }] }),
    enc.encodeConfigChanged("v1"),
  ];
  const joined = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    joined.set(f, at);
    at += f.length;
  }
  return [...frames, joined];
}

test("1,000,000 random and mutated messages: only ProtocolError escapes, and decoding always ends", () => {
  const next = prng(0xc0ffee);
  const seeds = corpus();
  const scratch = new Uint8Array(4096);
  const view = new DataView(scratch.buffer);
  const outcomes = { decoded: 0, rejected: 0 };
  const unexpected: unknown[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    const r = next();
    const seed = seeds[r % seeds.length]!;
    let size: number;
    switch ((r >>> 8) % 6) {
      case 0: // random bytes
        size = next() % 64;
        for (let j = 0; j < size; j++) scratch[j] = next();
        break;
      case 1: // plausible header, random length and payload size
        size = 12 + (next() % 40);
        for (let j = 0; j < size; j++) scratch[j] = next();
        scratch[0] = next() % 14;
        scratch[1] = next() % 8 === 0 ? 1 : 0;
        scratch[2] = scratch[3] = 0;
        view.setUint32(4, next() % 3 === 0 ? 0 : next() % 5);
        view.setUint32(8, next() % 4 === 0 ? next() : next() % 48);
        break;
      case 2: // bit flips
        scratch.set(seed);
        size = seed.length;
        for (let k = 1 + (next() % 4); k > 0; k--) scratch[next() % size]! ^= 1 << (next() % 8);
        break;
      case 3: // truncation
        scratch.set(seed);
        size = next() % seed.length;
        break;
      case 4: // huge or off-by-one lengths in the first header
        scratch.set(seed);
        size = seed.length;
        view.setUint32(8, next() % 2 ? next() : view.getUint32(8) + 1 - (next() % 3));
        break;
      default: // random byte overwrite inside a valid multi-frame message
        scratch.set(seed);
        size = seed.length;
        scratch[next() % size] = next();
        break;
    }
    const bytes = scratch.subarray(0, size);
    let frames = 0;
    try {
      decodeMessage(bytes, () => void frames++);
      outcomes.decoded++;
    } catch (err) {
      if (err instanceof ProtocolError) outcomes.rejected++;
      else if (unexpected.length < 5) unexpected.push(err);
    }
    if (frames > Math.floor(size / 12)) unexpected.push(new Error(`decoded ${frames} frames from ${size} bytes`));
  }
  expect(unexpected).toEqual([]);
  // Both paths were exercised: the mutations are not all trivially rejected.
  expect(outcomes.decoded).toBeGreaterThan(10_000);
  expect(outcomes.rejected).toBeGreaterThan(100_000);
  // No bound on the elapsed time: "always ends" is the loop finishing at all (a decoder that loops forever
  // hangs the run); how fast it decodes is the benchmark's business (16.6 s seen on a loaded 2-core machine).
}, 120_000);

const streamId = fc.integer({ min: 1, max: 0xffffffff });
const shortText = fc.string({ maxLength: 40 });
const code = fc.constantFrom(...Object.values(StreamCode));
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    type: fc.constant(FrameType.OPEN),
    streamId,
    app: shortText,
    host: shortText,
    port: fc.integer({ min: 0, max: 65535 }),
  }),
  fc.record({ type: fc.constant(FrameType.OPEN_RESULT), streamId, code, message: shortText }),
  fc.record({
    type: fc.constant(FrameType.DATA),
    streamId,
    payload: fc.uint8Array({ maxLength: 300 }),
    creditExhausted: fc.boolean(),
  }),
  fc.record({
    type: fc.constant(FrameType.WINDOW_UPDATE),
    streamId,
    increment: fc.integer({ min: 1, max: 0xffffffff }),
  }),
  fc.record({ type: fc.constant(FrameType.FIN), streamId }),
  fc.record({ type: fc.constant(FrameType.RESET), streamId, code, message: shortText }),
  fc.record({
    type: fc.constant(FrameType.PING),
    streamId: fc.constant(0 as const),
    opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant(FrameType.PONG),
    streamId: fc.constant(0 as const),
    opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant(FrameType.GO_AWAY),
    streamId: fc.constant(0 as const),
    code: fc.constantFrom(...Object.values(GoAwayCode)),
    message: shortText,
  }),
  fc.record({
    type: fc.constant(FrameType.CONFIG_CHANGED),
    streamId: fc.constant(0 as const),
    catalogVersion: fc.string({ minLength: 1, maxLength: 60 }),
  }),
);

test("any valid frame survives encode then decode unchanged", () => {
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), (frames) => {
      const parts = frames.map((f) => enc.encodeFrame(f));
      const message = new Uint8Array(Buffer.concat(parts));
      const decoded: Frame[] = [];
      decodeMessage(message, (f) => void decoded.push(f));
      expect(decoded.length).toBe(frames.length);
      decoded.forEach((f, i) => {
        // Lone surrogates in random strings do not survive UTF-8; compare re-encoded bytes instead.
        expect(Buffer.from(enc.encodeFrame(f)).equals(Buffer.from(parts[i]!))).toBe(true);
      });
    }),
    { numRuns: 500, seed: 42 },
  );
});
