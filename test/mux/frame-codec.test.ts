import { describe, expect, test } from "bun:test";
import { Secret } from "../../src/secret.ts";
import { FrameType, GoAwayCode, MAX_MESSAGE_BYTES, StreamCode } from "../../src/mux/const.ts";
import { FrameEncodeError, ProtocolError } from "../../src/mux/errors.ts";
import { decodeMessage, type Frame } from "../../src/mux/frame-decoder.ts";
import * as enc from "../../src/mux/frame-encoder.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function decodeAll(bytes: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  decodeMessage(bytes, (f) => void frames.push(f));
  return frames;
}

/** Comparable form: Secret and byte views become plain values. */
function plain(frame: Frame): unknown {
  const out: Record<string, unknown> = { ...frame };
  if ("token" in frame) out.token = frame.token.reveal();
  if ("payload" in frame) out.payload = toHex(frame.payload);
  if ("opaque" in frame) out.opaque = toHex(frame.opaque);
  return out;
}

// Hand-written wire bytes (header: type, flags, reserved u16, stream id u32, length u32) and their meaning.
const fixtures: { name: string; hex: string; frame: Frame }[] = [
  {
    name: "OPEN wiki 10.0.0.1:443 on stream 1",
    hex: "01 00 0000 00000001 00000010  04 77696b69  08 31302e302e302e31  01bb",
    frame: { type: FrameType.OPEN, streamId: 1, app: "wiki", host: "10.0.0.1", port: 443 },
  },
  {
    name: "OPEN_RESULT OK with no message",
    hex: "02 00 0000 00000001 00000001  00",
    frame: { type: FrameType.OPEN_RESULT, streamId: 1, code: StreamCode.OK, message: "" },
  },
  {
    name: "OPEN_RESULT REFUSED with a message",
    hex: "02 00 0000 00000002 00000003  03 6e6f",
    frame: { type: FrameType.OPEN_RESULT, streamId: 2, code: StreamCode.REFUSED, message: "no" },
  },
  {
    name: "DATA hello on stream 5",
    hex: "03 00 0000 00000005 00000005  68656c6c6f",
    frame: { type: FrameType.DATA, streamId: 5, payload: new TextEncoder().encode("hello"), creditExhausted: false },
  },
  {
    name: "DATA that used the sender's last credit (flag 0x01)",
    hex: "03 01 0000 00000005 00000002  6869",
    frame: { type: FrameType.DATA, streamId: 5, payload: new TextEncoder().encode("hi"), creditExhausted: true },
  },
  {
    name: "WINDOW_UPDATE of 128 KiB",
    hex: "04 00 0000 00000005 00000004  00020000",
    frame: { type: FrameType.WINDOW_UPDATE, streamId: 5, increment: 128 * 1024 },
  },
  { name: "FIN on stream 7", hex: "05 00 0000 00000007 00000000", frame: { type: FrameType.FIN, streamId: 7 } },
  {
    name: "RESET CANCELLED on a large stream id",
    hex: "06 00 0000 01020304 00000004  0a 627965",
    frame: { type: FrameType.RESET, streamId: 0x01020304, code: StreamCode.CANCELLED, message: "bye" },
  },
  {
    name: "PING",
    hex: "07 00 0000 00000000 00000008  0102030405060708",
    frame: { type: FrameType.PING, streamId: 0, opaque: hex("0102030405060708") },
  },
  {
    name: "PONG",
    hex: "08 00 0000 00000000 00000008  0102030405060708",
    frame: { type: FrameType.PONG, streamId: 0, opaque: hex("0102030405060708") },
  },
  {
    name: "GO_AWAY DRAINING",
    hex: "09 00 0000 00000000 00000005  00 73746f70",
    frame: { type: FrameType.GO_AWAY, streamId: 0, code: GoAwayCode.DRAINING, message: "stop" },
  },
  {
    name: "TOKEN_UPDATE",
    hex: "0a 00 0000 00000000 00000003  746f6b",
    frame: { type: FrameType.TOKEN_UPDATE, streamId: 0, token: new Secret("tok") },
  },
  {
    name: "HEALTH_REPORT with one app",
    hex:
      "0b 00 0000 00000000 00000050" +
      "7b2261707073223a5b7b226e616d65223a2277696b69222c2273657276657273223a5b7b2261646472657373223a22" +
      "31302e302e302e313a343433222c226865616c746879223a747275657d5d7d5d7d",
    frame: {
      type: FrameType.HEALTH_REPORT,
      streamId: 0,
      report: { apps: [{ name: "wiki", servers: [{ address: "10.0.0.1:443", healthy: true }] }] },
    },
  },
  {
    name: "CONFIG_CHANGED",
    hex: "0c 00 0000 00000000 00000017  7b22636174616c6f6756657273696f6e223a227637227d",
    frame: { type: FrameType.CONFIG_CHANGED, streamId: 0, catalogVersion: "v7" },
  },
];

