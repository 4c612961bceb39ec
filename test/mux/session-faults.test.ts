import { describe, expect, test } from "bun:test";
import { FrameType, StreamCode } from "../../src/mux/const.ts";
import { CloseCode } from "../../src/transport/close-code.ts";
import { ProtocolError, TunnelClosedError } from "../../src/mux/errors.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session, type SessionClosed } from "../../src/mux/session.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createPair, RawPeer, settle, sink, type Sink, until } from "./helpers.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

/** A connector session whose gateway is driven by hand. */
function connectorWithRawGateway(options: { capacityBytes?: number; accept?: boolean } = {}) {
  const [connectorEnd, gatewayEnd] = createMemoryTransportPair({ capacityBytes: options.capacityBytes });
  const sinks: Sink[] = [];
  const warnings: string[] = [];
  let closedInfo: SessionClosed | undefined;
  const connector = new Session({
    role: "connector",
    transport: connectorEnd,
    clock: new FakeClock(),
    events: { closed: (info) => void (closedInfo = info) },
    log: { warn: (m) => void warnings.push(m) },
    onOpen: (_r, s) => {
      sinks.push(sink(s));
      if (options.accept ?? true) s.accept();
    },
  });
  return { connector, peer: new RawPeer(gatewayEnd), sinks, warnings, closed: () => closedInfo };
}

