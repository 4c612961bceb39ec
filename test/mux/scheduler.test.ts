import { describe, expect, test } from "bun:test";
import { FrameType } from "../../src/mux/const.ts";
import { decodeMessage, type Frame } from "../../src/mux/frame-decoder.ts";
import { encodePong } from "../../src/mux/frame-encoder.ts";
import { FrameScheduler, type SendSource } from "../../src/mux/scheduler.ts";
import { createPair, randomBytes, sink, until } from "./helpers.ts";

/** A source with `bytes` to send and an optional FIN after them; `creditBound`: `bytes` is all its credit. */
function source(
  id: number,
  bytes: number,
  fin = false,
  creditBound = false,
): SendSource & { left: number; finSent: boolean } {
  return {
    id,
    scheduled: false,
    left: bytes,
    finSent: false,
    get sendable() {
      return this.left > 0 || this.finDue;
    },
    get finDue() {
      return fin && this.left === 0 && !this.finSent;
    },
    get creditExhausted() {
      return creditBound && this.left === 0;
    },
    pullData(max, out) {
      const n = Math.min(max, this.left);
      this.left -= n;
      if (n > 0) out.push(new Uint8Array(n));
      return n;
    },
    finWritten() {
      this.finSent = true;
    },
  };
}

function frames(parts: Uint8Array[]): Frame[] {
  const all: Frame[] = [];
  decodeMessage(new Uint8Array(Buffer.concat(parts)), (f) => void all.push(f));
  return all;
}

describe("FrameScheduler", () => {
  test("control frames go first, then one DATA frame per stream per turn, round-robin", () => {
    const scheduler = new FrameScheduler(64 * 1024, 16 * 1024);
    const a = source(1, 40 * 1024);
    const b = source(2, 20 * 1024);
    scheduler.markReady(a);
    scheduler.markReady(b);
    scheduler.enqueueControl(encodePong(new Uint8Array(8)));
    const message = scheduler.buildMessage(1024 * 1024)!;
    const sent = frames(message.parts).map((f) => [
      f.type,
      f.streamId,
      f.type === FrameType.DATA ? f.payload.length : 0,
    ]);
    expect(sent).toEqual([
      [FrameType.PONG, 0, 0],
      [FrameType.DATA, 1, 16384],
      [FrameType.DATA, 2, 16384],
      [FrameType.DATA, 1, 16384],
      [FrameType.DATA, 2, 4096],
      [FrameType.DATA, 1, 8192], // alone now: it may use the large frame size
    ]);
    expect(scheduler.turns).toBe(3);
    expect(scheduler.idle).toBe(true);
  });

  test("the frame that uses a stream's last credit is flagged CREDIT_EXHAUSTED, and only that one", () => {
    const scheduler = new FrameScheduler(64 * 1024, 16 * 1024);
    scheduler.markReady(source(1, 40 * 1024, false, true));
    scheduler.markReady(source(2, 40 * 1024));
    const sent = frames(scheduler.buildMessage(1024 * 1024)!.parts).map((f) =>
      f.type === FrameType.DATA ? [f.streamId, f.creditExhausted] : [],
    );
    expect(sent).toEqual([
      [1, false],
      [2, false],
      [1, false],
      [2, false],
      [1, true],
      [2, false],
    ]);
  });

  test("a lone stream uses the large frame size; a message never exceeds its budget", () => {
    const scheduler = new FrameScheduler(64 * 1024, 16 * 1024);
    scheduler.markReady(source(1, 1024 * 1024));
    const message = scheduler.buildMessage(200 * 1024)!;
    expect(message.bytes).toBeLessThanOrEqual(200 * 1024);
    expect(message.bytes).toBeGreaterThan(200 * 1024 - 64); // and fills it, bar room kept for a FIN header
    const sizes = frames(message.parts).map((f) => (f.type === FrameType.DATA ? f.payload.length : -1));
    expect(sizes.slice(0, 3)).toEqual([65536, 65536, 65536]);
    expect(sizes.length).toBe(4);
  });

  test("FIN follows a stream's last data in the same turn, and a stream is never queued twice", () => {
    const scheduler = new FrameScheduler(64 * 1024, 16 * 1024);
    const a = source(1, 10, true);
    scheduler.markReady(a);
    scheduler.markReady(a);
    const sent = frames(scheduler.buildMessage(1024 * 1024)!.parts).map((f) => f.type);
    expect(sent).toEqual([FrameType.DATA, FrameType.FIN]);
    expect(scheduler.buildMessage(1024 * 1024)).toBeUndefined();
  });
});

describe("fairness over a saturated tunnel", () => {
  test("a small stream's data goes out in the next turn, behind at most one frame per bulk stream", async () => {
    const { gateway, gatewayEnd, connectorEnd } = createPair({
      capacityBytes: 64 * 1024,
      onOpen: (_r, s) => void (sink(s), s.accept()),
    });
    const [small, ...bulk] = await Promise.all(
      Array.from({ length: 4 }, () => gateway.open({ app: "a", host: "h", port: 1 })),
    );
    // Tap what the gateway sends: for each message, the scheduler turn count and the frames in it.
    const log: { turns: number; frames: Frame[] }[] = [];
    const send = gatewayEnd.send.bind(gatewayEnd);
    gatewayEnd.send = (parts) => {
      log.push({ turns: gateway.stats().schedulerTurns, frames: frames([...parts]) });
      return send(parts);
    };
    // The link stalls: one message goes out, then the transport pushes back and every bulk stream
    // is left with queued data and credit, waiting its turn.
    connectorEnd.suspend();
    for (const [i, s] of bulk.entries()) s.write(randomBytes(256 * 1024, i + 1));
    await until(() => log.length === 1 && gatewayEnd.bufferedBytes > 64 * 1024, "the transport to push back");
    expect(bulk.every((s) => s.queuedBytes > 0 && s.sendCredit > 0)).toBe(true);
    const turnsAtWrite = gateway.stats().schedulerTurns;
    small!.write(new Uint8Array(100));
    connectorEnd.resume();
    const carriesSmall = (m: { frames: Frame[] }) =>
      m.frames.some((f) => f.type === FrameType.DATA && f.streamId === small!.id);
    await until(() => log.some(carriesSmall), "the small stream's data");
    const next = log[1]!;
    expect(carriesSmall(next)).toBe(true);
    expect(next.turns).toBeGreaterThan(turnsAtWrite + 1); // the message spans several turns…
    // …and the small stream was served in the first: at most one frame of each bulk stream ahead of it.
    const ahead = next.frames.slice(
      0,
      next.frames.findIndex((f) => f.streamId === small!.id),
    );
    expect(ahead.filter((f) => f.type === FrameType.DATA).length).toBeLessThanOrEqual(bulk.length);
  });
});
