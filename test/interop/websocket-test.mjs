// @ts-check
/**
 * The WebSocket layer of PROTOCOL §4 between the compiled connector and the `ws` package: fragmented
 * and large messages, control frames inside a fragmented message, and the close codes the connector
 * sends for what §4 forbids (1002, 1003, 1007, 1009). Malformed frames are written raw to the socket.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertClean } from "./checks.mjs";
import { CODE, encode, GO_AWAY, MAX_MESSAGE_BYTES } from "./gateway/codec.mjs";
import { closePayload, OP, wsFrame } from "./gateway/ws-frame.mjs";
import { until } from "./gateway/wait.mjs";
import { startInterop } from "./harness.mjs";

/** Reassembly scenarios share one connector and tunnel; each closing scenario breaks its own tunnel of a pool. */
const MESSAGES = "ws-messages";
const CLOSING = ["ws-closes-a", "ws-closes-b"];

/** @type {import("./harness.mjs").Interop} */
let h;
/** @type {import("./gateway/tunnel.mjs").Tunnel} */
let shared;
/** @type {import("./harness.mjs").Pool[]} */
let pools = [];
before(async () => {
  h = await startInterop();
  h.startConnector(MESSAGES);
  const size = Math.ceil((CLOSES.length + HANDSHAKES.length) / CLOSING.length);
  [shared, ...pools] = await Promise.all([
    h.gateway.tunnel(MESSAGES),
    ...CLOSING.map((name) => h.startPool(name, size)),
  ]);
});
after(() => h?.stop());

/** An echo stream open on `tunnel`. @param {import("./gateway/tunnel.mjs").Tunnel} tunnel */
async function echoStream(tunnel = shared) {
  const stream = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
  assert.equal((await stream.opened()).code, CODE.OK);
  return { tunnel, stream };
}

/** Splits `b` at the given offsets. @param {Buffer} b @param {number[]} cuts */
const split = (b, cuts) => [0, ...cuts].map((at, i) => b.subarray(at, cuts[i] ?? b.length));

describe("messages the connector must reassemble", { concurrency: true }, () => {
  test("a message in fragments cut inside a frame header and a payload", () =>
    h.scenario("ws-fragments", MESSAGES, async () => {
      const { tunnel, stream } = await echoStream();
      const message = Buffer.concat([
        encode.data(stream.id, Buffer.from("hello, ")),
        encode.data(stream.id, Buffer.from("fragments")),
      ]);
      tunnel.sendFragments(split(message, [5, 14, 20, 31]));
      assert.equal((await stream.readBytes(16)).toString(), "hello, fragments");
      assertClean(tunnel);
    }));

  test("ping and an unsolicited pong between fragments: pong answered with the ping's bytes, message intact", () =>
    h.scenario("ws-interleaved", MESSAGES, async () => {
      const { tunnel, stream } = await echoStream();
      const message = encode.data(stream.id, Buffer.from("between control frames"));
      tunnel.sendFragments(split(message, [7, 20]), (i) =>
        i === 0 ? tunnel.ws.ping(Buffer.from("p1")) : tunnel.ws.pong(Buffer.from("unasked")),
      );
      assert.equal((await stream.readBytes(22)).toString(), "between control frames");
      await until(tunnel.changes, "the connector's pong to our ping", () =>
        tunnel.wsPongs.includes(Buffer.from("p1").toString("hex")),
      );
      assertClean(tunnel);
    }));

  test("a 1 MiB message (the maximum) of four 256 KiB DATA frames is delivered", () =>
    h.scenario("ws-large", MESSAGES, async () => {
      const tunnel = shared;
      const streams = [1, 2, 3, 4].map(() => tunnel.open("echo", "127.0.0.1", h.apps.ports.echo));
      for (const s of streams) assert.equal((await s.opened()).code, CODE.OK);
      const each = MAX_MESSAGE_BYTES / 4 - 12;
      const payloads = streams.map((_, i) => Buffer.alloc(each, 0x41 + i));
      const frames = streams.map((s, i) => encode.data(s.id, /** @type {Buffer} */ (payloads[i]), true));
      assert.equal(Buffer.concat(frames).length, MAX_MESSAGE_BYTES);
      for (const s of streams) s.sendCredit -= each;
      tunnel.send(frames);
      for (const [i, s] of streams.entries())
        assert.ok((await s.readBytes(each)).equals(payloads[i]), `stream ${s.id} echoed`);
      assert.ok(tunnel.largestMessage <= MAX_MESSAGE_BYTES, "the connector's messages stay within 1 MiB");
      assertClean(tunnel);
    }));
});

