import { describe, expect, test } from "bun:test";
import { FrameType, INITIAL_WINDOW, StreamCode } from "../../src/mux/const.ts";
import { ReceiveWindow, SendBuffer } from "../../src/mux/flow-control.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session } from "../../src/mux/session.ts";
import type { Stream } from "../../src/mux/stream.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createPair, RawPeer, settle, sink, type Sink, until } from "./helpers.ts";

const wiki = { app: "wiki", host: "wiki.corp.example", port: 443 };
const CHUNK = 60_000; // not a divisor of the window, so the last write overshoots it

describe("SendBuffer", () => {
  test("pull hands out views of the queued chunks, never more than credit or max", () => {
    const buffer = new SendBuffer();
    const a = new Uint8Array(100);
    const b = new Uint8Array(300);
    buffer.push(a);
    buffer.push(b);
    const out: Uint8Array[] = [];
    expect(buffer.pull(250, out)).toBe(250);
    expect(out[0]).toBe(a); // a whole chunk goes out as itself
    expect(out[1]!.buffer).toBe(b.buffer); // a partial chunk as a view
    expect([out[1]!.byteOffset, out[1]!.length]).toEqual([0, 150]);
    expect([buffer.queued, buffer.credit]).toEqual([150, INITIAL_WINDOW - 250]);
    buffer.credit = 10;
    expect(buffer.pull(1000, [])).toBe(10);
    expect(buffer.writable).toBe(false);
  });

  test("credit beyond 2^31-1 is refused and leaves the credit unchanged", () => {
    const buffer = new SendBuffer();
    expect(buffer.addCredit(2 ** 31 - 1 - INITIAL_WINDOW)).toBe(true);
    expect(buffer.addCredit(1)).toBe(false);
    expect(buffer.credit).toBe(2 ** 31 - 1);
  });
});

describe("ReceiveWindow", () => {
  const unlimited = () => true;

  test("asks for an update only once half a window was consumed", () => {
    const window = new ReceiveWindow();
    expect(window.receive(INITIAL_WINDOW)).toBe(true);
    expect(window.consumed(INITIAL_WINDOW / 2 - 1)).toBe(false);
    expect(window.consumed(1)).toBe(true);
    expect(window.grant(16 * INITIAL_WINDOW, unlimited)).toBe(INITIAL_WINDOW / 2);
    expect(window.receive(INITIAL_WINDOW / 2 + 1)).toBe(false); // beyond the credit granted
  });

  test("doubles when the sender ran out of credit while the consumer kept up, up to the maximum only", () => {
    const window = new ReceiveWindow();
    const max = 4 * INITIAL_WINDOW;
    const sizes: number[] = [];
    for (let round = 0; round < 5; round++) {
      window.receive(window.peerCredit); // the sender used all its credit…
      window.consumed(window.unconsumed); // …and the consumer delivered it at once
      window.senderExhausted();
      window.grant(max, unlimited);
      sizes.push(window.window);
    }
    expect(sizes).toEqual([2, 4, 4, 4, 4].map((n) => n * INITIAL_WINDOW));
    expect(window.peerCredit).toBe(max);
  });

  test("does not grow for a slow consumer, nor without the sender's signal", () => {
    const window = new ReceiveWindow();
    window.receive(INITIAL_WINDOW);
    window.consumed(INITIAL_WINDOW / 2); // half still held by the consumer when the flag arrives
    window.senderExhausted();
    window.consumed(INITIAL_WINDOW / 2);
    window.grant(16 * INITIAL_WINDOW, unlimited);
    window.receive(INITIAL_WINDOW);
    window.consumed(INITIAL_WINDOW); // fast consumer, but the sender was not out of credit
    window.grant(16 * INITIAL_WINDOW, unlimited);
    expect(window.window).toBe(INITIAL_WINDOW);
  });

  test("grows only by what the session's budget allows", () => {
    const window = new ReceiveWindow();
    const asked: number[] = [];
    window.receive(INITIAL_WINDOW);
    window.consumed(INITIAL_WINDOW);
    window.senderExhausted();
    expect(window.grant(16 * INITIAL_WINDOW, (extra) => (asked.push(extra), false))).toBe(INITIAL_WINDOW);
    expect(asked).toEqual([INITIAL_WINDOW]);
    expect(window.window).toBe(INITIAL_WINDOW);
  });
});

