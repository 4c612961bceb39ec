/**
 * When `Outbound` sends: small writes wait for the end of the event-loop turn and leave together (one
 * message for the frames of many streams), bulk leaves at the next microtask, and a drained transport
 * resumes at once. A recording transport and plain sources; no session.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_SESSION_CONFIG } from "../../src/mux/config.ts";
import { BULK_FLUSH_BYTES, Outbound, type ReadySource } from "../../src/mux/outbound.ts";
import { SessionCounters } from "../../src/mux/session-stats.ts";
import type { Transport } from "../../src/transport/transport.ts";

class Source implements ReadySource {
  scheduled = false;
  creditExhausted = false;
  finDue = false;
  constructor(
    readonly id: number,
    public queuedBytes: number,
  ) {}
  get sendable(): boolean {
    return this.queuedBytes > 0;
  }
  pullData(max: number, out: Uint8Array[]): number {
    const n = Math.min(max, this.queuedBytes);
    out.push(new Uint8Array(n));
    this.queuedBytes -= n;
    return n;
  }
  finWritten(): void {}
}

function setup(accept = () => true) {
  const sent: number[] = [];
  const transport: Transport = {
    send: (parts) => (sent.push(parts.length), accept()),
    close() {},
    bufferedBytes: 0,
    setHandlers() {},
  };
  const counters = new SessionCounters();
  const out = new Outbound(transport, DEFAULT_SESSION_CONFIG, counters, (err) => {
    throw err;
  });
  return { out, sent, counters };
}

/** What a socket callback's end looks like to us: Bun drains the microtask queue between callbacks. */
const microtasks = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};
const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("Outbound", () => {
  test("1 KiB writes of 50 streams in one turn leave as one message after the turn", async () => {
    const { out, sent, counters } = setup();
    for (let id = 1; id <= 50; id++) {
      out.ready(new Source(id, 1024));
      await microtasks();
    }
    expect(sent).toEqual([]);
    await turnEnd();
    expect(counters.messagesOut).toBe(1);
    expect(counters.framesOut).toBe(50);
    expect(counters.bytesOut).toBe(50 * 1024);
  });

  test("a stream with bulk queued is sent at the next microtask, within the turn", async () => {
    const { out, counters } = setup();
    out.ready(new Source(1, BULK_FLUSH_BYTES));
    expect(counters.messagesOut).toBe(0);
    await microtasks();
    expect(counters.bytesOut).toBe(BULK_FLUSH_BYTES);
    // one byte less is a small write: it waits for the turn's end
    out.ready(new Source(3, BULK_FLUSH_BYTES - 1));
    await microtasks();
    expect(counters.bytesOut).toBe(BULK_FLUSH_BYTES);
    await turnEnd();
    expect(counters.bytesOut).toBe(2 * BULK_FLUSH_BYTES - 1);
  });

  test("nothing is sent while the transport is full; its drain resumes within the turn", async () => {
    let room = false;
    const { out, counters } = setup(() => room);
    out.ready(new Source(1, 1024));
    await turnEnd();
    expect(counters.messagesOut).toBe(1); // sent, and the transport said "wait"
    out.ready(new Source(3, 1024));
    await turnEnd();
    expect(counters.messagesOut).toBe(1);
    room = true;
    out.drained();
    await microtasks();
    expect(counters.messagesOut).toBe(2);
  });
});
