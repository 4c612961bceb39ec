// @ts-check
/**
 * PROTOCOL §5.5 between the compiled connector and the interop gateway. The `source` app behind the
 * connector sends more than a window as fast as it can, so only the gateway's credit holds the
 * connector back: the tunnel checks every DATA frame against the credit granted (a frame beyond it,
 * or a CREDIT_EXHAUSTED flag on the wrong frame, is a violation). And the other way: DATA beyond the
 * window the connector granted is reset FLOW_CONTROL, the tunnel stays up.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SOURCE_BYTES, sourcePattern } from "./apps.mjs";
import { assertClean } from "./checks.mjs";
import { CODE, encode, INITIAL_WINDOW, MAX_PAYLOAD, T } from "./gateway/codec.mjs";
import { until } from "./gateway/wait.mjs";
import { startInterop } from "./harness.mjs";

/** One connector serves every scenario here: none of them closes its tunnel, each uses its own streams. */
const SHARED = "flow";

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

const tunnelOf = async (/** @type {string} */ _scenario) => shared;

/** Waits until the stream has received exactly `n` bytes and the last frame flagged CREDIT_EXHAUSTED. */
async function exhausted(/** @type {import("./gateway/stream.mjs").Stream} */ s, /** @type {number} */ n) {
  await s.readBytes(n);
  await s.tunnel.ping(); // anything the connector queued before our PING's answer has arrived by now
  assert.equal(s.received, n, "not a byte beyond the credit");
  assert.equal(s.dataFrames.at(-1)?.creditExhausted, true, "the frame that used the last credit is flagged");
}

describe("flow control", { concurrency: true }, () => {
  test("the connector stops at the window, flags CREDIT_EXHAUSTED, resumes by exactly what is granted", () =>
    h.scenario("fc-window", SHARED, async () => {
      const tunnel = await tunnelOf("fc-window");
      const s = tunnel.open("source", "127.0.0.1", h.apps.ports.source, { autoCredit: false });
      assert.equal((await s.opened()).code, CODE.OK);
      await exhausted(s, INITIAL_WINDOW);
      s.grant(1);
      await exhausted(s, INITIAL_WINDOW + 1);
      s.grant(100_000);
      await exhausted(s, INITIAL_WINDOW + 1 + 100_000);
      s.grant(SOURCE_BYTES); // more than the rest: the whole app's output, then its FIN
      const all = await s.readToEnd();
      assert.ok(all.equals(sourcePattern()), "every byte, in order");
      assert.ok(s.dataFrames.every((f) => f.bytes <= MAX_PAYLOAD[T.DATA]));
      assertClean(tunnel);
    }));

  test("a window the gateway grows to 2 MiB is used without waiting for more", () =>
    h.scenario("fc-grow", SHARED, async () => {
      const tunnel = await tunnelOf("fc-grow");
      const s = tunnel.open("source", "127.0.0.1", h.apps.ports.source, { autoCredit: false });
      s.grant(2 * 1024 * 1024 - INITIAL_WINDOW); // §5.5: a receiver may grow a window up to 16 MiB
      assert.equal((await s.opened()).code, CODE.OK);
      assert.ok((await s.readToEnd()).equals(sourcePattern()));
      assert.equal(s.dataFrames.filter((f) => f.creditExhausted).length, 0, "credit never ran out");
      assertClean(tunnel);
    }));

  test("the connector grants credit as its app consumes: 1 MiB through a 256 KiB window", () =>
    h.scenario("fc-credit", SHARED, async () => {
      const tunnel = await tunnelOf("fc-credit");
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s.opened()).code, CODE.OK);
      const payload = sourcePattern(1024 * 1024);
      await s.write(payload); // waits for the connector's WINDOW_UPDATEs whenever the window is spent
      assert.ok((await s.readBytes(payload.length)).equals(payload));
      const updates = tunnel.frames.filter((f) => f.type === T.WINDOW_UPDATE && f.streamId === s.id);
      assert.ok(updates.length >= 3, "at least 768 KiB of credit came back");
      for (const u of updates)
        assert.ok(
          (u.increment ?? 0) >= INITIAL_WINDOW / 2,
          `§5.5: updates of at least half the window (${u.increment})`,
        );
      assertClean(tunnel);
    }));

  test("DATA beyond the connector's window is reset FLOW_CONTROL; the tunnel stays up", () =>
    h.scenario("fc-overrun", SHARED, async () => {
      const tunnel = await tunnelOf("fc-overrun");
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s.opened()).code, CODE.OK);
      // One message, one byte beyond the window. The first frame stays under half the window, so the
      // connector cannot have granted any credit back before it reads the second (§5.5: a receiver
      // grants once half a window is delivered): from its side too, that byte is beyond the window.
      const first = INITIAL_WINDOW / 2 - 1;
      tunnel.send([
        encode.data(s.id, Buffer.alloc(first, 0x61)),
        encode.data(s.id, Buffer.alloc(INITIAL_WINDOW - first + 1, 0x62), true),
      ]);
      s.sendCredit = 0;
      const reset = await s.waitReset();
      assert.equal(reset.code, CODE.FLOW_CONTROL, `RESET code (message "${reset.message}")`);
      await tunnel.ping();
      const s2 = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s2.opened()).code, CODE.OK);
      await s2.write(Buffer.from("fine"));
      assert.equal((await s2.readBytes(4)).toString(), "fine");
      assertClean(tunnel);
    }));

  test("an app that stops reading never makes the connector buffer beyond the window", () =>
    h.scenario("fc-stalled", SHARED, async () => {
      const tunnel = await tunnelOf("fc-stalled");
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo, { autoCredit: false });
      assert.equal((await s.opened()).code, CODE.OK);
      // We grant nothing back, so the echo's answers pile up in the connector, then in the app; the
      // connector must keep granting us only what its app took, and send us only what we granted.
      const writing = s.write(sourcePattern(4 * 1024 * 1024), { timeoutMs: 60_000 });
      await until(tunnel.changes, "the connector's window to us filled", () => s.received >= INITIAL_WINDOW);
      await tunnel.ping();
      assert.equal(s.received, INITIAL_WINDOW);
      s.autoCredit = true;
      s.grant(INITIAL_WINDOW);
      await writing;
      assert.ok((await s.readBytes(4 * 1024 * 1024)).equals(sourcePattern(4 * 1024 * 1024)));
      assertClean(tunnel);
    }));
});
