import { describe, expect, test } from "bun:test";
import { Secret } from "../../src/secret.ts";
import { FrameType, GoAwayCode, StreamCode } from "../../src/mux/const.ts";
import { CloseCode } from "../../src/transport/close-code.ts";
import { HeartbeatTimeoutError, SessionUsageError, TunnelDrainingError } from "../../src/mux/errors.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import type { HealthReport } from "../../src/mux/payloads.ts";
import { Session } from "../../src/mux/session.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createPair, RawPeer, settle, sink, until } from "./helpers.ts";

const wiki = { app: "wiki", host: "wiki.corp.example", port: 443 };

function connectorWithRawGateway() {
  const clock = new FakeClock();
  const [connectorEnd, gatewayEnd] = createMemoryTransportPair();
  const rtts: number[] = [];
  const connector = new Session({
    role: "connector",
    transport: connectorEnd,
    clock,
    events: { rtt: (ms) => void rtts.push(ms) },
    onOpen: (_r, s) => void s.accept(),
  });
  return { clock, connector, peer: new RawPeer(gatewayEnd), rtts };
}

describe("heartbeats", () => {
  test("a PING goes out at once, 0.1 s, 1 s and 3 s later, then every interval; its PONG gives the round-trip time", async () => {
    const { clock, connector, peer, rtts } = connectorWithRawGateway();
    await until(() => peer.of(FrameType.PING).length === 1, "the first ping");
    await clock.advance(25);
    peer.send(enc.encodePong(peer.of(FrameType.PING)[0]!.opaque));
    await until(() => rtts.length === 1, "an rtt");
    expect(rtts).toEqual([25]);
    expect(connector.stats().rttMs).toBe(25);
    const pingsAt = async (ms: number, count: number) => {
      await clock.advance(ms - 1 - clock.now());
      expect(peer.of(FrameType.PING).length).toBe(count - 1);
      await clock.advance(1);
      await until(() => peer.of(FrameType.PING).length === count, `ping ${count} at ${ms} ms`);
    };
    // Three early PINGs: the first round trip is often taken while the code is cold and busy starting.
    await pingsAt(100, 2);
    await pingsAt(1_000, 3);
    await pingsAt(3_000, 4);
    await pingsAt(13_000, 5);
    await pingsAt(23_000, 6);
  });

  test("a PONG that answers no PING of ours is ignored", async () => {
    const { connector, peer, rtts } = connectorWithRawGateway();
    peer.send(enc.encodePong(new Uint8Array(8).fill(9)));
    await settle();
    expect([rtts, connector.stats().rttMs]).toEqual([[], undefined]);
  });

  test("every PING is answered with a PONG carrying its bytes", async () => {
    const { peer } = connectorWithRawGateway();
    const opaque = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    peer.send(enc.encodePing(opaque));
    await until(() => peer.of(FrameType.PONG).length === 1, "the pong");
    expect([...peer.of(FrameType.PONG)[0]!.opaque]).toEqual([...opaque]);
  });

  test("a tunnel that hears nothing for three intervals is closed as dead (1001), not a moment before", async () => {
    const { clock, connector, peer } = connectorWithRawGateway();
    await clock.advance(29_999);
    expect(connector.isClosed).toBe(false);
    await clock.advance(1);
    const info = await connector.closed;
    expect(info).toMatchObject({ code: CloseCode.GOING_AWAY, reason: "TUNNEL_DEAD", initiator: "local" });
    expect(info.error).toBeInstanceOf(HeartbeatTimeoutError);
    await until(() => peer.closed !== undefined, "the close at the peer");
  });

  test("anything received keeps the tunnel alive", async () => {
    const { clock, connector, peer } = connectorWithRawGateway();
    for (let i = 0; i < 10; i++) {
      await clock.advance(20_000);
      peer.send(enc.encodeWindowUpdate(999, 1)); // even a frame for an unknown stream
      await settle(1);
    }
    expect(connector.isClosed).toBe(false);
  });

  test("two sessions keep each other alive, with one timer each however many streams they carry", async () => {
    const { clock, connector, gateway } = createPair();
    await Promise.all(Array.from({ length: 1_000 }, () => gateway.open(wiki)));
    expect(clock.pendingTimers).toBe(2);
    await clock.advance(10 * 60_000);
    expect([connector.isClosed, gateway.isClosed, connector.activeStreams]).toEqual([false, false, 1_000]);
  });
});