describe("stream-level faults reset one stream; the tunnel stays up", () => {
  test("DATA, WINDOW_UPDATE and FIN for unknown stream ids are each answered RESET PROTOCOL", async () => {
    const { connector, peer } = connectorWithRawGateway();
    peer.send(enc.encodeData(7, new Uint8Array(3)), enc.encodeWindowUpdate(8, 10), enc.encodeFin(9));
    await until(() => peer.of(FrameType.RESET).length === 3, "three resets");
    expect(peer.of(FrameType.RESET).map((f) => [f.streamId, f.code])).toEqual([
      [7, StreamCode.PROTOCOL],
      [8, StreamCode.PROTOCOL],
      [9, StreamCode.PROTOCOL],
    ]);
    expect(connector.isClosed).toBe(false);
  });

  test("a RESET for an unknown stream is not answered", async () => {
    const { connector, peer } = connectorWithRawGateway();
    peer.send(enc.encodeReset(5, StreamCode.CANCELLED), enc.encodePing(new Uint8Array(8)));
    await until(() => peer.of(FrameType.PONG).length === 1, "the pong after it");
    expect(peer.of(FrameType.RESET)).toEqual([]);
    expect(connector.stats().resetsReceived).toBe(1);
  });

  test("DATA before the stream was accepted resets it PROTOCOL", async () => {
    const { connector, peer, sinks } = connectorWithRawGateway({ accept: false });
    peer.send(enc.encodeOpen(1, "a", "h", 1), enc.encodeData(1, new Uint8Array(1)));
    await until(() => peer.of(FrameType.RESET).length === 1, "the reset");
    expect(sinks[0]!.closed).toMatchObject({ kind: "reset", code: StreamCode.PROTOCOL });
    expect(connector.activeStreams).toBe(0);
  });

  test("DATA after the peer's FIN resets the stream PROTOCOL", async () => {
    const { peer, sinks } = connectorWithRawGateway();
    peer.send(enc.encodeOpen(1, "a", "h", 1));
    await until(() => sinks.length === 1, "the open");
    peer.send(enc.encodeFin(1), enc.encodeData(1, new Uint8Array(1)));
    await until(() => peer.of(FrameType.RESET).length === 1, "the reset");
    expect(sinks[0]!).toMatchObject({ ended: true, bytes: 0, closed: { kind: "reset", code: StreamCode.PROTOCOL } });
  });

  test("an OPEN with invalid UTF-8 in app or host resets that stream PROTOCOL; its id counts as seen; the tunnel goes on", async () => {
    const errors: [number, string][] = [];
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const opened: string[] = [];
    const connector = new Session({
      role: "connector",
      transport: connectorEnd,
      clock: new FakeClock(),
      events: { streamError: (id, err) => void errors.push([id, err.code]) },
      onOpen: (r, st) => (opened.push(r.app), st.accept()),
    });
    const peer = new RawPeer(gatewayEnd);
    // OPEN stream 3: app "a\xff" (bad UTF-8), host "h", port 1; then OPEN stream 4 with a bad host.
    peer.send(
      hex("01 00 0000 00000003 00000007 02 61ff 01 68 0001"),
      hex("01 00 0000 00000004 00000007 01 61 02 c328 0001"),
    );
    await until(() => peer.of(FrameType.RESET).length === 2, "two resets");
    expect(peer.of(FrameType.RESET).map((f) => [f.streamId, f.code])).toEqual([
      [3, StreamCode.PROTOCOL],
      [4, StreamCode.PROTOCOL],
    ]);
    expect(errors).toEqual([
      [3, "STREAM_PROTOCOL"],
      [4, "STREAM_PROTOCOL"],
    ]);
    expect(opened).toEqual([]);
    expect(connector.activeStreams).toBe(0);
    // The next good OPEN works; an OPEN reusing a spent id is still the tunnel-level fault it always was.
    peer.send(enc.encodeOpen(5, "good", "h", 1));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 1, "the good open's result");
    expect(peer.of(FrameType.OPEN_RESULT)[0]).toMatchObject({ streamId: 5, code: StreamCode.OK });
    expect(connector.isClosed).toBe(false);
    peer.send(enc.encodeOpen(4, "a", "h", 1));
    expect(await connector.closed).toMatchObject({
      code: CloseCode.PROTOCOL_ERROR,
      reason: "PROTOCOL_STREAM_ID_NOT_INCREASING",
    });
  });

  test("a WINDOW_UPDATE with a zero increment resets that stream PROTOCOL (known or unknown id); the tunnel goes on", async () => {
    const { connector, peer, sinks } = connectorWithRawGateway();
    peer.send(enc.encodeOpen(1, "a", "h", 1));
    await until(() => sinks.length === 1, "the open");
    peer.send(hex("04 00 0000 00000001 00000004 00000000"), hex("04 00 0000 00000063 00000004 00000000"));
    await until(() => peer.of(FrameType.RESET).length === 2, "two resets");
    expect(peer.of(FrameType.RESET).map((f) => [f.streamId, f.code])).toEqual([
      [1, StreamCode.PROTOCOL],
      [99, StreamCode.PROTOCOL],
    ]);
    expect(sinks[0]!.closed).toMatchObject({ kind: "reset", code: StreamCode.PROTOCOL });
    expect(connector.isClosed).toBe(false);
  });

  test("a consumer callback that throws resets only its stream, with INTERNAL", async () => {
    const errors: string[] = [];
    const { gateway, incoming } = createPair({
      connectorEvents: { streamError: (_id, e) => void errors.push(e.code) },
    });
    const [bad, good] = await Promise.all([
      gateway.open({ app: "a", host: "h", port: 1 }),
      gateway.open({ app: "a", host: "h", port: 1 }),
    ]);
    incoming[0]!.setHandlers({
      data: () => {
        throw new Error("consumer bug");
      },
      end: () => {},
      drain: () => {},
      close: () => {},
    });
    const badSink = sink(bad);
    const goodSink = sink(good);
    bad.write(new Uint8Array(5));
    good.write(new Uint8Array(5));
    await until(() => badSink.closed !== undefined && goodSink.bytes === 5, "reset of one, echo of the other");
    expect(badSink.closed).toMatchObject({ kind: "reset", code: StreamCode.INTERNAL, by: "remote" });
    expect(errors).toEqual(["TUNNEL_INTERNAL"]);
  });
});