describe("hex fixtures", () => {
  for (const fixture of fixtures) {
    test(`${fixture.name}: decodes to its value`, () => {
      expect(decodeAll(hex(fixture.hex)).map(plain)).toEqual([plain(fixture.frame)]);
    });
    test(`${fixture.name}: encodes to its bytes`, () => {
      expect(toHex(enc.encodeFrame(fixture.frame))).toBe(toHex(hex(fixture.hex)));
    });
  }

  test("one message carries several frames back to back, in order", () => {
    const message = hex(fixtures.map((f) => f.hex).join(""));
    expect(decodeAll(message).map(plain)).toEqual(fixtures.map((f) => plain(f.frame)));
  });

  test("a DATA payload is a view into the message, not a copy", () => {
    const message = hex("03 00 0000 00000005 00000002 abcd");
    const [frame] = decodeAll(message);
    if (frame?.type !== FrameType.DATA) throw new Error("expected DATA");
    expect(frame.payload.buffer).toBe(message.buffer);
    expect(frame.payload.byteOffset).toBe(12);
  });

  test("writeHeader lays out type, zero flags and reserved, id and length big-endian", () => {
    const out = new Uint8Array(12);
    enc.writeHeader(out, 0, FrameType.DATA, 0xdeadbeef, 0x10000);
    expect(toHex(out)).toBe("03000000deadbeef00010000");
  });

  test("an unknown code is read as INTERNAL", () => {
    const [reset] = decodeAll(hex("06 00 0000 00000001 00000001 63"));
    expect(reset).toMatchObject({ code: StreamCode.INTERNAL });
    const [goAway] = decodeAll(hex("09 00 0000 00000000 00000001 63"));
    expect(goAway).toMatchObject({ code: GoAwayCode.INTERNAL });
  });

  test("a gateway's GO_AWAY, RESET and OPEN_RESULT messages are made printable where they enter", () => {
    const hostile = "bye\u001b]0;owned\u0007\u001b[2J\u009b\r\n";
    const frames = decodeAll(
      Buffer.concat([
        enc.encodeGoAway(GoAwayCode.DRAINING, hostile),
        enc.encodeReset(1, StreamCode.REFUSED, hostile),
        enc.encodeOpenResult(3, StreamCode.REFUSED, hostile),
      ]),
    );
    expect(frames.map((f) => ("message" in f ? f.message : undefined))).toEqual(
      Array(3).fill("bye\\x1b]0;owned\\x07\\x1b[2J\\x9b  "),
    );
  });

  test("returning false from the handler stops decoding the rest of the message", () => {
    const seen: number[] = [];
    const fin = fixtures.find((f) => f.frame.type === FrameType.FIN)!;
    const count = decodeMessage(hex(fin.hex + fin.hex), (f) => {
      seen.push(f.type);
      return false;
    });
    expect([count, seen]).toEqual([1, [FrameType.FIN]]);
  });
});

