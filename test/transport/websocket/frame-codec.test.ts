import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { WebSocketProtocolError } from "../../../src/transport/websocket/errors.ts";
import { isOneLine } from "../../support/printable.ts";
import {
  encodeClosePayload,
  encodeFrame,
  FrameDecoder,
  frameHeaderLength,
  Opcode,
  parseClosePayload,
  writeFrameHeader,
  type ControlOpcode,
  type DataOpcode,
} from "../../../src/transport/websocket/frame-codec.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** RFC 6455 §5.7 masking key 37 fa 21 3d. */
const RFC_KEY = 0x37fa213d;

type Event =
  | { kind: "message"; opcode: DataOpcode; data: string }
  | { kind: "control"; opcode: ControlOpcode; data: string };

/** Decodes `chunks` (copied: the decoder unmasks in place) and records events as hex. */
function decode(
  chunks: readonly Uint8Array[],
  options: { expectMasked: boolean; maxMessageBytes?: number; reuseBuffer?: boolean },
): Event[] {
  const decoder = new FrameDecoder(options);
  const events: Event[] = [];
  const sink = {
    message: (opcode: DataOpcode, data: Uint8Array) => events.push({ kind: "message", opcode, data: toHex(data) }),
    control: (opcode: ControlOpcode, data: Uint8Array) => events.push({ kind: "control", opcode, data: toHex(data) }),
  };
  for (const c of chunks) decoder.push(new Uint8Array(c), sink); // a copy: Buffer#slice would share memory
  return events;
}

function decodeError(bytes: Uint8Array, expectMasked: boolean, maxMessageBytes?: number): WebSocketProtocolError {
  try {
    decode([bytes], { expectMasked, ...(maxMessageBytes ? { maxMessageBytes } : {}) });
  } catch (err) {
    if (err instanceof WebSocketProtocolError) return err;
    throw err;
  }
  throw new Error("expected a protocol error");
}

describe("RFC 6455 §5.7 fixtures", () => {
  test("an unmasked single-frame text message decodes on the client side", () => {
    expect(decode([hex("81 05 48656c6c6f")], { expectMasked: false })).toEqual([
      { kind: "message", opcode: Opcode.text, data: toHex(Buffer.from("Hello")) },
    ]);
  });

  test("a masked single-frame text message encodes and decodes with key 37fa213d", () => {
    const wire = hex("81 85 37fa213d 7f9f4d5158");
    expect(toHex(encodeFrame(Opcode.text, Buffer.from("Hello"), { maskKey: RFC_KEY }))).toBe(toHex(wire));
    expect(decode([wire], { expectMasked: true })[0]).toEqual({
      kind: "message",
      opcode: Opcode.text,
      data: toHex(Buffer.from("Hello")),
    });
  });

  test("a fragmented unmasked text message is reassembled", () => {
    expect(decode([hex("01 03 48656c"), hex("80 02 6c6f")], { expectMasked: false })).toEqual([
      { kind: "message", opcode: Opcode.text, data: toHex(Buffer.from("Hello")) },
    ]);
  });

  test("ping (unmasked) and pong (masked) control frames", () => {
    expect(decode([hex("89 05 48656c6c6f")], { expectMasked: false })).toEqual([
      { kind: "control", opcode: Opcode.ping, data: toHex(Buffer.from("Hello")) },
    ]);
    const pong = hex("8a 85 37fa213d 7f9f4d5158");
    expect(toHex(encodeFrame(Opcode.pong, Buffer.from("Hello"), { maskKey: RFC_KEY }))).toBe(toHex(pong));
    expect(decode([pong], { expectMasked: true })).toEqual([
      { kind: "control", opcode: Opcode.pong, data: toHex(Buffer.from("Hello")) },
    ]);
  });

  test("256 bytes use the 16-bit length form 7E 0100", () => {
    const payload = new Uint8Array(256).fill(0xab);
    const frame = encodeFrame(Opcode.binary, payload);
    expect(toHex(frame.subarray(0, 4))).toBe("827e0100");
    expect(frame.length).toBe(4 + 256);
    expect(decode([frame], { expectMasked: false })).toEqual([
      { kind: "message", opcode: Opcode.binary, data: toHex(payload) },
    ]);
  });

  test("65536 bytes use the 64-bit length form 7F 0000000000010000", () => {
    const payload = new Uint8Array(65536).fill(7);
    const frame = encodeFrame(Opcode.binary, payload);
    expect(toHex(frame.subarray(0, 10))).toBe("827f0000000000010000");
    const [event] = decode([frame], { expectMasked: false });
    expect(event?.kind === "message" && event.data.length).toBe(65536 * 2);
  });
});

