// @ts-check
/**
 * PROTOCOL §5.1, §5.2 and §5.11, faults that close the tunnel: the connector closes with 1002 and
 * the `PROTOCOL_…` reason §5.11 gives, never crashes, and dials again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertClean, assertProtocolClose } from "./checks.mjs";
import { CODE, encode, header, T } from "./gateway/codec.mjs";
import { startInterop } from "./harness.mjs";

/** @type {import("./harness.mjs").Interop} */
let h;
/** Two connectors of POOL_SIZE tunnels: each scenario breaks one tunnel, the two pools run side by side. */
const POOLS = ["tunnel-errors-a", "tunnel-errors-b"];
/** @type {import("./harness.mjs").Pool[]} */
let pools = [];
before(async () => {
  h = await startInterop();
  pools = await Promise.all(POOLS.map((name) => h.startPool(name, POOL_SIZE)));
});
after(() => h?.stop());

/** @typedef {import("./gateway/tunnel.mjs").Tunnel} Tunnel */

const PING = () => encode.ping(Buffer.alloc(8, 1));
/** @param {number} type @param {number} streamId @param {Buffer} payload @param {{ flags?: number, reserved?: number }} [o] */
const raw = (type, streamId, payload, o = {}) =>
  Buffer.concat([header({ type, streamId, length: payload.length, ...o }), payload]);

/** An open echo stream on `t`: some faults need one. @param {Tunnel} t */
async function openEcho(t) {
  const s = t.open("echo", "127.0.0.1", h.apps.ports.echo);
  assert.equal((await s.opened()).code, CODE.OK);
  return s;
}