/** What the connector must answer with a close (PROTOCOL §4), then dial again. */
const CLOSES = /** @type {[string, string, number, (t: import("./gateway/tunnel.mjs").Tunnel) => void][]} */ ([
  ["a text message", "ws-text", 1003, (t) => t.ws.send("hello", { binary: false })],
  [
    "a message over 1 MiB, refused from its length before the payload",
    "ws-too-big",
    1009,
    (t) =>
      t.sendRaw(Buffer.concat([Buffer.of(0x82, 127), u64(MAX_MESSAGE_BYTES + 1)]), "header of a 1 MiB + 1 message"),
  ],
  [
    "RSV1 set (no extension was negotiated)",
    "ws-rsv1",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: OP.BINARY, rsv: 4, payload: encode.ping(Buffer.alloc(8)) }), "RSV1"),
  ],
  [
    "an unknown opcode 0x3",
    "ws-opcode",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: 0x3, payload: Buffer.from("x") }), "opcode 3"),
  ],
  [
    "a masked server frame",
    "ws-masked",
    1002,
    (t) =>
      t.sendRaw(
        wsFrame({ opcode: OP.BINARY, payload: encode.ping(Buffer.alloc(8)), maskKey: Buffer.from("37fa213d", "hex") }),
        "masked",
      ),
  ],
  [
    "a fragmented ping",
    "ws-frag-ping",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: OP.PING, fin: false, payload: Buffer.from("x") }), "ping FIN=0"),
  ],
  [
    "a 126-byte ping",
    "ws-long-ping",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: OP.PING, payload: Buffer.alloc(126) }), "ping of 126 B"),
  ],
  [
    "a 16-bit length for 20 bytes",
    "ws-nonminimal-16",
    1002,
    (t) =>
      t.sendRaw(
        wsFrame({ opcode: OP.BINARY, payload: encode.ping(Buffer.alloc(8)), lengthForm: "16" }),
        "non-minimal 16-bit length",
      ),
  ],
  [
    "a 64-bit length for 200 bytes",
    "ws-nonminimal-64",
    1002,
    (t) =>
      t.sendRaw(wsFrame({ opcode: OP.BINARY, payload: tenPings(), lengthForm: "64" }), "non-minimal 64-bit length"),
  ],
  [
    "a continuation with no message begun",
    "ws-orphan-cont",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: OP.CONT, payload: Buffer.from("x") }), "orphan continuation"),
  ],
  [
    "a new binary message inside a fragmented one",
    "ws-interrupted",
    1002,
    (t) =>
      t.sendRaw(
        Buffer.concat([
          wsFrame({ opcode: OP.BINARY, fin: false, payload: encode.ping(Buffer.alloc(8)).subarray(0, 5) }),
          wsFrame({ opcode: OP.BINARY, payload: encode.ping(Buffer.alloc(8)) }),
        ]),
        "binary, then binary again",
      ),
  ],
  [
    "a close frame of one byte",
    "ws-close-short",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: OP.CLOSE, payload: Buffer.of(3) }), "close payload 03"),
  ],
  [
    "a close code that must not be sent (1005)",
    "ws-close-1005",
    1002,
    (t) => t.sendRaw(wsFrame({ opcode: OP.CLOSE, payload: closePayload(1005) }), "close 1005"),
  ],
  [
    "a message of two fragments that add up to over 1 MiB",
    "ws-too-big-fragments",
    1009,
    (t) => t.sendFragments([Buffer.alloc(600 * 1024), Buffer.alloc(600 * 1024)]),
  ],
  [
    "a close frame whose reason is not UTF-8",
    "ws-close-utf8",
    1007,
    (t) =>
      t.sendRaw(
        wsFrame({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.from([0xc3, 0x28])) }),
        "close reason c3 28",
      ),
  ],
]);

/** 200 bytes of valid frames, so only the length encoding is wrong. */
const tenPings = () => Buffer.concat(Array.from({ length: 10 }, () => encode.ping(Buffer.alloc(8))));

/** @param {number} n */
function u64(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/**
 * The close handshake itself: our close inside a fragmented message is answered (1000, not a cut), and
 * when we never answer the connector's close it cuts the socket itself (PROTOCOL §4: it waits at most
 * 5 s) and dials again. [label, name, expected close code, initiator, act]
 */
const HANDSHAKES =
  /** @type {[string, string, number, "gateway" | "connector", (t: import("./gateway/tunnel.mjs").Tunnel) => void][]} */ ([
    [
      "our close frame inside a fragmented message is answered with a close frame",
      "ws-close-inside",
      1000,
      "gateway",
      (t) => {
        t.sendRaw(
          wsFrame({ opcode: OP.BINARY, fin: false, payload: encode.ping(Buffer.alloc(8)).subarray(0, 9) }),
          "first fragment",
        );
        t.close(1000, "bye");
      },
    ],
    [
      "a gateway that never answers the connector's close: the connector cuts the socket itself",
      "ws-close-unanswered",
      1006, // the socket ended and we never read a close frame
      "connector",
      (t) => {
        // Drained, the connector closes the tunnel (1000) once idle; ws reads nothing more from here on,
        // so the connector's close frame gets no answer and only its close timer can end the socket.
        t.send(encode.goAway(GO_AWAY.DRAINING, "never answering your close"));
        // @ts-expect-error: ws keeps its socket in _socket
        const socket = /** @type {import("node:net").Socket} */ (t.ws._socket);
        socket.removeAllListeners("data");
        socket.on("data", (/** @type {Buffer} */ d) =>
          t.note(`raw in, unread by ws: ${d.subarray(0, 2).toString("hex")}… (${d.length} B)`),
        );
      },
    ],
  ]);

const CASES = [
  ...CLOSES.map(([label, name, code, act]) => /** @type {const} */ ([label, name, code, "connector", act])),
  ...HANDSHAKES,
];
const POOL_SIZE = Math.ceil(CASES.length / CLOSING.length);

describe("what PROTOCOL §4 closes the tunnel for: the close code, then a new tunnel", { concurrency: true }, () => {
  CLOSING.forEach((poolName, p) => {
    // The pools run side by side; within a pool, one scenario after the other (subtests).
    test(`on ${poolName}`, async (t) => {
      for (const [label, name, code, initiator, act] of CASES.slice(p * POOL_SIZE, (p + 1) * POOL_SIZE)) {
        await t.test(`${label} → ${code}`, () =>
          h.scenario(name, poolName, async () => {
            const pool = /** @type {import("./harness.mjs").Pool} */ (pools[p]);
            const tunnel = pool.take();
            await tunnel.ping(); // the tunnel works before we break it
            act(tunnel);
            const closed = await tunnel.closed();
            assert.equal(closed.initiator, initiator, "who closed");
            assert.equal(closed.code, code, `close code (reason "${closed.reason}")`);
            assertClean(tunnel);
            assertClean(await pool.replaced(tunnel));
          }),
        );
      }
    });
  });
});
