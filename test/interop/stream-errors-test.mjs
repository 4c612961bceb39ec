// @ts-check
/**
 * PROTOCOL §5.11, faults that cost one stream: each is answered RESET with the code the document
 * gives, and the tunnel stays up (a PING is answered and a new stream opens on it afterwards).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertClean } from "./checks.mjs";
import { CODE, encode, header, T } from "./gateway/codec.mjs";
import { startInterop } from "./harness.mjs";

/** One connector serves the scenarios that keep the tunnel up; each uses its own streams. */
const SHARED = "stream-errors";

/** @type {import("./harness.mjs").Interop} */
let h;
/** @type {import("./gateway/tunnel.mjs").Tunnel} */
let shared;
before(async () => {
  h = await startInterop();
  h.startConnector(SHARED);
  shared = await h.gateway.tunnel(SHARED);
});
after(() => h?.stop());

/** @typedef {import("./gateway/tunnel.mjs").Tunnel} Tunnel */
/** @typedef {import("./gateway/stream.mjs").Stream} Stream */

/** @param {Tunnel} tunnel */
async function openEcho(tunnel) {
  const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
  assert.equal((await s.opened()).code, CODE.OK);
  return s;
}

/** The stream `id` is reset with `code`, nothing else breaks. @param {Tunnel} tunnel @param {number} id @param {number} since */
async function assertResetOnly(tunnel, id, since, code = CODE.PROTOCOL) {
  const reset = await tunnel.waitFrame((f) => f.type === T.RESET && f.streamId === id, `RESET for stream ${id}`, {
    since,
  });
  assert.equal(reset.code, code, `RESET code (message "${reset.message}")`);
  await tunnel.ping();
  const s = await openEcho(tunnel);
  await s.write(Buffer.from("ok"));
  assert.equal((await s.readBytes(2)).toString(), "ok");
  assert.equal(tunnel.closeInfo, undefined, "the tunnel stays up");
  assertClean(tunnel);
}

/** A bad OPEN payload: app bytes that are not UTF-8. @param {number} id */
function openWithBadApp(id) {
  const payload = Buffer.concat([Buffer.of(2, 0xc3, 0x28), Buffer.of(9), Buffer.from("127.0.0.1"), Buffer.of(0, 80)]);
  return Buffer.concat([header({ type: T.OPEN, streamId: id, length: payload.length }), payload]);
}

/** [test, connector, act: sends the fault and returns the stream id it must reset] */
const CASES = /** @type {[string, string, (t: Tunnel) => Promise<number>][]} */ ([
  [
    "DATA while the stream is opening",
    "se-data-opening",
    async (t) => {
      const id = t.lastStreamId + 1;
      t.open("echo", "127.0.0.1", h.apps.ports.echo, { extraFrames: [encode.data(id, Buffer.from("early"))] });
      return id;
    },
  ],
  [
    "FIN while the stream is opening",
    "se-fin-opening",
    async (t) => {
      const id = t.lastStreamId + 1;
      t.open("echo", "127.0.0.1", h.apps.ports.echo, { extraFrames: [encode.fin(id)] });
      return id;
    },
  ],
  [
    "DATA after our FIN",
    "se-data-after-fin",
    async (t) => {
      const s = await openEcho(t);
      t.send([encode.fin(s.id), encode.data(s.id, Buffer.from("more"))]);
      return s.id;
    },
  ],
  [
    "a second FIN",
    "se-second-fin",
    async (t) => {
      const s = await openEcho(t);
      t.send([encode.fin(s.id), encode.fin(s.id)]);
      return s.id;
    },
  ],
  [
    "a WINDOW_UPDATE of 0",
    "se-window-zero",
    async (t) => {
      const s = await openEcho(t);
      t.send(encode.windowUpdate(s.id, 0));
      return s.id;
    },
  ],
  [
    "a WINDOW_UPDATE past 2^31 - 1",
    "se-window-overflow",
    async (t) => {
      const s = await openEcho(t);
      t.send(encode.windowUpdate(s.id, 2 ** 31 - 1)); // plus the initial 256 KiB: past the limit
      return s.id;
    },
  ],
  [
    "a frame for a stream never opened (a later OPEN below its id still opens: only OPENs order ids)",
    "se-unknown-id",
    async (t) => {
      const id = t.lastStreamId + 50;
      t.send(encode.windowUpdate(id, 1000));
      return id;
    },
  ],
  [
    "an OPEN whose app is not UTF-8",
    "se-open-utf8",
    async (t) => {
      const id = t.lastStreamId + 1;
      t.lastStreamId = id;
      t.send(openWithBadApp(id));
      return id;
    },
  ],
]);

describe("faults that cost one stream: RESET, the tunnel stays up", { concurrency: true }, () => {
  for (const [label, name, act] of CASES) {
    test(`${label} → RESET PROTOCOL`, () =>
      h.scenario(name, SHARED, async () => {
        const tunnel = shared;
        await tunnel.ping();
        const since = tunnel.frames.length;
        const id = await act(tunnel);
        await assertResetOnly(tunnel, id, since);
      }));
  }

  test("the id of an OPEN reset for bad UTF-8 counts as used: reusing it closes the tunnel 1002", () =>
    h.scenario("se-open-utf8-reuse", "se-open-utf8-reuse", async () => {
      const c = h.startConnector("se-open-utf8-reuse");
      const tunnel = await h.gateway.tunnel(c.name);
      tunnel.lastStreamId = 7;
      const since = tunnel.frames.length;
      tunnel.send(openWithBadApp(7));
      await tunnel.waitFrame((f) => f.type === T.RESET && f.streamId === 7, "RESET for stream 7", { since });
      tunnel.send(encode.open(7, "echo", "127.0.0.1", h.apps.ports.echo));
      const closed = await tunnel.closed();
      assert.deepEqual([closed.initiator, closed.code], ["connector", 1002], `close (reason "${closed.reason}")`);
      assert.equal(closed.reason, "PROTOCOL_STREAM_ID_NOT_INCREASING");
      assertClean(tunnel);
    }));
});