describe("header encoding", () => {
  test.each([
    [0, false, 2],
    [125, false, 2],
    [126, false, 4],
    [65535, false, 4],
    [65536, false, 10],
    [125, true, 6],
    [126, true, 8],
    [65536, true, 14],
  ])("a %d-byte payload (masked %p) has a %d-byte header", (length, masked, expected) => {
    const out = new Uint8Array(14);
    expect(frameHeaderLength(length, masked)).toBe(expected);
    expect(writeFrameHeader(out, 0, Opcode.binary, true, length, masked ? 1 : null)).toBe(expected);
  });

  test("the 16-bit boundary: 65535 is 7E FFFF", () => {
    const out = new Uint8Array(4);
    writeFrameHeader(out, 0, Opcode.binary, true, 65535, null);
    expect(toHex(out)).toBe("827effff");
  });

  test("a continuation header without FIN has first byte 00", () => {
    const out = new Uint8Array(2);
    writeFrameHeader(out, 0, Opcode.continuation, false, 3, null);
    expect(toHex(out)).toBe("0003");
  });
});

describe("masking rules", () => {
  test("a server rejects an unmasked client frame with 1002", () => {
    const err = decodeError(encodeFrame(Opcode.binary, new Uint8Array(3)), true);
    expect([err.code, err.closeCode]).toEqual(["WS_MASK_EXPECTED", 1002]);
  });

  test("a client rejects a masked server frame with 1002", () => {
    const err = decodeError(encodeFrame(Opcode.binary, new Uint8Array(3), { maskKey: 1 }), false);
    expect([err.code, err.closeCode]).toEqual(["WS_MASK_UNEXPECTED", 1002]);
  });

  test("a zero masking key decodes (mask bit set, payload unchanged)", () => {
    const frame = encodeFrame(Opcode.binary, hex("010203"), { maskKey: 0 });
    expect(toHex(frame)).toBe("828300000000010203");
    expect(decode([frame], { expectMasked: true })[0]).toEqual({
      kind: "message",
      opcode: Opcode.binary,
      data: "010203",
    });
  });
});

describe("fragmentation and control frames", () => {
  test("a ping between two fragments is delivered first, then the whole message", () => {
    const chunks = [
      encodeFrame(Opcode.binary, hex("0102"), { fin: false }),
      encodeFrame(Opcode.ping, hex("ff")),
      encodeFrame(Opcode.continuation, hex("03"), { fin: false }),
      encodeFrame(Opcode.continuation, hex("04")),
    ];
    expect(decode(chunks, { expectMasked: false })).toEqual([
      { kind: "control", opcode: Opcode.ping, data: "ff" },
      { kind: "message", opcode: Opcode.binary, data: "01020304" },
    ]);
  });

  test("empty frames and an empty message are valid", () => {
    const chunks = [encodeFrame(Opcode.binary, new Uint8Array(0)), encodeFrame(Opcode.close, new Uint8Array(0))];
    expect(decode(chunks, { expectMasked: false })).toEqual([
      { kind: "message", opcode: Opcode.binary, data: "" },
      { kind: "control", opcode: Opcode.close, data: "" },
    ]);
  });
});

