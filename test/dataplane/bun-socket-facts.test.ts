/**
 * Facts about Bun 1.4.5 TCP sockets that the stream relay relies on, checked on loopback so an upgrade
 * of Bun that changes one of them fails here, by name, rather than as a hung stream somewhere else.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";

/** A safety deadline for loopback events (milliseconds when idle, seconds on a loaded machine). */
const WAIT_MS = 20_000;

/** Events seen on one socket, with a way to wait for one. */
class Recorder {
  readonly events: string[] = [];
  received = "";
  #waiters: { match: (e: string) => boolean; resolve: () => void }[] = [];

  push(event: string): void {
    this.events.push(event);
    for (const w of this.#waiters.filter((w) => w.match(event))) w.resolve();
    this.#waiters = this.#waiters.filter((w) => !w.match(event));
  }
  /** Resolves once an event satisfying `match` has happened (or already had). */
  waitFor(what: string, match: (e: string) => boolean = (e) => e === what): Promise<void> {
    if (this.events.some(match)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${what}" within ${WAIT_MS} ms; saw ${this.events.join(",")}`)),
        WAIT_MS,
      );
      this.#waiters.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
  handlers() {
    return {
      data: (_s: Socket<undefined>, d: Buffer) => {
        this.received += d.toString("latin1");
        this.push(`data`);
      },
      end: () => this.push("end"),
      close: () => this.push("close"),
      drain: () => this.push("drain"),
      error: () => this.push("error"),
    };
  }
}

const listeners: TCPSocketListener<undefined>[] = [];
const sockets: Socket<undefined>[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const l of listeners.splice(0)) l.stop(true);
});

/** A connected client/server pair on 127.0.0.1; both sides get `allowHalfOpen`. */
async function pair(allowHalfOpen: boolean) {
  const server = new Recorder();
  const client = new Recorder();
  let accepted!: (s: Socket<undefined>) => void;
  const serverSocket = new Promise<Socket<undefined>>((resolve) => (accepted = resolve));
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen,
    socket: { ...server.handlers(), open: (s) => accepted(s) },
  });
  listeners.push(listener);
  const c = await Bun.connect({ hostname: "127.0.0.1", port: listener.port, allowHalfOpen, socket: client.handlers() });
  const s = await serverSocket;
  sockets.push(c, s);
  return { c, s, client, server };
}

describe("Bun TCP socket facts (1.4.5)", () => {
  test("setNoDelay and setKeepAlive succeed on a connected socket; pause, resume and shutdown exist", async () => {
    const { c } = await pair(true);
    expect(c.setNoDelay(true)).toBe(true);
    expect(c.setKeepAlive(true, 30_000)).toBe(true);
    expect([typeof c.pause, typeof c.resume, typeof c.shutdown]).toEqual(["function", "function", "function"]);
  });

  test("setKeepAlive on a socket that closed meanwhile returns false and does not throw (the stream sweep may race a close)", async () => {
    const { c, s, client } = await pair(false);
    s.end();
    await client.waitFor("close");
    expect(c.setKeepAlive(true, 30_000)).toBe(false);
    c.terminate();
    expect(c.setKeepAlive(true, 30_000)).toBe(false);
  });

  test("write takes only what the kernel accepts while the peer is paused, and drain fires once it reads again", async () => {
    const { c, s, client, server } = await pair(true);
    s.pause();
    const big = new Uint8Array(64 * 1024 * 1024);
    const taken = c.write(big);
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(big.length);
    s.resume();
    await client.waitFor("drain");
    await server.waitFor(`${taken} bytes`, () => server.received.length === taken);
  });

  test("each data chunk is its own buffer: it stays intact after the handler returns, so it can be queued uncopied", async () => {
    const chunks: Buffer[] = [];
    const size = 4 * 1024 * 1024;
    let got!: () => void;
    const all = new Promise<void>((resolve) => (got = resolve));
    let total = 0;
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (_s, d) => void (chunks.push(d), (total += d.length) >= size && got()) },
    });
    listeners.push(listener);
    const source = Buffer.alloc(size);
    for (let i = 0; i < size; i++) source[i] = (i * 7 + (i >> 12)) & 0xff;
    let offset = 0;
    const pump = (sock: Socket<undefined>) => {
      while (offset < size) {
        const n = sock.write(source.subarray(offset));
        if (n <= 0) return;
        offset += n;
      }
    };
    const c = await Bun.connect({ hostname: "127.0.0.1", port: listener.port, socket: { data() {}, drain: pump } });
    sockets.push(c);
    pump(c);
    const timer = setTimeout(() => got(), WAIT_MS);
    await all;
    clearTimeout(timer);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(source)).toBe(true);
  });

  test("with allowHalfOpen, the peer's shutdown() fires end and our writes still reach the peer", async () => {
    const { c, s, client, server } = await pair(true);
    s.shutdown();
    await client.waitFor("end");
    expect(c.readyState).toBe(1);
    expect(c.write("after-fin")).toBe(9);
    await server.waitFor("data");
    expect(server.received).toBe("after-fin");
  });

  test("without allowHalfOpen, the peer's FIN closes the socket and write returns -1", async () => {
    const { c, s, client } = await pair(false);
    s.shutdown();
    await client.waitFor("close");
    expect(client.events).toContain("end");
    expect(c.write("x")).toBe(-1);
  });

  test("end() is a full close even with allowHalfOpen: use shutdown() to half-close", async () => {
    const { c, client, server } = await pair(true);
    c.end();
    await client.waitFor("close");
    expect(c.readyState).toBeLessThan(1);
    await server.waitFor("end");
  });

  test("shutdown() sends FIN (peer sees end) and we still receive what the peer sends afterwards", async () => {
    const { c, s, client, server } = await pair(true);
    c.shutdown();
    await server.waitFor("end");
    expect(s.write("reply")).toBe(5);
    await client.waitFor("data");
    expect(client.received).toBe("reply");
    expect(c.write("x")).toBe(-1);
  });

  test("after our own shutdown, the peer's FIN arrives as close without end: close must count as EOF", async () => {
    const { c, s, client, server } = await pair(true);
    c.shutdown();
    await server.waitFor("end");
    s.write("last");
    s.shutdown();
    await client.waitFor("close");
    expect(client.received).toBe("last");
    expect(client.events).not.toContain("end");
    await server.waitFor("close");
    expect(c.readyState).toBeLessThan(1);
  });
});