describe("flow control between sessions", () => {
  test("a receiver that never consumes stops the sender at the window; memory stays bounded on both sides", async () => {
    const incoming: Sink[] = [];
    const { gateway, connector } = createPair({
      onOpen: (_r, s) => void (incoming.push(sink(s, { consume: false })), s.accept()),
    });
    const gw = await gateway.open(wiki);
    const gwSink = sink(gw);
    let written = 0;
    while (written < 100 * CHUNK && gw.write(new Uint8Array(CHUNK))) written += CHUNK; // bounded even if broken
    written += CHUNK;
    await settle(20);
    // Writes are taken until the window is covered; the one that got `false` is the only excess.
    expect(written).toBe(5 * CHUNK);
    expect(written - INITIAL_WINDOW).toBeLessThan(CHUNK);
    expect(incoming[0]!.bytes).toBe(INITIAL_WINDOW);
    expect(connector.stats().unconsumedBytes).toBe(INITIAL_WINDOW);
    expect(gateway.stats().queuedBytes).toBe(written - INITIAL_WINDOW);
    expect([gw.sendCredit, gwSink.drains]).toEqual([0, 0]);
    expect(incoming[0]!.closed).toBeUndefined();
    expect(connector.stats().unconsumedBytes).toBeLessThanOrEqual(INITIAL_WINDOW); // a slow consumer's window never grows
  });

  /** Writes `bytes` on a new gateway stream, following drain, and waits until the far side has them all. */
  async function pump(
    gateway: Session,
    far: Stream[],
    bytes: number,
    onWrite?: () => void,
  ): Promise<{ near: Stream; farStream: Stream; received: Sink }> {
    const near = await gateway.open(wiki);
    const farStream = far[far.length - 1]!;
    const received = sink(farStream);
    let written = 0;
    const writeSome = () => {
      while (written < bytes) {
        onWrite?.();
        written += CHUNK;
        if (!near.write(new Uint8Array(CHUNK))) return;
      }
      near.end();
    };
    near.setHandlers({ data() {}, end() {}, close() {}, drain: writeSome });
    writeSome();
    await until(() => received.ended, "all data across");
    return { near, farStream, received };
  }

  test("a sender that runs out of credit while the consumer keeps up gets a grown window, bounded by the maximum", async () => {
    const far: Stream[] = [];
    const max = 4 * INITIAL_WINDOW;
    const { gateway } = createPair({
      config: { maxReceiveWindow: max },
      onOpen: (_r, s) => void (far.push(s), s.accept()),
    });
    const { farStream, received } = await pump(gateway, far, 64 * CHUNK);
    expect(received.bytes).toBe(64 * CHUNK);
    expect(farStream.receiveWindow).toBe(max);
  });

  test("window growth across a tunnel's streams stays within the session's budget", async () => {
    const far: Stream[] = [];
    let peakGrowth = 0;
    const live = () => far.filter((s) => s.state !== "closed" && s.state !== "reset");
    const { gateway } = createPair({
      config: { windowGrowthBudget: INITIAL_WINDOW },
      onOpen: (_r, s) => void (far.push(s), s.accept()),
    });
    const first = pump(gateway, far, 64 * CHUNK, () => {
      peakGrowth = Math.max(
        peakGrowth,
        live().reduce((sum, s) => sum + s.receiveWindow - INITIAL_WINDOW, 0),
      );
    });
    await until(() => far.length === 1, "first stream open");
    const second = pump(gateway, far, 64 * CHUNK);
    await Promise.all([first, second]);
    expect(peakGrowth).toBe(INITIAL_WINDOW); // one doubling in all while both streams ran
  });

  test("the writer gets drain once the consumer delivers half a window, and everything arrives", async () => {
    const streams: Stream[] = [];
    const { gateway } = createPair({ onOpen: (_r, s) => void (streams.push(s), s.accept()) });
    const gw = await gateway.open(wiki);
    const gwSink = sink(gw);
    const slow = sink(streams[0]!, { consume: false });
    let written = CHUNK;
    while (written < 100 * CHUNK && gw.write(new Uint8Array(CHUNK))) written += CHUNK; // bounded even if broken
    await settle(20);
    streams[0]!.consumed(INITIAL_WINDOW / 2 - 1);
    await settle(20);
    expect(gwSink.drains).toBe(0); // below half a window: no update yet
    streams[0]!.consumed(1);
    await until(() => gwSink.drains === 1, "drain at the writer");
    gw.end();
    streams[0]!.consumed(INITIAL_WINDOW / 2);
    await until(() => slow.ended, "the rest of the data");
    expect(slow.bytes).toBe(written);
  });

  test("credit comes back in WINDOW_UPDATEs of half a window, not one per frame", async () => {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    new Session({
      role: "connector",
      transport: connectorEnd,
      clock: new FakeClock(),
      onOpen: (_r, s) => (sink(s), s.accept()),
    });
    const peer = new RawPeer(gatewayEnd);
    peer.send(enc.encodeOpen(1, "wiki", "h", 1));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 1, "open result");
    for (let i = 0; i < 16; i++) peer.send(enc.encodeData(1, new Uint8Array(16 * 1024)));
    await until(() => peer.of(FrameType.WINDOW_UPDATE).length === 2, "two updates");
    await settle();
    expect(peer.of(FrameType.WINDOW_UPDATE).map((f) => f.increment)).toEqual([INITIAL_WINDOW / 2, INITIAL_WINDOW / 2]);
  });
});