describe("protocol errors carry a code and a close code", () => {
  test.each([
    ["RSV1 set", "c2 00", "WS_RSV_SET", 1002],
    ["RSV3 set", "92 00", "WS_RSV_SET", 1002],
    ["reserved data opcode 3", "83 00", "WS_BAD_OPCODE", 1002],
    ["reserved control opcode B", "8b 00", "WS_BAD_OPCODE", 1002],
    ["fragmented ping", "09 00", "WS_CONTROL_FRAGMENTED", 1002],
    ["ping with 126 bytes", "89 7e 007e", "WS_CONTROL_TOO_LONG", 1002],
    ["continuation without a message", "80 01 00", "WS_BAD_CONTINUATION", 1002],
    ["new message inside a fragmented one", "02 01 00 82 01 00", "WS_BAD_CONTINUATION", 1002],
    ["16-bit length under 126", "82 7e 007d", "WS_BAD_LENGTH", 1002],
    ["64-bit length under 65536", "82 7f 000000000000ffff", "WS_BAD_LENGTH", 1002],
    ["64-bit length with the top bit set", "82 7f 8000000000000000", "WS_BAD_LENGTH", 1002],
    ["64-bit length of 2^40", "82 7f 0000010000000000", "WS_MESSAGE_TOO_BIG", 1009],
  ])("%s", (_name, bytes, code, closeCode) => {
    const err = decodeError(hex(bytes), false);
    expect([err.code, err.closeCode]).toEqual([code, closeCode]);
  });

  test("a message over the limit is rejected from its header, before its payload arrives", () => {
    const decoder = new FrameDecoder({ expectMasked: false, maxMessageBytes: 1024 });
    const header = new Uint8Array(4);
    writeFrameHeader(header, 0, Opcode.binary, true, 1025, null);
    const sink = { message() {}, control() {} };
    expect(() => decoder.push(header, sink)).toThrow(WebSocketProtocolError);
  });

  test("fragments that add up to more than the limit are rejected with 1009", () => {
    const chunks = [
      encodeFrame(Opcode.binary, new Uint8Array(600), { fin: false }),
      encodeFrame(Opcode.continuation, new Uint8Array(600)),
    ];
    const bytes = Buffer.concat(chunks);
    const err = decodeError(bytes, false, 1024);
    expect([err.code, err.closeCode]).toEqual(["WS_MESSAGE_TOO_BIG", 1009]);
  });

  test("the default limit is 1 MiB: exactly 1 MiB passes, one byte more fails", () => {
    expect(decode([encodeFrame(Opcode.binary, new Uint8Array(1024 * 1024))], { expectMasked: false })).toHaveLength(1);
    const err = decodeError(encodeFrame(Opcode.binary, new Uint8Array(1024 * 1024 + 1)), false);
    expect(err.closeCode).toBe(1009);
  });

  test("after an error the decoder keeps failing", () => {
    const decoder = new FrameDecoder({ expectMasked: false });
    const sink = { message() {}, control() {} };
    expect(() => decoder.push(hex("c2 00"), sink)).toThrow(WebSocketProtocolError);
    expect(() => decoder.push(encodeFrame(Opcode.binary, new Uint8Array(1)), sink)).toThrow(WebSocketProtocolError);
  });
});

describe("close payloads", () => {
  test("code and reason round-trip", () => {
    expect(parseClosePayload(encodeClosePayload(1001, "going away"))).toEqual({ code: 1001, reason: "going away" });
  });
  test("a peer's reason is made printable where it enters", () => {
    const { code, reason } = parseClosePayload(encodeClosePayload(4000, "bye\u001b[2J\u001b]0;owned\u0007\n"));
    expect(code).toBe(4000);
    expect(reason).toBe("bye\\x1b[2J\\x1b]0;owned\\x07 ");
    expect(isOneLine(reason)).toBe(true);
  });
  test("an empty payload means no status (1005)", () => {
    expect(parseClosePayload(new Uint8Array(0))).toEqual({ code: 1005, reason: "" });
  });
  test.each([[hex("03")], [hex("03e7")], [hex("03ed")], [hex("03ee")], [hex("0bb7")], [hex("1388")]])(
    "a 1-byte payload or a code that may not be sent (%p) is a protocol error",
    (payload) => {
      expect(() => parseClosePayload(payload)).toThrow(WebSocketProtocolError);
    },
  );
  test("a reason that is not UTF-8 is rejected with 1007", () => {
    try {
      parseClosePayload(hex("03e8 ff"));
      throw new Error("no error");
    } catch (err) {
      expect((err as WebSocketProtocolError).closeCode).toBe(1007);
    }
  });
  test("a long reason is cut to 123 bytes without splitting a character", () => {
    const payload = encodeClosePayload(1000, "é".repeat(100));
    expect(payload.length).toBeLessThanOrEqual(125);
    expect(parseClosePayload(payload).reason).toBe("é".repeat(61));
  });
});

