/**
 * The connector's codecs against the test vectors of docs/PROTOCOL.md §5.13, read from the document
 * (test/interop/codec-test.mjs holds the interop gateway's codec to the same lines): each frame decodes
 * to its fields and encodes to its bytes, each refused message fails with its reason and close 1002,
 * and the masked WebSocket frame is what our WebSocket codec writes and reads.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FrameType } from "../../src/mux/const.ts";
import { ProtocolError } from "../../src/mux/errors.ts";
import { decodeMessage, type Frame } from "../../src/mux/frame-decoder.ts";
import { encodeFrame } from "../../src/mux/frame-encoder.ts";
import { Secret } from "../../src/secret.ts";
import { encodeFrame as encodeWsFrame, FrameDecoder, Opcode } from "../../src/transport/websocket/frame-codec.ts";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const doc = readFileSync(join(import.meta.dir, "..", "..", "docs", "PROTOCOL.md"), "utf8");
const start = doc.indexOf("### 5.13 Test vectors");
const section = doc.slice(start, doc.indexOf("\n## ", start));
const frames = [...section.matchAll(/^\| ([A-Z_]+) \| `([0-9a-f ]+)` \| `(\{.*\})` \|$/gm)].map((m) => ({
  name: m[1] as keyof typeof FrameType,
  bytes: hex(m[2]!),
  fields: JSON.parse(m[3]!) as Record<string, unknown>,
}));
const refused = [...section.matchAll(/^\| ([^|]+) \| `([0-9a-f ]+)` \| close 1002 `(PROTOCOL_[A-Z0-9_]+)` \|$/gm)].map(
  (m) => ({ what: m[1]!.trim(), bytes: hex(m[2]!), reason: m[3]! }),
);
const masked = hex(/```\n([0-9a-f ]+)\n```/.exec(section)?.[1] ?? "");

function decodeAll(bytes: Uint8Array): Frame[] {
  const out: Frame[] = [];
  decodeMessage(new Uint8Array(bytes), (f) => void out.push(f));
  return out;
}

/** The document's form of a frame: no type, bytes in hex, the token revealed. */
function fields(frame: Frame): Record<string, unknown> {
  const { type: _type, ...rest } = frame as Frame & Record<string, unknown>;
  const out: Record<string, unknown> = { ...rest };
  if ("token" in frame) out.token = frame.token.reveal();
  if ("payload" in frame) out.payload = toHex(frame.payload);
  if ("opaque" in frame) out.opaque = toHex(frame.opaque);
  return out;
}

/** The frame the document's fields describe. */
function frameOf(name: keyof typeof FrameType, f: Record<string, unknown>): Frame {
  const value: Record<string, unknown> = { type: FrameType[name], ...f };
  if (typeof f.payload === "string") value.payload = hex(f.payload);
  if (typeof f.opaque === "string") value.opaque = hex(f.opaque);
  if (typeof f.token === "string") value.token = new Secret(f.token);
  return value as unknown as Frame;
}

describe("docs/PROTOCOL.md §5.13 against the connector's codec", () => {
  test("the document has a vector for every frame type and a dozen refusals (the parse works)", () => {
    expect(new Set(frames.map((f) => f.name))).toEqual(new Set(Object.keys(FrameType) as (keyof typeof FrameType)[]));
    expect(refused.length).toBeGreaterThanOrEqual(12);
    expect(masked.length).toBe(26);
  });

  for (const v of frames) {
    test(`${v.name} ${JSON.stringify(v.fields)}: decodes to its fields, encodes to its bytes`, () => {
      const decoded = decodeAll(v.bytes);
      expect(decoded.map((f) => f.type)).toEqual([FrameType[v.name]]);
      expect(fields(decoded[0]!)).toEqual(v.fields);
      expect(toHex(encodeFrame(frameOf(v.name, v.fields)))).toBe(toHex(v.bytes));
    });
  }

  test("all of them back to back are one message of the same frames in order", () => {
    expect(decodeAll(Buffer.concat(frames.map((f) => f.bytes))).map(fields)).toEqual(frames.map((f) => f.fields));
  });

  for (const v of refused) {
    test(`${v.what} → close 1002 ${v.reason}`, () => {
      let caught: unknown;
      try {
        decodeAll(v.bytes);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ProtocolError);
      expect((caught as ProtocolError).code).toBe(v.reason as ProtocolError["code"]);
      expect((caught as ProtocolError).closeCode).toBe(1002);
    });
  }

  test("the masked WebSocket frame: our client writes it, our server reads the PING from it", () => {
    const ping = frames.find((f) => f.name === "PING")!.bytes;
    const key = masked.readUInt32BE(2);
    expect(toHex(encodeWsFrame(Opcode.binary, new Uint8Array(ping), { maskKey: key }))).toBe(toHex(masked));
    const messages: string[] = [];
    new FrameDecoder({ expectMasked: true }).push(new Uint8Array(masked), {
      message: (_opcode, data) => void messages.push(toHex(data)),
      control: () => {},
    });
    expect(messages).toEqual([toHex(ping)]);
  });
});
