/**
 * `HandshakeSink` hands every byte after an HTTP head to the next owner: the head's own tail, and
 * whatever arrives before the next owner takes the socket.
 */
import { expect, test } from "bun:test";
import { HandshakeSink } from "../../../src/transport/websocket/handshake-sink.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (chunks: Uint8Array[]) => chunks.map((c) => new TextDecoder().decode(c)).join("");

test("bytes after the head: the tail of the same read, then later reads, in order", async () => {
  const sink = new HandshakeSink(8192);
  const head = sink.readHead();
  sink.data(bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframe-1"));
  const { head: got, rest } = await head;
  expect(got).toStartWith("HTTP/1.1 101");
  // Before the transport takes over, more bytes arrive: they must not be lost.
  sink.data(bytes("frame-2"));
  sink.data(bytes("frame-3"));
  expect(text([rest, ...sink.takeBuffered()])).toBe("frame-1frame-2frame-3");
  expect(sink.takeBuffered()).toEqual([]);
});