/** Splits `bytes` at the given cut points (sorted, deduplicated). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe("incremental decoding", () => {
  const messageArb = fc.record({
    size: fc.oneof(fc.constantFrom(0, 1, 125, 126, 127, 65535, 65536, 70000), fc.nat(3000)),
    fragments: fc.integer({ min: 1, max: 3 }),
    pingBefore: fc.boolean(),
  });

  test("byte-by-byte and randomly chunked decoding equal whole decoding", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, masked, cuts) => {
          let key = 0x01020304;
          const frames: Uint8Array[] = [];
          messages.forEach((m, i) => {
            if (m.pingBefore)
              frames.push(encodeFrame(Opcode.ping, Uint8Array.of(i), { maskKey: masked ? key++ : null }));
            const payload = Uint8Array.from({ length: m.size }, (_, j) => (j * 31 + i) & 0xff);
            const step = Math.ceil(m.size / m.fragments) || 1;
            for (let off = 0, n = 0; off < m.size || n === 0; off += step, n++) {
              const last = off + step >= m.size;
              frames.push(
                encodeFrame(n === 0 ? Opcode.binary : Opcode.continuation, payload.subarray(off, off + step), {
                  fin: last,
                  maskKey: masked ? key++ : null,
                }),
              );
            }
          });
          const stream = Buffer.concat(frames);
          const whole = decode([stream], { expectMasked: masked });
          expect(whole.filter((e) => e.kind === "message")).toHaveLength(messages.length);
          expect(decode(split(stream, cuts), { expectMasked: masked })).toEqual(whole);
          expect(decode(split(stream, cuts), { expectMasked: masked, reuseBuffer: true })).toEqual(whole);
          if (stream.length < 20_000) {
            expect(
              decode(
                split(
                  stream,
                  Array.from({ length: stream.length }, (_, i) => i),
                ),
                { expectMasked: masked },
              ),
            ).toEqual(whole);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test("a large frame split over chunks is delivered once and intact", () => {
    const payload = Uint8Array.from({ length: 300_000 }, (_, i) => i & 0xff);
    const frame = encodeFrame(Opcode.binary, payload, { maskKey: 0xdeadbeef });
    const events = decode(split(frame, [1, 5, 13, 1000, 150_000, 299_999]), { expectMasked: true });
    expect(events).toEqual([{ kind: "message", opcode: Opcode.binary, data: toHex(payload) }]);
  });
});

describe("reused assembly buffer", () => {
  test("with reuseBuffer, split messages are assembled in the same memory and each is intact during its call", () => {
    const a = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);
    const b = Uint8Array.from({ length: 4000 }, (_, i) => (i * 7) & 0xff);
    const stream = Buffer.concat([encodeFrame(Opcode.binary, a), encodeFrame(Opcode.binary, b)]);
    const seen: { hex: string; buffer: ArrayBufferLike }[] = [];
    const decoder = new FrameDecoder({ expectMasked: false, reuseBuffer: true });
    const sink = {
      message: (_opcode: DataOpcode, data: Uint8Array) => seen.push({ hex: toHex(data), buffer: data.buffer }),
      control: () => {},
    };
    for (const c of split(new Uint8Array(stream), [100, 3000, 5100, 7000])) decoder.push(new Uint8Array(c), sink);
    expect(seen.map((s) => s.hex)).toEqual([toHex(a), toHex(b)]);
    expect(seen[1]!.buffer).toBe(seen[0]!.buffer);
  });
});

describe("fuzz", () => {
  test("random bytes only ever produce messages or WebSocketProtocolError", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bytes, masked, cuts) => {
          try {
            decode(split(bytes, cuts), { expectMasked: masked, maxMessageBytes: 4096 });
          } catch (err) {
            expect(err).toBeInstanceOf(WebSocketProtocolError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
