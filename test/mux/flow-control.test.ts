import { describe, expect, test } from "bun:test";
import { FrameType, INITIAL_WINDOW, StreamCode } from "../../src/mux/const.ts";
import { GROWTH_MIN_RTT_MS, ReceiveWindow, SendBuffer } from "../../src/mux/flow-control.ts";
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
  /** A long link's pace: one window per 80 ms round trip, so growth is never held back by the product. */
  const longLink = (round: number) => ({ now: round * 80, minRttMs: 80 });

  test("asks for an update only once half a window was consumed", () => {
    const window = new ReceiveWindow();
    expect(window.receive(INITIAL_WINDOW)).toBe(true);
    expect(window.consumed(INITIAL_WINDOW / 2 - 1)).toBe(false);
    expect(window.consumed(1)).toBe(true);
    expect(window.grant(16 * INITIAL_WINDOW, unlimited, longLink(0))).toBe(INITIAL_WINDOW / 2);
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
      window.grant(max, unlimited, longLink(round));
      sizes.push(window.window);
    }
    // The first round only starts the delivery-rate sample.
    expect(sizes).toEqual([1, 2, 4, 4, 4].map((n) => n * INITIAL_WINDOW));
    expect(window.peerCredit).toBe(max);
  });

  test("does not grow for a slow consumer, nor without the sender's signal", () => {
    const window = new ReceiveWindow();
    window.grant(16 * INITIAL_WINDOW, unlimited, longLink(0)); // starts the rate sample: the product allows growth
    window.receive(INITIAL_WINDOW);
    window.consumed(INITIAL_WINDOW / 2); // half still held by the consumer when the flag arrives
    window.senderExhausted();
    window.consumed(INITIAL_WINDOW / 2);
    window.grant(16 * INITIAL_WINDOW, unlimited, longLink(1));
    window.receive(INITIAL_WINDOW);
    window.consumed(INITIAL_WINDOW); // fast consumer, but the sender was not out of credit
    window.grant(16 * INITIAL_WINDOW, unlimited, longLink(2));
    expect(window.window).toBe(INITIAL_WINDOW);
  });

  /** One round: the sender used its credit, the consumer delivered it at once, `ms` after the last. */
  function exhaustedRound(window: ReceiveWindow, at: number, minRttMs: number | undefined) {
    window.receive(window.peerCredit);
    window.consumed(window.unconsumed);
    window.senderExhausted();
    window.grant(16 * INITIAL_WINDOW, unlimited, { now: at, minRttMs });
  }

  test("with a pace, doubles only while below 1.5 bandwidth-delay products", () => {
    // A long link: one window per 80 ms round trip, so the product is the window itself: it keeps doubling.
    const long = new ReceiveWindow();
    for (let round = 0; round < 4; round++) exhaustedRound(long, round * 80, 80);
    expect(long.window).toBe(8 * INITIAL_WINDOW); // the first round only starts the rate sample; then ×2 a round
    // A short path limited by CPU: a window every 2 ms with a 0.2 ms round trip is a product of a tenth
    // of the window: more window would only queue.
    const short = new ReceiveWindow();
    for (let round = 0; round < 6; round++) exhaustedRound(short, round * 2, 0.2);
    expect(short.window).toBe(INITIAL_WINDOW);
  });

  test("never grows on a round trip under 2 ms, however window-limited; from 2 ms it does", () => {
    // Each round delivers a whole window per round trip: the product is the window, so only the
    // round trip's length decides.
    const near = new ReceiveWindow();
    for (let round = 0; round < 6; round++) exhaustedRound(near, round * 1.9, 1.9);
    expect(near.window).toBe(INITIAL_WINDOW);
    const far = new ReceiveWindow();
    for (let round = 0; round < 3; round++) exhaustedRound(far, round * GROWTH_MIN_RTT_MS, GROWTH_MIN_RTT_MS);
    expect(far.window).toBe(4 * INITIAL_WINDOW);
  });

  test("with a pace, never grows before a round trip is known", () => {
    const window = new ReceiveWindow();
    for (let round = 0; round < 6; round++) exhaustedRound(window, round * 80, undefined);
    expect(window.window).toBe(INITIAL_WINDOW);
  });

  test("grows only by what the session's budget allows", () => {
    const window = new ReceiveWindow();
    const asked: number[] = [];
    window.grant(16 * INITIAL_WINDOW, unlimited, longLink(0)); // starts the rate sample
    window.receive(INITIAL_WINDOW);
    window.consumed(INITIAL_WINDOW);
    window.senderExhausted();
    const refuse = (extra: number) => (asked.push(extra), false);
    expect(window.grant(16 * INITIAL_WINDOW, refuse, longLink(1))).toBe(INITIAL_WINDOW);
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

  test("on a path with no delay the window does not grow, however often the sender runs out of credit", async () => {
    // Growth sized by the bandwidth-delay product: here the round trip is 0 (a fake clock that does not
    // move), so every grown byte would only wait in a queue. Growth on a long link: long-link.test.ts.
    const far: Stream[] = [];
    const { gateway } = createPair({ onOpen: (_r, s) => void (far.push(s), s.accept()) });
    const { farStream, received } = await pump(gateway, far, 64 * CHUNK);
    expect(received.bytes).toBe(64 * CHUNK);
    expect(farStream.receiveWindow).toBe(INITIAL_WINDOW);
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
