import { describe, expect, test } from "bun:test";
import { createMemoryTransportPair, type MemoryTransport } from "./memory-transport.ts";
import type { TransportClose } from "../../src/transport/transport.ts";
import { settle } from "../mux/helpers.ts";

function record(end: MemoryTransport) {
  const got = { messages: [] as number[][], drains: 0, closes: [] as TransportClose[] };
  end.setHandlers({
    message: (data) => void got.messages.push([...data]),
    drain: () => void got.drains++,
    close: (info) => void got.closes.push(info),
  });
  return got;
}

describe("memory transport", () => {
  test("messages arrive whole, in order, and never during send", async () => {
    const [a, b] = createMemoryTransportPair();
    const got = record(b);
    a.send([Uint8Array.of(1, 2), Uint8Array.of(3)]);
    a.send([Uint8Array.of(4)]);
    expect(got.messages).toEqual([]);
    await settle(1);
    expect(got.messages).toEqual([[1, 2, 3], [4]]);
  });

  test("send returns false beyond the capacity, and drain follows delivery", async () => {
    const [a, b] = createMemoryTransportPair({ capacityBytes: 10 });
    const sender = record(a);
    record(b);
    expect(a.send([new Uint8Array(10)])).toBe(true);
    expect(a.send([new Uint8Array(1)])).toBe(false);
    expect(a.bufferedBytes).toBe(11);
    await settle(1);
    expect([a.bufferedBytes, sender.drains]).toEqual([0, 1]);
  });

  test("a delivered buffer is overwritten after its callback, exposing views kept too long", async () => {
    const [a, b] = createMemoryTransportPair();
    let kept: Uint8Array | undefined;
    b.setHandlers({ message: (data) => void (kept = data), drain: () => {}, close: () => {} });
    a.send([Uint8Array.of(1, 2, 3)]);
    await settle(1);
    expect([...kept!]).toEqual([0xee, 0xee, 0xee]);
  });

  test("close delivers what was sent before it, then closes both ends once", async () => {
    const [a, b] = createMemoryTransportPair();
    const closer = record(a);
    const peer = record(b);
    a.send([Uint8Array.of(7)]);
    a.close(1000, "bye");
    a.close(1001, "again");
    expect(a.send([Uint8Array.of(8)])).toBe(false);
    await settle(2);
    expect(peer.messages).toEqual([[7]]);
    expect(peer.closes).toEqual([{ code: 1000, reason: "bye" }]);
    expect(closer.closes).toEqual([{ code: 1000, reason: "bye" }]);
  });

  test("suspend holds delivery, step releases one message, resume the rest", async () => {
    const [a, b] = createMemoryTransportPair();
    const got = record(b);
    b.suspend();
    a.send([Uint8Array.of(1)]);
    a.send([Uint8Array.of(2)]);
    await settle(1);
    expect([got.messages, b.pendingMessages]).toEqual([[], 2]);
    expect(b.step()).toBe(true);
    expect(got.messages).toEqual([[1]]);
    b.resume();
    await settle(1);
    expect(got.messages).toEqual([[1], [2]]);
  });

  test("fail closes both ends abnormally (1006) and drops what was in flight", async () => {
    const [a, b] = createMemoryTransportPair();
    const left = record(a);
    const right = record(b);
    a.send([Uint8Array.of(1)]);
    a.fail(new Error("cable cut"));
    await settle(1);
    expect(right.messages).toEqual([]);
    expect([left.closes[0]?.code, right.closes[0]?.code, right.closes[0]?.error?.message]).toEqual([
      1006,
      1006,
      "cable cut",
    ]);
  });
});
