// @ts-check
/**
 * The interop gateway's codec against the test vectors of docs/PROTOCOL.md §5.13, read from the
 * document: every frame decodes to its fields and encodes back to its bytes, every refused message is
 * refused with its reason, and the masked WebSocket frame is what the `ws` package makes and reads.
 * test/mux/protocol-vectors.test.ts holds the connector's codec to the same lines.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as wsPackage from "ws";
import { decodeMessage, encode, FrameError, T } from "./gateway/codec.mjs";
import { OP, wsFrame } from "./gateway/ws-frame.mjs";
import { protocolVectors } from "./protocol-vectors.mjs";

const { frames, refused, maskedFrame } = protocolVectors();
/** ws's own frame writer and reader: the package exports them, its type declarations do not. */
const { Receiver, Sender } = /** @type {any} */ (wsPackage);

/** What the document's JSON says of a decoded frame. @param {import("./gateway/codec.mjs").Frame} f */
function fields(f) {
  /** @type {Record<string, unknown>} */
  const out = { streamId: f.streamId };
  if (f.type === T.OPEN) Object.assign(out, { app: f.app, host: f.host, port: f.port });
  if (f.type === T.OPEN_RESULT || f.type === T.RESET || f.type === T.GO_AWAY)
    Object.assign(out, { code: f.code, message: f.message });
  if (f.type === T.DATA) Object.assign(out, { payload: f.payload.toString("hex"), creditExhausted: f.creditExhausted });
  if (f.type === T.WINDOW_UPDATE) out.increment = f.increment;
  if (f.type === T.PING || f.type === T.PONG) out.opaque = f.opaque?.toString("hex");
  if (f.type === T.TOKEN_UPDATE) out.token = f.token;
  if (f.type === T.HEALTH_REPORT) out.report = f.json;
  if (f.type === T.CONFIG_CHANGED) out.catalogVersion = f.json.catalogVersion;
  return out;
}

/** The frame the document's fields describe, built by this codec. @param {string} name @param {any} v */
function build(name, v) {
  const hex = (/** @type {string} */ s) => Buffer.from(s, "hex");
  switch (name) {
    case "OPEN":
      return encode.open(v.streamId, v.app, v.host, v.port);
    case "OPEN_RESULT":
      return encode.openResult(v.streamId, v.code, v.message);
    case "DATA":
      return encode.data(v.streamId, hex(v.payload), v.creditExhausted);
    case "WINDOW_UPDATE":
      return encode.windowUpdate(v.streamId, v.increment);
    case "FIN":
      return encode.fin(v.streamId);
    case "RESET":
      return encode.reset(v.streamId, v.code, v.message);
    case "PING":
      return encode.ping(hex(v.opaque));
    case "PONG":
      return encode.pong(hex(v.opaque));
    case "GO_AWAY":
      return encode.goAway(v.code, v.message);
    case "TOKEN_UPDATE":
      return encode.tokenUpdate(v.token);
    case "HEALTH_REPORT":
      return encode.healthReport(v.report);
    case "CONFIG_CHANGED":
      return encode.configChanged(v.catalogVersion);
  }
  throw new Error(`no such frame type ${name}`);
}

describe("docs/PROTOCOL.md §5.13 against the interop gateway's codec", () => {
  test("the document has a vector for every frame type and a dozen refusals (the parse works)", () => {
    assert.deepEqual(new Set(frames.map((f) => f.name)), new Set(Object.keys(T)));
    assert.ok(refused.length >= 12, `${refused.length} refused messages`);
  });

  for (const v of frames) {
    test(`${v.name} ${JSON.stringify(v.fields)}: decodes to its fields, encodes to its bytes`, () => {
      const decoded = decodeMessage(v.bytes);
      assert.equal(decoded.length, 1);
      assert.equal(decoded[0]?.name, v.name);
      assert.deepEqual(fields(/** @type {any} */ (decoded[0])), v.fields);
      assert.equal(build(v.name, v.fields).toString("hex"), v.bytes.toString("hex"));
    });
  }

  test("all of them back to back are one message of the same frames in order", () => {
    const decoded = decodeMessage(Buffer.concat(frames.map((f) => f.bytes)));
    assert.deepEqual(
      decoded.map((f) => [f.name, fields(f)]),
      frames.map((f) => [f.name, f.fields]),
    );
  });

  for (const v of refused) {
    test(`${v.what} → ${v.reason}`, () => {
      assert.throws(
        () => decodeMessage(v.bytes),
        (/** @type {unknown} */ err) => err instanceof FrameError && err.reason === v.reason,
      );
    });
  }
});

describe("the masked WebSocket frame of §5.13 and the ws package", () => {
  const ping = /** @type {{ bytes: Buffer }} */ (frames.find((f) => f.name === "PING")).bytes;
  // Copies throughout: ws masks and unmasks in place.
  const key = Buffer.from(maskedFrame.subarray(2, 6));

  test("ws makes the same bytes from the PING and the key", () => {
    const made = Buffer.concat(
      Sender.frame(Buffer.from(ping), {
        fin: true,
        opcode: OP.BINARY,
        mask: true,
        readOnly: false,
        rsv1: false,
        generateMask: (/** @type {Buffer} */ m) => key.copy(m),
      }),
    );
    assert.equal(made.toString("hex"), maskedFrame.toString("hex"));
    assert.equal(
      wsFrame({ opcode: OP.BINARY, payload: ping, maskKey: key }).toString("hex"),
      maskedFrame.toString("hex"),
    );
  });

  test("ws, as a server, reads the PING out of it", async () => {
    const receiver = new Receiver({ isServer: true, maxPayload: 1024 * 1024 });
    const message = new Promise((resolve, reject) => {
      receiver.on("message", (/** @type {Buffer} */ data, /** @type {boolean} */ isBinary) =>
        resolve({ data, isBinary }),
      );
      receiver.on("error", reject);
    });
    receiver.write(Buffer.from(maskedFrame));
    assert.deepEqual(await message, { data: ping, isBinary: true });
  });
});