describe("a misbehaving peer", () => {
  async function connectorWithRawGateway(streams: number) {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const sinks: Sink[] = [];
    const connector = new Session({
      role: "connector",
      transport: connectorEnd,
      clock: new FakeClock(),
      onOpen: (_r, s) => void (sinks.push(sink(s, { consume: false })), s.accept()),
    });
    const peer = new RawPeer(gatewayEnd);
    for (let id = 1; id <= streams; id++) peer.send(enc.encodeOpen(id, "wiki", "h", 1));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === streams, "open results");
    return { connector, peer, sinks };
  }

  test("DATA beyond the window resets that stream with FLOW_CONTROL; other streams and the tunnel go on", async () => {
    const { connector, peer, sinks } = await connectorWithRawGateway(2);
    const full = new Uint8Array(INITIAL_WINDOW / 4);
    peer.send(enc.encodeData(1, full), enc.encodeData(1, full), enc.encodeData(1, full), enc.encodeData(1, full));
    peer.send(enc.encodeData(1, new Uint8Array(1)));
    await until(() => peer.of(FrameType.RESET).length === 1, "the reset");
    expect(peer.of(FrameType.RESET)[0]).toMatchObject({ streamId: 1, code: StreamCode.FLOW_CONTROL });
    expect(sinks[0]!.closed).toMatchObject({ kind: "reset", code: StreamCode.FLOW_CONTROL, by: "local" });
    expect(sinks[0]!.bytes).toBe(INITIAL_WINDOW); // the bytes within the window were delivered
    peer.send(enc.encodeData(2, new Uint8Array(10)));
    await until(() => sinks[1]!.bytes === 10, "data on the other stream");
    expect([connector.isClosed, connector.activeStreams]).toEqual([false, 1]);
  });

  test("a WINDOW_UPDATE that overflows 2^31-1 resets the stream with PROTOCOL", async () => {
    const { connector, peer } = await connectorWithRawGateway(1);
    peer.send(enc.encodeWindowUpdate(1, 2 ** 31 - 1));
    await until(() => peer.of(FrameType.RESET).length === 1, "the reset");
    expect(peer.of(FrameType.RESET)[0]).toMatchObject({ streamId: 1, code: StreamCode.PROTOCOL });
    expect(connector.isClosed).toBe(false);
  });
});
