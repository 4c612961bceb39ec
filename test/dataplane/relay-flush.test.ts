/**
 * The relay's final-flush deadline, driven by hand: a real session pair in memory, a fake socket whose
 * `write` takes exactly what the test allows, and a fake clock. Which socket calls happen, and when, is
 * the whole behaviour under test.
 */
import { expect, test } from "bun:test";
import type { Socket } from "bun";
import { FINAL_FLUSH_STALL_MS, RelayLink } from "../../src/dataplane/relay.ts";
import type { Stream } from "../../src/mux/stream.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { createPair, sink, until } from "../mux/helpers.ts";

/** A socket that takes `allowance` bytes in all, then nothing, and records what was done to it. */
class FakeSocket {
  allowance = 0;
  taken = 0;
  calls: string[] = [];
  write(data: Uint8Array): number {
    const n = Math.min(this.allowance, data.byteLength);
    this.allowance -= n;
    this.taken += n;
    return n;
  }
  pause(): void {}
  resume(): void {}
  shutdown(): void {
    this.calls.push("shutdown");
  }
  end(): void {
    this.calls.push("end");
  }
  terminate(): void {
    this.calls.push("terminate");
  }
}

/** 100 KiB sent through a stream and half-closed; the connector's relay holds it all for its socket. */
async function relayHoldingFinalBytes() {
  const clock = new FakeClock();
  const socket = new FakeSocket();
  const link = new RelayLink(undefined, clock);
  link.socket = socket as unknown as Socket<RelayLink>;
  let far: Stream | undefined;
  const { gateway } = createPair({ onOpen: (_r, s) => void ((far = s), s.accept(), link.attach(s)) });
  const near = await gateway.open({ app: "wiki", host: "wiki.corp.example", port: 443 });
  const out = sink(near);
  near.write(new Uint8Array(100 * 1024));
  near.end();
  await until(() => far?.state === "remoteClosed", "FIN at the connector");
  return { clock, socket, link, out };
}

test("a socket that takes nothing of the final flush for FINAL_FLUSH_STALL_MS is cut", async () => {
  const { clock, socket } = await relayHoldingFinalBytes();
  await clock.advance(FINAL_FLUSH_STALL_MS - 1);
  expect(socket.calls).toEqual([]);
  await clock.advance(1);
  expect(socket.calls).toEqual(["terminate"]);
});

test("a socket that keeps taking some of the final flush is never cut, and gets its FIN at the end", async () => {
  const { clock, socket, link } = await relayHoldingFinalBytes();
  for (let i = 0; i < 5; i++) {
    await clock.advance(FINAL_FLUSH_STALL_MS - 1_000); // five stall periods in all, never one without progress
    socket.allowance = 10 * 1024;
    link.onSocketDrain();
  }
  expect(socket.calls).toEqual([]);
  socket.allowance = Number.POSITIVE_INFINITY;
  link.onSocketDrain();
  expect(socket.taken).toBe(100 * 1024);
  expect(socket.calls).toEqual(["shutdown"]);
  await clock.advance(10 * FINAL_FLUSH_STALL_MS);
  expect(socket.calls).toEqual(["shutdown"]); // the deadline went with the last byte
});

test("a stream that ends while its last bytes still go to the socket finishes only when the socket closes", async () => {
  const clock = new FakeClock();
  const socket = new FakeSocket();
  const finished: string[] = [];
  const link = new RelayLink((_l, why) => void finished.push(why), clock);
  link.socket = socket as unknown as Socket<RelayLink>;
  let far: Stream | undefined;
  const { gateway } = createPair({ onOpen: (_r, s) => void ((far = s), s.accept(), link.attach(s)) });
  const near = await gateway.open({ app: "wiki", host: "wiki.corp.example", port: 443 });
  sink(near);
  near.write(new Uint8Array(100 * 1024));
  near.end();
  await until(() => far?.state === "remoteClosed", "FIN at the connector");
  link.onSocketEnd(); // the app's FIN: both directions are done, the stream closes
  await until(() => far?.state === "closed", "the stream to close");
  // Its bytes are still queued for the socket: the link (its fd, its bytes) is not finished yet.
  expect(finished).toEqual([]);
  socket.allowance = Number.POSITIVE_INFINITY;
  link.onSocketDrain();
  expect(socket.calls).toEqual(["end"]);
  expect(finished).toEqual([]);
  link.onSocketClose();
  expect(finished).toEqual(["fin"]);
});