/** [label, connector name, the close reason PROTOCOL §5.11 gives, the fault] */
const CASES = /** @type {[string, string, string, (t: Tunnel) => Promise<void>][]} */ ([
  ["an empty message", "te-empty", "PROTOCOL_EMPTY_MESSAGE", async (t) => t.send(Buffer.alloc(0))],
  [
    "a truncated header (11 bytes)",
    "te-truncated",
    "PROTOCOL_TRUNCATED_HEADER",
    async (t) => t.send(PING().subarray(0, 11)),
  ],
  [
    "bytes after the last whole frame",
    "te-trailing",
    "PROTOCOL_TRUNCATED_HEADER",
    async (t) => t.send(Buffer.concat([PING(), Buffer.alloc(5)])),
  ],
  ["an unknown type 0x0d", "te-type-0d", "PROTOCOL_UNKNOWN_TYPE", async (t) => t.send(raw(0x0d, 0, Buffer.alloc(0)))],
  ["type 0x00", "te-type-00", "PROTOCOL_UNKNOWN_TYPE", async (t) => t.send(raw(0x00, 0, Buffer.alloc(0)))],
  [
    "a flag on PING",
    "te-flag-ping",
    "PROTOCOL_UNKNOWN_FLAGS",
    async (t) => t.send(raw(T.PING, 0, Buffer.alloc(8), { flags: 1 })),
  ],
  [
    "an undefined DATA flag 0x02",
    "te-flag-data",
    "PROTOCOL_UNKNOWN_FLAGS",
    async (t) => t.send(raw(T.DATA, (await openEcho(t)).id, Buffer.from("x"), { flags: 2 })),
  ],
  [
    "reserved bytes not zero",
    "te-reserved",
    "PROTOCOL_RESERVED_NOT_ZERO",
    async (t) => t.send(raw(T.PING, 0, Buffer.alloc(8), { reserved: 1 })),
  ],
  [
    "a stream frame on stream 0",
    "te-stream-0",
    "PROTOCOL_BAD_STREAM_ID",
    async (t) => t.send(encode.windowUpdate(0, 10)),
  ],
  [
    "a tunnel frame on stream 5",
    "te-ping-5",
    "PROTOCOL_BAD_STREAM_ID",
    async (t) => t.send(raw(T.PING, 5, Buffer.alloc(8))),
  ],
  [
    "DATA over 256 KiB",
    "te-data-max",
    "PROTOCOL_LENGTH_EXCEEDS_MAX",
    async (t) => t.send(raw(T.DATA, (await openEcho(t)).id, Buffer.alloc(256 * 1024 + 1))),
  ],
  [
    "a length past the end of the message",
    "te-length-past",
    "PROTOCOL_LENGTH_EXCEEDS_MESSAGE",
    async (t) =>
      t.send(Buffer.concat([header({ type: T.DATA, streamId: (await openEcho(t)).id, length: 10 }), Buffer.alloc(3)])),
  ],
  [
    "OPEN lengths that do not add up",
    "te-open-lengths",
    "PROTOCOL_BAD_PAYLOAD",
    async (t) => t.send(raw(T.OPEN, 1, Buffer.concat([Buffer.of(9), Buffer.from("echo"), Buffer.of(0, 80)]))),
  ],
  ["a 7-byte PING", "te-short-ping", "PROTOCOL_BAD_PAYLOAD", async (t) => t.send(raw(T.PING, 0, Buffer.alloc(7)))],
  [
    "a GO_AWAY reason that is not UTF-8",
    "te-goaway-utf8",
    "PROTOCOL_BAD_UTF8",
    async (t) => t.send(raw(T.GO_AWAY, 0, Buffer.of(0, 0xff, 0xfe))),
  ],
  [
    "a RESET reason that is not UTF-8",
    "te-reset-utf8",
    "PROTOCOL_BAD_UTF8",
    async (t) => t.send(raw(T.RESET, (await openEcho(t)).id, Buffer.of(CODE.CANCELLED, 0xc3, 0x28))),
  ],
  [
    "CONFIG_CHANGED that is not JSON",
    "te-config-json",
    "PROTOCOL_BAD_JSON",
    async (t) => t.send(raw(T.CONFIG_CHANGED, 0, Buffer.from("{"))),
  ],
  [
    "CONFIG_CHANGED without catalogVersion",
    "te-config-schema",
    "PROTOCOL_BAD_JSON",
    async (t) => t.send(raw(T.CONFIG_CHANGED, 0, Buffer.from("{}"))),
  ],
  [
    "an OPEN whose id is below the highest seen",
    "te-id-order",
    "PROTOCOL_STREAM_ID_NOT_INCREASING",
    async (t) => {
      const s = t.open("echo", "127.0.0.1", h.apps.ports.echo, { id: 5 });
      assert.equal((await s.opened()).code, CODE.OK);
      t.send(encode.open(3, "echo", "127.0.0.1", h.apps.ports.echo));
    },
  ],
  [
    "an OPEN reusing an id",
    "te-id-reuse",
    "PROTOCOL_STREAM_ID_NOT_INCREASING",
    async (t) => {
      const s = await openEcho(t);
      t.send(encode.open(s.id, "echo", "127.0.0.1", h.apps.ports.echo));
    },
  ],
  [
    "an OPEN_RESULT (only connectors send it)",
    "te-role-result",
    "PROTOCOL_UNEXPECTED_FRAME",
    async (t) => t.send(encode.openResult((await openEcho(t)).id, CODE.OK)),
  ],
  [
    "a TOKEN_UPDATE (only connectors send it)",
    "te-role-token",
    "PROTOCOL_UNEXPECTED_FRAME",
    async (t) => t.send(encode.tokenUpdate("v1.a.b")),
  ],
  [
    "a HEALTH_REPORT (only connectors send it)",
    "te-role-health",
    "PROTOCOL_UNEXPECTED_FRAME",
    async (t) => t.send(encode.healthReport({ apps: [] })),
  ],
]);

const POOL_SIZE = Math.ceil(CASES.length / POOLS.length);

describe("faults that close the tunnel: 1002 PROTOCOL_…, then a new tunnel", { concurrency: true }, () => {
  POOLS.forEach((poolName, p) => {
    // The pools run side by side; within a pool, one scenario after the other (subtests).
    test(`on ${poolName}`, async (t) => {
      for (const [label, name, reason, act] of CASES.slice(p * POOL_SIZE, (p + 1) * POOL_SIZE)) {
        await t.test(`${label} → 1002 ${reason}`, () =>
          h.scenario(name, poolName, async () => {
            const pool = /** @type {import("./harness.mjs").Pool} */ (pools[p]);
            const tunnel = pool.take();
            await tunnel.ping();
            await act(tunnel);
            assertProtocolClose(await tunnel.closed(), reason);
            assertClean(tunnel);
            assertClean(await pool.replaced(tunnel));
          }),
        );
      }
    });
  });
});
