import { describe, expect, test } from "bun:test";
import { FrameType, StreamCode } from "../../src/mux/const.ts";
import { OpenRejectedError, OpenTimeoutError, SessionUsageError, TunnelClosedError } from "../../src/mux/errors.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session } from "../../src/mux/session.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createPair, RawPeer, settle, sink, until } from "./helpers.ts";

const wiki = { app: "wiki", host: "wiki.corp.example", port: 443 };

describe("opening streams", () => {
  test("an accepted open resolves with an open stream and the connector sees the request", async () => {
    const { gateway, incoming } = createPair();
    const stream = await gateway.open(wiki);
    expect(stream.state).toBe("open");
    expect(incoming.map((s) => s.request)).toEqual([wiki]);
    expect(incoming[0]!.state).toBe("open");
    expect(gateway.stats().streamsActive).toBe(1);
  });

  test("a rejected open fails with OpenRejectedError carrying the code, and both sides forget the stream", async () => {
    const { gateway, connector } = createPair({
      onOpen: (_r, s) => s.reject(StreamCode.NOT_ALLOWED, "not in catalog"),
    });
    const error = await gateway.open(wiki).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenRejectedError);
    expect(error).toMatchObject({ code: "OPEN_NOT_ALLOWED", result: StreamCode.NOT_ALLOWED, detail: "not in catalog" });
    expect([gateway.activeStreams, connector.activeStreams]).toEqual([0, 0]);
    expect(gateway.stats().openFailures).toEqual({ NOT_ALLOWED: 1 });
    expect(connector.stats().openFailures).toEqual({ NOT_ALLOWED: 1 });
  });

  test("an asynchronous decision (a dial) answers later", async () => {
    const pending: (() => void)[] = [];
    const { gateway } = createPair({ onOpen: (_r, s) => void pending.push(() => s.reject(StreamCode.TIMEOUT)) });
    const result = gateway.open(wiki).catch((e: unknown) => e);
    await until(() => pending.length === 1, "the open to arrive");
    pending[0]!();
    expect(await result).toMatchObject({ result: StreamCode.TIMEOUT });
  });

  test("stream ids start at 1 and increase", async () => {
    const { gateway } = createPair();
    const ids = (await Promise.all([gateway.open(wiki), gateway.open(wiki), gateway.open(wiki)])).map((s) => s.id);
    expect(ids).toEqual([1, 2, 3]);
  });

  test("opens beyond the connector's stream limit are answered BUSY; a closed stream makes room", async () => {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const connector = new Session({
      role: "connector",
      transport: connectorEnd,
      clock: new FakeClock(),
      config: { maxStreams: 1 },
      onOpen: (_r, s) => void s.accept(),
    });
    const peer = new RawPeer(gatewayEnd);
    peer.send(enc.encodeOpen(1, "wiki", "h", 1), enc.encodeOpen(2, "wiki", "h", 1));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 2, "two answers");
    expect(peer.of(FrameType.OPEN_RESULT).map((f) => f.code)).toEqual([StreamCode.OK, StreamCode.BUSY]);
    expect(connector.stats()).toMatchObject({ openFailures: { BUSY: 1 }, streamsCreated: 1, streamsActive: 1 });
    peer.send(enc.encodeReset(1, StreamCode.CANCELLED), enc.encodeOpen(3, "wiki", "h", 1));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 3, "the third answer");
    expect(peer.of(FrameType.OPEN_RESULT)[2]).toMatchObject({ streamId: 3, code: StreamCode.OK });
  });

  test("the gateway refuses an open beyond its own limit without sending anything", async () => {
    const { gateway, connectorEnd } = createPair({ config: { maxStreams: 1 } });
    await gateway.open(wiki);
    const sent = connectorEnd.messagesSent;
    expect(await gateway.open(wiki).catch((e: unknown) => e)).toMatchObject({ result: StreamCode.BUSY });
    expect(gateway.activeStreams).toBe(1);
    expect(connectorEnd.messagesSent).toBe(sent);
  });

  test("an open with no answer times out: the caller gets OpenTimeoutError and the connector a RESET CANCELLED", async () => {
    const { gateway, clock, incoming } = createPair({ config: { openTimeoutMs: 5_000 }, onOpen: () => {} });
    const result = gateway.open(wiki).catch((e: unknown) => e);
    await until(() => incoming.length === 1, "the open to arrive");
    const connectorSide = sink(incoming[0]!);
    await clock.advance(4_999);
    expect(gateway.activeStreams).toBe(1);
    await clock.advance(1);
    expect(await result).toBeInstanceOf(OpenTimeoutError);
    await until(() => connectorSide.closed !== undefined, "the RESET at the connector");
    expect(connectorSide.closed).toMatchObject({ kind: "reset", code: StreamCode.CANCELLED, by: "remote" });
    expect(incoming[0]!.accept()).toBe(false); // a late dial result is ignored
    expect(gateway.stats().openFailures).toEqual({ TIMEOUT: 1 });
  });

  test("a RESET instead of OPEN_RESULT fails the open with that code", async () => {
    const { gateway, incoming } = createPair({ onOpen: () => {} });
    const result = gateway.open(wiki).catch((e: unknown) => e);
    await until(() => incoming.length === 1, "the open to arrive");
    incoming[0]!.reset(StreamCode.INTERNAL, "shutting down");
    expect(await result).toMatchObject({ result: StreamCode.INTERNAL });
  });

  test("DATA before OPEN_RESULT resets the stream PROTOCOL and fails the open at once", async () => {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const gateway = new Session({ role: "gateway", transport: gatewayEnd, clock: new FakeClock() });
    const peer = new RawPeer(connectorEnd);
    const result = gateway.open(wiki).catch((e: unknown) => e);
    await until(() => peer.of(FrameType.OPEN).length === 1, "the open");
    peer.send(enc.encodeData(1, new Uint8Array(4)));
    expect(await result).toMatchObject({ result: StreamCode.PROTOCOL });
    await until(() => peer.of(FrameType.RESET).length === 1, "the reset");
    expect(peer.of(FrameType.RESET)[0]).toMatchObject({ streamId: 1, code: StreamCode.PROTOCOL });
    expect([gateway.activeStreams, gateway.isClosed]).toEqual([0, false]);
  });

  test("an OPEN after the gateway's own GO_AWAY is answered BUSY without reaching the handler", async () => {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const opened: string[] = [];
    const connector = new Session({
      role: "connector",
      transport: connectorEnd,
      clock: new FakeClock(),
      onOpen: (r, s) => (opened.push(r.app), s.accept()),
    });
    const peer = new RawPeer(gatewayEnd);
    peer.send(enc.encodeOpen(1, "wiki", "wiki.corp.example", 443));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 1, "the first answer");
    peer.send(enc.encodeGoAway(0, "restarting"), enc.encodeOpen(2, "wiki", "wiki.corp.example", 443));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 2, "the second answer");
    expect(peer.of(FrameType.OPEN_RESULT).map((f) => f.code)).toEqual([StreamCode.OK, StreamCode.BUSY]);
    expect(opened).toEqual(["wiki"]);
    expect([connector.activeStreams, connector.isClosed]).toEqual([1, false]); // the first stream goes on
  });

  test("an open handler that throws answers INTERNAL and the tunnel stays up", async () => {
    const errors: string[] = [];
    const { gateway } = createPair({
      onOpen: () => {
        throw new Error("bug");
      },
      connectorEvents: { streamError: (_id, e) => void errors.push(e.code) },
    });
    expect(await gateway.open(wiki).catch((e: unknown) => e)).toMatchObject({ result: StreamCode.INTERNAL });
    expect(errors).toEqual(["TUNNEL_INTERNAL"]);
    expect(await gateway.open(wiki).catch((e: unknown) => e)).toMatchObject({ result: StreamCode.INTERNAL });
    expect(gateway.isClosed).toBe(false);
  });

  test("open is for gateways only, and pending opens fail when the tunnel closes", async () => {
    const { connector, gateway } = createPair({ onOpen: () => {} });
    expect(await connector.open(wiki).catch((e: unknown) => e)).toBeInstanceOf(SessionUsageError);
    const pending = gateway.open(wiki).catch((e: unknown) => e);
    await settle();
    gateway.close();
    expect(await pending).toBeInstanceOf(TunnelClosedError);
    expect(await gateway.open(wiki).catch((e: unknown) => e)).toBeInstanceOf(TunnelClosedError);
  });

  test("a gateway session's app or host longer than 255 bytes is refused before anything is sent", async () => {
    const { gateway } = createPair();
    expect(await gateway.open({ ...wiki, host: "x".repeat(256) }).catch((e: unknown) => e)).toMatchObject({
      code: "FRAME_TOO_LARGE",
    });
    expect(gateway.activeStreams).toBe(0);
  });
});

describe("stream ends as events", () => {
  test("streamEnded reports the streams left each time one ends, down to 0 when the tunnel closes", async () => {
    const left: number[] = [];
    const { gateway, connector } = createPair({
      onOpen: (_r, s) => void s.accept(),
      connectorEvents: { streamEnded: (active) => void left.push(active) },
    });
    const first = await gateway.open(wiki);
    await gateway.open(wiki);
    await gateway.open(wiki);
    expect(connector.activeStreams).toBe(3);
    first.reset(StreamCode.CANCELLED, "done");
    await until(() => left.length === 1, "the first end");
    expect(left).toEqual([2]);
    gateway.close();
    await until(() => left.length === 3, "the ends at close");
    expect(left).toEqual([2, 1, 0]);
  });
});
