/**
 * `WsTransport` over a fake socket: exact write accounting, partial writes, batching, control
 * frames and the close handshake, deterministic (fake clock, socket budget set by the test).
 * The same transport over real TLS is tested in test/transport/ws-transport.test.ts.
 */
import { describe, expect, test } from "bun:test";
import type { TransportClose } from "../../../src/transport/transport.ts";
import {
  encodeClosePayload,
  encodeFrame,
  FrameDecoder,
  Opcode,
  parseClosePayload,
} from "../../../src/transport/websocket/frame-codec.ts";
import { nullSink, type ByteSocket, type SocketSlot } from "../../../src/transport/websocket/socket-slot.ts";
import { WsTransport, type WsRole, type WsTransportOptions } from "../../../src/transport/ws-transport.ts";
import { FakeClock, flushQueued } from "../../support/fake-clock.ts";

class FakeSocket implements ByteSocket {
  data: SocketSlot = { sink: nullSink };
  /** Bytes the socket will still take; Infinity = unlimited. */
  budget = Number.POSITIVE_INFINITY;
  writes = 0;
  paused = false;
  ended = false;
  terminated = false;
  #out: Uint8Array[] = [];

  write(buf: Uint8Array, offset = 0, length = buf.length - offset): number {
    this.writes++;
    const n = Math.min(length, this.budget);
    this.budget -= n;
    this.#out.push(buf.slice(offset, offset + n));
    return n;
  }
  end(): void {
    this.ended = true;
  }
  terminate(): void {
    this.terminated = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  /** Everything written so far. */
  output(): Uint8Array {
    return Buffer.concat(this.#out);
  }
  /** Lets the socket take more and signals drain, as Bun does. */
  unblock(): void {
    this.budget = Number.POSITIVE_INFINITY;
    this.data.sink.drain();
  }
}

type Frame = { opcode: number; data: Uint8Array };

/** Decodes what a transport of `role` wrote (its peer's view). */
function framesWritten(socket: FakeSocket, role: WsRole): Frame[] {
  const frames: Frame[] = [];
  new FrameDecoder({ expectMasked: role === "client" }).push(socket.output(), {
    message: (opcode, data) => frames.push({ opcode, data: data.slice() }),
    control: (opcode, data) => frames.push({ opcode, data: data.slice() }),
  });
  return frames;
}

/** A frame as the peer of a transport of `role` would send it. */
function fromPeer(
  role: WsRole,
  opcode: (typeof Opcode)[keyof typeof Opcode],
  payload: Uint8Array,
  fin = true,
): Uint8Array {
  return encodeFrame(opcode, payload, { fin, maskKey: role === "server" ? 0x11223344 : null });
}

function setup(role: WsRole = "client", options: Partial<WsTransportOptions> = {}) {
  const socket = new FakeSocket();
  const clock = new FakeClock();
  const transport = new WsTransport({ role, socket, clock, highWaterBytes: 1000, lowWaterBytes: 100, ...options });
  const messages: string[] = [];
  const closes: TransportClose[] = [];
  let drains = 0;
  transport.setHandlers({
    message: (d) => messages.push(Buffer.from(d).toString()),
    drain: () => drains++,
    close: (info) => closes.push(info),
  });
  return { socket, clock, transport, messages, closes, drains: () => drains };
}

const bytes = (s: string) => Buffer.from(s);

describe("sending", () => {
  test("messages sent in one tick leave in one socket write, in order", async () => {
    const { socket, transport } = setup("server");
    await flushQueued();
    transport.send([bytes("a")]);
    transport.send([bytes("b"), bytes("c")]);
    transport.send([bytes("d")]);
    expect(socket.writes).toBe(0); // batched until the microtask
    await flushQueued();
    expect(socket.writes).toBe(1);
    expect(framesWritten(socket, "server").map((f) => Buffer.from(f.data).toString())).toEqual(["a", "bc", "d"]);
  });

  test("send copies its parts: changing them afterwards does not change what is sent", async () => {
    const { socket, transport } = setup("client");
    const part = bytes("hello");
    transport.send([part]);
    part.fill(0);
    await flushQueued();
    expect(Buffer.from(framesWritten(socket, "client")[0]?.data ?? []).toString()).toBe("hello");
  });

  test("client frames are masked with fresh non-zero keys", async () => {
    const { socket, transport } = setup("client");
    transport.send([bytes("x".repeat(10))]);
    transport.send([bytes("x".repeat(10))]);
    await flushQueued();
    const out = socket.output();
    expect((out[1] ?? 0) & 0x80).toBe(0x80);
    const key1 = out.subarray(2, 6);
    const key2 = out.subarray(18, 22);
    expect(Buffer.from(key1).equals(Buffer.from(key2))).toBe(false);
  });

  test("a message over the size limit throws and queues nothing", () => {
    const { transport } = setup("client", { maxMessageBytes: 10 });
    expect(() => transport.send([new Uint8Array(11)])).toThrow(RangeError);
    expect(transport.bufferedBytes).toBe(0);
  });
});

describe("backpressure", () => {
  test("bufferedBytes counts exactly the wire bytes the socket has not taken", async () => {
    const { socket, transport } = setup("server");
    socket.budget = 50;
    transport.send([new Uint8Array(100)]); // 2 + 2 header bytes? 100 < 126: 2-byte header
    expect(transport.bufferedBytes).toBe(102);
    await flushQueued();
    expect(transport.bufferedBytes).toBe(52);
    socket.budget = 10;
    socket.data.sink.drain();
    expect(transport.bufferedBytes).toBe(42);
    socket.unblock();
    expect(transport.bufferedBytes).toBe(0);
    expect(framesWritten(socket, "server")[0]?.data.length).toBe(100);
  });

  test("send returns false at the high-water mark, never drops, and drain fires below the low-water mark", async () => {
    const { socket, transport, drains } = setup("server");
    socket.budget = 0;
    const results: boolean[] = [];
    for (let i = 0; i < 12; i++) results.push(transport.send([new Uint8Array(98)])); // 100 wire bytes each
    expect(results.slice(0, 9).every(Boolean)).toBe(true);
    expect(results[9]).toBe(false); // 1000 bytes queued
    expect(results[11]).toBe(false); // still accepted, still signalled
    expect(transport.bufferedBytes).toBe(1200);
    await flushQueued();
    socket.budget = 1150; // leaves 50 <= low water
    socket.data.sink.drain();
    expect(drains()).toBe(1);
    socket.unblock();
    expect(framesWritten(socket, "server")).toHaveLength(12);
  });

  test("no drain event when send never returned false", async () => {
    const { socket, transport, drains } = setup("server");
    socket.budget = 0;
    transport.send([new Uint8Array(10)]);
    await flushQueued();
    socket.unblock();
    expect(drains()).toBe(0);
  });
});

describe("receiving", () => {
  test("messages that arrive before setHandlers are delivered after it, in order, and reading waits for handlers", async () => {
    const socket = new FakeSocket();
    const t = new WsTransport({
      role: "client",
      socket,
      initialData: [fromPeer("client", Opcode.binary, bytes("one"))],
    });
    expect(socket.paused).toBe(true);
    socket.data.sink.data(fromPeer("client", Opcode.binary, bytes("two")));
    const got: string[] = [];
    t.setHandlers({ message: (d) => got.push(Buffer.from(d).toString()), drain() {}, close() {} });
    socket.data.sink.data(fromPeer("client", Opcode.binary, bytes("three")));
    expect(got).toEqual([]);
    await flushQueued();
    expect(got).toEqual(["one", "two", "three"]);
    expect(socket.paused).toBe(false);
  });

  test("a ping is answered with a pong carrying its payload, ahead of queued data", async () => {
    const { socket, transport } = setup("server");
    socket.budget = 3;
    transport.send([new Uint8Array(10)]);
    transport.send([new Uint8Array(10)]);
    await flushQueued(); // 3 bytes of the first staging chunk written
    socket.data.sink.data(fromPeer("server", Opcode.ping, bytes("p1")));
    socket.unblock();
    const frames = framesWritten(socket, "server");
    expect(frames.map((f) => f.opcode)).toEqual([Opcode.binary, Opcode.binary, Opcode.pong]);
  });

  test("a ping before any data is answered first", async () => {
    const { socket, transport } = setup("server");
    await flushQueued();
    socket.budget = 0;
    transport.send([new Uint8Array(10)]);
    socket.data.sink.data(fromPeer("server", Opcode.ping, bytes("p1")));
    await flushQueued();
    socket.unblock();
    const frames = framesWritten(socket, "server");
    expect(frames.map((f) => f.opcode)).toEqual([Opcode.pong, Opcode.binary]);
    expect(Buffer.from(frames[0]?.data ?? []).toString()).toBe("p1");
  });

  test("pings while the queue is over the high-water mark get one pong, for the latest", async () => {
    const { socket, transport } = setup("server");
    await flushQueued();
    socket.budget = 0;
    for (let i = 0; i < 11; i++) transport.send([new Uint8Array(98)]);
    for (const p of ["a", "b", "c"]) socket.data.sink.data(fromPeer("server", Opcode.ping, bytes(p)));
    socket.unblock();
    const pongs = framesWritten(socket, "server").filter((f) => f.opcode === Opcode.pong);
    expect(pongs.map((f) => Buffer.from(f.data).toString())).toEqual(["c"]);
  });

  test("a text message closes the connection with 1003", async () => {
    const { socket, closes } = setup("client");
    await flushQueued();
    socket.data.sink.data(fromPeer("client", Opcode.text, bytes("hi")));
    await flushQueued();
    expect(closes).toHaveLength(1);
    expect(closes[0]?.code).toBe(1003);
    const sent = framesWritten(socket, "client").at(-1);
    expect(sent?.opcode).toBe(Opcode.close);
    expect(parseClosePayload(sent?.data ?? new Uint8Array()).code).toBe(1003);
    expect(socket.ended).toBe(true);
  });

  test("a server receiving an unmasked frame fails with 1002 and reports the error", async () => {
    const { socket, closes } = setup("server");
    await flushQueued();
    socket.data.sink.data(fromPeer("client", Opcode.binary, bytes("x"))); // unmasked
    await flushQueued();
    expect(closes[0]?.code).toBe(1002);
    expect((closes[0]?.error as { code?: string } | undefined)?.code).toBe("WS_MASK_EXPECTED");
  });
});

describe("closing", () => {
  test("close() sends a close frame after queued data, waits for the peer's, then reports it once", async () => {
    const { socket, transport, closes } = setup("client");
    transport.send([bytes("last")]);
    transport.close(1000, "bye");
    expect(transport.send([bytes("late")])).toBe(false);
    await flushQueued();
    const frames = framesWritten(socket, "client");
    expect(frames.map((f) => f.opcode)).toEqual([Opcode.binary, Opcode.close]);
    expect(parseClosePayload(frames[1]?.data ?? new Uint8Array())).toEqual({ code: 1000, reason: "bye" });
    expect(closes).toHaveLength(0);
    socket.data.sink.data(fromPeer("client", Opcode.close, encodeClosePayload(1000, "ok")));
    expect(closes).toEqual([{ code: 1000, reason: "ok" }]);
    expect(socket.ended).toBe(true);
    socket.data.sink.close();
    expect(closes).toHaveLength(1);
  });

  test("a peer that never answers the close is cut off after the close timeout with 1006", async () => {
    const { socket, transport, closes, clock } = setup("client", { closeTimeoutMs: 5000 });
    transport.close();
    await clock.advance(4999);
    expect(closes).toHaveLength(0);
    await clock.advance(1);
    expect(closes[0]?.code).toBe(1006);
    expect(socket.terminated).toBe(true);
  });

  test("a close from the peer is echoed with its code and reported", async () => {
    const { socket, closes } = setup("server");
    await flushQueued();
    socket.data.sink.data(fromPeer("server", Opcode.close, encodeClosePayload(1001, "going away")));
    await flushQueued();
    expect(closes).toEqual([{ code: 1001, reason: "going away" }]);
    const echo = framesWritten(socket, "server").at(-1);
    expect(parseClosePayload(echo?.data ?? new Uint8Array()).code).toBe(1001);
    expect(socket.ended).toBe(true);
  });

  test("a socket that closes without a close frame reports 1006 with the socket's error", async () => {
    const { socket, closes } = setup("client");
    socket.data.sink.error(new Error("ECONNRESET"));
    socket.data.sink.close();
    expect(closes[0]?.code).toBe(1006);
    expect(closes[0]?.error?.message).toBe("ECONNRESET");
  });

  test("close is idempotent", async () => {
    const { socket, transport } = setup("client");
    transport.close();
    transport.close();
    await flushQueued();
    expect(framesWritten(socket, "client").filter((f) => f.opcode === Opcode.close)).toHaveLength(1);
  });
});