describe("tunnel-level faults close the tunnel with a typed reason", () => {
  const cases: [string, Uint8Array[], string][] = [
    ["an unknown frame type", [hex("0d 00 0000 00000000 00000000")], "PROTOCOL_UNKNOWN_TYPE"],
    ["a length beyond the message", [hex("03 00 0000 00000001 00000010 00")], "PROTOCOL_LENGTH_EXCEEDS_MESSAGE"],
    [
      "an OPEN id that does not increase",
      [enc.encodeOpen(2, "a", "h", 1), enc.encodeOpen(2, "a", "h", 1)],
      "PROTOCOL_STREAM_ID_NOT_INCREASING",
    ],
    ["an OPEN_RESULT sent to a connector", [enc.encodeOpenResult(1, StreamCode.OK)], "PROTOCOL_UNEXPECTED_FRAME"],
    ["a HEALTH_REPORT sent to a connector", [enc.encodeHealthReport({ apps: [] })], "PROTOCOL_UNEXPECTED_FRAME"],
  ];
  for (const [name, frames, code] of cases) {
    test(`${name} → close 1002 with ${code}`, async () => {
      const { connector, peer, sinks, closed } = connectorWithRawGateway();
      peer.send(enc.encodeOpen(1, "a", "h", 1));
      await until(() => sinks.length === 1, "a live stream");
      peer.send(...frames);
      const info = await connector.closed;
      expect(info).toMatchObject({ code: CloseCode.PROTOCOL_ERROR, reason: code, initiator: "local" });
      expect(info.error).toBeInstanceOf(ProtocolError);
      expect(closed()).toBe(info);
      expect(sinks[0]!.closed).toMatchObject({ kind: "tunnel" });
      await until(() => peer.closed !== undefined, "the close at the peer");
      expect(peer.closed).toMatchObject({ code: 1002, reason: code });
    });
  }

  test("a gateway that receives OPEN closes the tunnel", async () => {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const gateway = new Session({ role: "gateway", transport: gatewayEnd, clock: new FakeClock() });
    new RawPeer(connectorEnd).send(enc.encodeOpen(1, "a", "h", 1));
    expect(await gateway.closed).toMatchObject({ code: 1002, reason: "PROTOCOL_UNEXPECTED_FRAME" });
  });

  test("frames after the bad one in the same message are not processed", async () => {
    const { connector, peer } = connectorWithRawGateway();
    peer.send(hex("0d 00 0000 00000000 00000000"), enc.encodePing(new Uint8Array(8)));
    await connector.closed;
    await settle();
    expect(peer.of(FrameType.PONG)).toEqual([]);
  });

  test("when the transport closes under it, streams end with reason tunnel and `closed` says remote", async () => {
    const { gateway, connector, gatewayEnd } = createPair();
    const stream = await gateway.open({ app: "a", host: "h", port: 1 });
    const s = sink(stream);
    gatewayEnd.fail(new Error("reset by peer"));
    const info = await connector.closed;
    expect(info).toMatchObject({ code: 1006, initiator: "remote" });
    await until(() => s.closed !== undefined, "stream close");
    expect(s.closed).toMatchObject({ kind: "tunnel" });
    expect((s.closed as { error: unknown }).error).toBeInstanceOf(TunnelClosedError);
  });

  test("a peer that floods us without reading is cut off once control frames pile up (no unbounded queue)", async () => {
    const { connector, peer } = connectorWithRawGateway({ capacityBytes: 1024 });
    peer.transport.suspend(); // the peer stops reading what we send
    const ping = enc.encodePing(new Uint8Array(8));
    const batch = Array.from({ length: 50_000 }, () => ping); // 1 MiB messages of PINGs
    for (let i = 0; i < 5 && !connector.isClosed; i++) {
      peer.send(...batch);
      await settle(2);
    }
    expect(await connector.closed).toMatchObject({ code: CloseCode.INTERNAL_ERROR, reason: "TUNNEL_BACKLOG" });
  });

  test("a listener that throws is logged and does not break the session", async () => {
    const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
    const warnings: string[] = [];
    const connector = new Session({
      role: "connector",
      transport: connectorEnd,
      clock: new FakeClock(),
      log: { warn: (m) => void warnings.push(m) },
      events: {
        configChanged: () => {
          throw new Error("listener bug");
        },
      },
    });
    const peer = new RawPeer(gatewayEnd);
    peer.send(enc.encodeConfigChanged("v2"), enc.encodePing(new Uint8Array(8)));
    await until(() => peer.of(FrameType.PONG).length === 1, "the pong after it");
    expect(warnings).toEqual(['session listener "configChanged" threw']);
    expect(connector.isClosed).toBe(false);
  });
});