describe("protocol violations throw ProtocolError with a stable code and close code 1002", () => {
  const cases: [string, Uint8Array, string][] = [
    ["empty message", new Uint8Array(0), "PROTOCOL_EMPTY_MESSAGE"],
    ["message over 1 MiB", new Uint8Array(MAX_MESSAGE_BYTES + 1), "PROTOCOL_MESSAGE_TOO_LARGE"],
    ["11 bytes of header", hex("05 00 0000 00000007 000000"), "PROTOCOL_TRUNCATED_HEADER"],
    ["trailing bytes after a frame", hex("05 00 0000 00000007 00000000 05"), "PROTOCOL_TRUNCATED_HEADER"],
    ["unknown type 0x0d", hex("0d 00 0000 00000000 00000000"), "PROTOCOL_UNKNOWN_TYPE"],
    ["unknown type 0x00", hex("00 00 0000 00000000 00000000"), "PROTOCOL_UNKNOWN_TYPE"],
    ["non-zero flags", hex("05 01 0000 00000007 00000000"), "PROTOCOL_UNKNOWN_FLAGS"],
    ["DATA with an unknown flag 0x02", hex("03 02 0000 00000007 00000000"), "PROTOCOL_UNKNOWN_FLAGS"],
    ["CREDIT_EXHAUSTED on WINDOW_UPDATE", hex("04 01 0000 00000001 00000004 00000001"), "PROTOCOL_UNKNOWN_FLAGS"],
    ["non-zero reserved", hex("05 00 0001 00000007 00000000"), "PROTOCOL_RESERVED_NOT_ZERO"],
    ["stream frame on stream 0", hex("05 00 0000 00000000 00000000"), "PROTOCOL_BAD_STREAM_ID"],
    ["tunnel frame on a stream", hex("07 00 0000 00000001 00000008 0000000000000000"), "PROTOCOL_BAD_STREAM_ID"],
    ["DATA over 256 KiB", hex("03 00 0000 00000001 00040001"), "PROTOCOL_LENGTH_EXCEEDS_MAX"],
    ["a 4 GiB length", hex("03 00 0000 00000001 ffffffff"), "PROTOCOL_LENGTH_EXCEEDS_MAX"],
    ["FIN with a payload", hex("05 00 0000 00000001 00000001 00"), "PROTOCOL_LENGTH_EXCEEDS_MAX"],
    ["length past the message end", hex("03 00 0000 00000001 00000004 aabbcc"), "PROTOCOL_LENGTH_EXCEEDS_MESSAGE"],
    ["WINDOW_UPDATE of 3 bytes", hex("04 00 0000 00000001 00000003 000001"), "PROTOCOL_BAD_PAYLOAD"],
    ["PING of 7 bytes", hex("07 00 0000 00000000 00000007 00000000000000"), "PROTOCOL_BAD_PAYLOAD"],
    ["RESET without a code", hex("06 00 0000 00000001 00000000"), "PROTOCOL_BAD_PAYLOAD"],
    ["OPEN whose app length overruns", hex("01 00 0000 00000001 00000004 09 61 00 01"), "PROTOCOL_BAD_PAYLOAD"],
    ["OPEN with a byte too many", hex("01 00 0000 00000001 00000007 01 61 01 62 0050 00"), "PROTOCOL_BAD_PAYLOAD"],
    ["OPEN with an empty payload", hex("01 00 0000 00000001 00000000"), "PROTOCOL_BAD_PAYLOAD"],
    ["empty TOKEN_UPDATE", hex("0a 00 0000 00000000 00000000"), "PROTOCOL_BAD_PAYLOAD"],
    ["invalid UTF-8 in a reason", hex("06 00 0000 00000001 00000002 09 ff"), "PROTOCOL_BAD_UTF8"],
    ["HEALTH_REPORT that is not JSON", hex("0b 00 0000 00000000 00000001 7b"), "PROTOCOL_BAD_JSON"],
    ["CONFIG_CHANGED missing its field", hex("0c 00 0000 00000000 00000002 7b7d"), "PROTOCOL_BAD_JSON"],
  ];
  for (const [name, bytes, code] of cases) {
    test(`${name} → ${code}`, () => {
      let caught: unknown;
      try {
        decodeMessage(bytes, () => {});
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ProtocolError);
      expect((caught as ProtocolError).code).toBe(code as ProtocolError["code"]);
      expect((caught as ProtocolError).closeCode).toBe(1002);
    });
  }
});

describe("encoder limits", () => {
  test("a host longer than 255 bytes is refused", () => {
    expect(() => enc.encodeOpen(1, "app", "h".repeat(256), 80)).toThrow(FrameEncodeError);
  });
  test("stream id 0 and ids above 2^32-1 are refused for stream frames", () => {
    expect(() => enc.encodeFin(0)).toThrow(FrameEncodeError);
    expect(() => enc.encodeFin(2 ** 32)).toThrow(FrameEncodeError);
  });
  test("a long reason is cut at a UTF-8 boundary to 512 bytes and still decodes", () => {
    const frame = enc.encodeReset(1, StreamCode.INTERNAL, "é".repeat(400)); // 800 bytes of UTF-8
    const [decoded] = decodeAll(frame);
    expect(decoded).toMatchObject({ type: FrameType.RESET, message: "é".repeat(256) });
  });
  test("a token error message never contains the token", () => {
    const token = "s3cr3t".repeat(2000);
    let message = "";
    try {
      enc.encodeTokenUpdate(new Secret(token));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("at most 8192");
    expect(message).not.toContain("s3cr3t");
  });
});