describe("GO_AWAY", () => {
  test("after the connector's GO_AWAY the gateway opens nothing new and open streams finish", async () => {
    const goAways: number[] = [];
    const { connector, gateway } = createPair({ gatewayEvents: { goAway: (code) => void goAways.push(code) } });
    const stream = await gateway.open(wiki);
    const out = sink(stream);
    connector.goAway();
    await until(() => goAways.length === 1, "the go-away event");
    expect([goAways, gateway.peerDraining, connector.draining]).toEqual([[GoAwayCode.DRAINING], true, true]);
    expect(await gateway.open(wiki).catch((e: unknown) => e)).toBeInstanceOf(TunnelDrainingError);
    stream.write(new Uint8Array(1000));
    stream.end();
    await until(() => out.closed !== undefined, "the existing stream to finish");
    expect([out.bytes, out.closed]).toEqual([1000, { kind: "fin" }]);
    expect(connector.activeStreams).toBe(0);
  });

  test("a draining connector answers a new OPEN with BUSY", async () => {
    const { connector, peer } = connectorWithRawGateway();
    connector.goAway();
    peer.send(enc.encodeOpen(1, "wiki", "h", 1));
    await until(() => peer.of(FrameType.OPEN_RESULT).length === 1, "the answer");
    expect(peer.of(FrameType.OPEN_RESULT)[0]).toMatchObject({ code: StreamCode.BUSY });
    expect(peer.of(FrameType.GO_AWAY)).toMatchObject([{ code: GoAwayCode.DRAINING }]);
  });

  test("a gateway's GO_AWAY is reported to the connector, whose streams go on", async () => {
    const events: string[] = [];
    const { connector, gateway } = createPair({
      connectorEvents: { goAway: (_c, message) => void events.push(message) },
    });
    const stream = await gateway.open(wiki);
    const out = sink(stream);
    gateway.goAway(GoAwayCode.DRAINING, "gateway restarting");
    await until(() => events.length === 1, "the event");
    expect([events, connector.peerDraining]).toEqual([["gateway restarting"], true]);
    stream.write(new Uint8Array(10));
    await until(() => out.bytes === 10, "echo after go-away");
  });

  test("close sends what is queued (GO_AWAY) before closing the transport", async () => {
    const { connector, peer } = connectorWithRawGateway();
    connector.goAway();
    connector.close(CloseCode.NORMAL, "stopping");
    await until(() => peer.closed !== undefined, "the close");
    expect(peer.of(FrameType.GO_AWAY).length).toBe(1);
    expect(peer.closed).toMatchObject({ code: 1000, reason: "stopping" });
  });
});

describe("tunnel messages", () => {
  test("token updates and health reports reach the gateway; catalog changes reach the connector", async () => {
    const tokens: string[] = [];
    const reports: HealthReport[] = [];
    const versions: string[] = [];
    const { connector, gateway } = createPair({
      gatewayEvents: { tokenUpdate: (t) => void tokens.push(t.reveal()), healthReport: (r) => void reports.push(r) },
      connectorEvents: { configChanged: (v) => void versions.push(v) },
    });
    const report = { apps: [{ name: "wiki", servers: [{ address: "10.0.0.1:443", healthy: true }] }] };
    connector.sendTokenUpdate(new Secret("token-2"));
    connector.sendHealthReport(report);
    gateway.sendConfigChanged("v9");
    await until(() => tokens.length + reports.length + versions.length === 3, "all three");
    expect([tokens, reports, versions]).toEqual([["token-2"], [report], ["v9"]]);
  });

  test("each message can only be sent by its role", () => {
    const { connector, gateway } = createPair();
    expect(() => gateway.sendTokenUpdate(new Secret("t"))).toThrow(SessionUsageError);
    expect(() => gateway.sendHealthReport({ apps: [] })).toThrow(SessionUsageError);
    expect(() => connector.sendConfigChanged("v1")).toThrow(SessionUsageError);
  });
});
