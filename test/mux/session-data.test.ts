import { describe, expect, test } from "bun:test";
import { INITIAL_WINDOW, StreamCode } from "../../src/mux/const.ts";
import { StreamStateError } from "../../src/mux/errors.ts";
import type { Stream } from "../../src/mux/stream.ts";
import { createPair, pump, randomBytes, settle, sha256, sink, type Sink, until } from "./helpers.ts";

const wiki = { app: "wiki", host: "wiki.corp.example", port: 443 };

describe("data transfer", () => {
  test("64 concurrent streams echo 1 MiB each with intact SHA-256, and all close cleanly", async () => {
    const { gateway, connector } = createPair();
    const streams = await Promise.all(Array.from({ length: 64 }, () => gateway.open(wiki)));
    const inputs = streams.map((_, i) => randomBytes(1024 * 1024 + i * 777, i + 1));
    const sinks = streams.map((s) => sink(s));
    await Promise.all(streams.map((s, i) => pump(s, sinks[i]!, inputs[i]!, 16 * 1024 + i)));
    // 90 s is a safety deadline: 64 MiB in memory took 16 s with stress-ng on both cores.
    await until(() => sinks.every((s) => s.closed !== undefined), "every stream to close", 90_000);
    sinks.forEach((s, i) => {
      expect(s.bytes).toBe(inputs[i]!.length);
      expect(s.sha256()).toBe(sha256(inputs[i]!));
      expect(s.closed).toEqual({ kind: "fin" });
    });
    expect([gateway.activeStreams, connector.activeStreams]).toEqual([0, 0]);
    const stats = gateway.stats();
    expect(stats.bytesOut).toBe(inputs.reduce((n, b) => n + b.length, 0));
    expect(stats.bytesIn).toBe(stats.bytesOut);
    expect(stats).toMatchObject({ streamsCreated: 64, streamsClosed: 64, queuedBytes: 0, unconsumedBytes: 0 });
  }, 120_000);

  test("several frames queued in one tick leave in one transport message", async () => {
    const { gateway, connectorEnd, gatewayEnd } = createPair();
    const streams = await Promise.all(Array.from({ length: 10 }, () => gateway.open(wiki)));
    streams.forEach((s) => sink(s));
    await settle();
    const before = gatewayEnd.messagesSent;
    for (const s of streams) s.write(new Uint8Array(1000));
    await until(() => connectorEnd.messagesSent > 0 && gatewayEnd.messagesSent > before, "the batch");
    expect(gatewayEnd.messagesSent - before).toBe(1);
  });
});

describe("half-close", () => {
  async function openPair(): Promise<{ gw: Stream; conn: Stream; gwSink: Sink; connSink: Sink }> {
    let conn: Stream | undefined;
    let connSink: Sink | undefined;
    const { gateway } = createPair({
      onOpen: (_r, s) => {
        conn = s;
        connSink = sink(s);
        s.accept();
      },
    });
    const gw = await gateway.open(wiki);
    return { gw, conn: conn!, gwSink: sink(gw), connSink: connSink! };
  }

  test("the gateway ends first: the connector sees end, can still send, and both close after its FIN", async () => {
    const { gw, conn, gwSink, connSink } = await openPair();
    gw.write(new TextEncoder().encode("request"));
    gw.end();
    await until(() => connSink.ended, "end at the connector");
    expect(new TextDecoder().decode(Buffer.concat(connSink.chunks))).toBe("request");
    expect([gw.state, conn.state]).toEqual(["localClosed", "remoteClosed"]);
    conn.write(new TextEncoder().encode("response"));
    conn.end();
    await until(() => gwSink.closed !== undefined && connSink.closed !== undefined, "both closed");
    expect(new TextDecoder().decode(Buffer.concat(gwSink.chunks))).toBe("response");
    expect(gwSink.ended).toBe(true);
    expect([gw.state, conn.state]).toEqual(["closed", "closed"]);
  });

  test("the connector ends first: the gateway sees end and the stream stays writable toward the connector", async () => {
    const { gw, conn, gwSink, connSink } = await openPair();
    conn.end();
    await until(() => gwSink.ended, "end at the gateway");
    expect([gw.state, conn.state]).toEqual(["remoteClosed", "localClosed"]);
    expect(gw.write(new Uint8Array(10))).toBe(true);
    gw.end();
    await until(() => connSink.closed !== undefined, "close at the connector");
    expect(connSink.bytes).toBe(10);
    expect(connSink.closed).toEqual({ kind: "fin" });
  });

  test("FIN waits behind queued data that is still waiting for credit", async () => {
    const { gw, connSink, conn } = await openPair();
    connSink.chunks.length = 0;
    const data = randomBytes(600 * 1024, 9); // more than the 256 KiB window
    expect(gw.write(data)).toBe(false);
    gw.end();
    expect(gw.state).toBe("open"); // FIN not sent yet: it waits for the data
    await until(() => connSink.ended, "end after all data");
    expect(connSink.bytes).toBe(data.length);
    expect(sha256(Buffer.concat(connSink.chunks))).toBe(sha256(data));
    expect([gw.state, conn.state]).toEqual(["localClosed", "remoteClosed"]);
  });

  test("a close callback that closes the session as the last FIN goes out still delivers that FIN", async () => {
    const connSinks: Sink[] = [];
    const { gateway, connector } = createPair({
      onOpen: (_r, s) => void (connSinks.push(sink(s)), s.accept(), s.end()),
    });
    const gw = await gateway.open(wiki);
    gw.setHandlers({ data: () => {}, end: () => gw.end(), drain: () => {}, close: () => gateway.close(1000, "done") });
    expect(await gateway.closed).toMatchObject({ code: 1000, reason: "done", initiator: "local" });
    await until(() => connSinks[0]!.closed !== undefined, "the connector's stream to close");
    expect(connSinks[0]!.closed).toEqual({ kind: "fin" });
    await connector.closed;
  });

  test("writing after end is a caller bug; writing after a reset is silently dropped", async () => {
    const { gw } = await openPair();
    gw.end();
    expect(() => gw.write(new Uint8Array(1))).toThrow(StreamStateError);
    const other = await openPair();
    other.gw.reset();
    expect(other.gw.write(new Uint8Array(1))).toBe(false);
  });
});

describe("reset", () => {
  test("a reset reaches the other side with its code, drops queued data, and frees both ids", async () => {
    const streams: Stream[] = [];
    const { gateway, connector } = createPair({ onOpen: (_r, s) => void (streams.push(s), s.accept()) });
    const gw = await gateway.open(wiki);
    const gwSink = sink(gw);
    const connSink = sink(streams[0]!, { consume: false });
    gw.write(randomBytes(1024 * 1024, 3));
    gw.reset(StreamCode.CANCELLED, "user left");
    expect(gw.queuedBytes).toBe(0);
    await until(() => connSink.closed !== undefined, "reset at the connector");
    expect(connSink.closed).toEqual({ kind: "reset", code: StreamCode.CANCELLED, message: "user left", by: "remote" });
    expect(gwSink.closed).toMatchObject({ kind: "reset", by: "local" });
    expect([gateway.activeStreams, connector.activeStreams]).toEqual([0, 0]);
    expect(connector.stats()).toMatchObject({ resetsReceived: 1, unconsumedBytes: 0 });
    expect(gateway.isClosed || connector.isClosed).toBe(false);
  });

  test("resetAfterQueued: bytes already queued (and covered by credit) arrive first, then the RESET, never a FIN", async () => {
    const streams: Stream[] = [];
    const { gateway } = createPair({ onOpen: (_r, s) => void (streams.push(s), s.accept()) });
    const gw = await gateway.open(wiki);
    sink(gw);
    const connSink = sink(streams[0]!);
    const answer = randomBytes(1000, 4);
    gw.write(answer);
    gw.resetAfterQueued(StreamCode.CANCELLED, "app reset the connection");
    expect(() => gw.write(new Uint8Array(1))).toThrow(StreamStateError); // nothing more is taken
    await until(() => connSink.closed !== undefined, "reset at the connector");
    expect(connSink.bytes).toBe(1000);
    expect(Buffer.concat(connSink.chunks)).toEqual(Buffer.from(answer));
    expect(connSink.ended).toBe(false);
    expect(connSink.closed).toEqual({
      kind: "reset",
      code: StreamCode.CANCELLED,
      message: "app reset the connection",
      by: "remote",
    });
  });

  test("resetAfterQueued with more queued than the peer's credit resets at once and drops the bytes", async () => {
    const streams: Stream[] = [];
    const { gateway } = createPair({ onOpen: (_r, s) => void (streams.push(s), s.accept()) });
    const gw = await gateway.open(wiki);
    sink(gw);
    const connSink = sink(streams[0]!, { consume: false });
    gw.write(randomBytes(INITIAL_WINDOW * 2, 5)); // a window's worth goes out, the rest waits for credit
    await until(() => connSink.bytes === INITIAL_WINDOW, "the first window");
    gw.resetAfterQueued(StreamCode.CANCELLED, "gone");
    expect(gw.queuedBytes).toBe(0);
    await until(() => connSink.closed !== undefined, "reset at the connector");
    expect(connSink.bytes).toBe(INITIAL_WINDOW);
    expect(connSink.closed).toMatchObject({ kind: "reset", by: "remote" });
  });

  test("data sent right after OPEN_RESULT is kept until the gateway attaches its handlers", async () => {
    const { gateway } = createPair({
      onOpen: (_r, s) => {
        s.accept();
        s.write(new TextEncoder().encode("banner"));
        s.end();
      },
    });
    const gw = await gateway.open(wiki);
    await settle();
    const gwSink = sink(gw);
    expect(new TextDecoder().decode(Buffer.concat(gwSink.chunks))).toBe("banner");
    expect(gwSink.ended).toBe(true);
  });
});
