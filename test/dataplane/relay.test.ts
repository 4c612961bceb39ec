/**
 * The connector's dataplane over real TCP: a gateway-role session (in memory) opens streams that the
 * connector's open handler checks, dials and relays to a real app socket on loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { createConsola } from "consola";
import { AllowList } from "../../src/dataplane/allow-list.ts";
import { createOpenHandler, type DataplaneCounters } from "../../src/dataplane/open-handler.ts";
import { FINAL_FLUSH_STALL_MS } from "../../src/dataplane/relay.ts";
import { StreamCode } from "../../src/mux/const.ts";
import { OpenRejectedError } from "../../src/mux/errors.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session } from "../../src/mux/session.ts";
import { startEchoServer, type EchoServer } from "../support/apps.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { pump, sink, until } from "../mux/helpers.ts";

let echo: EchoServer;
let closedPort: number;
let slowApp: { port: number; sockets: Bun.Socket<undefined>[]; stop(): void };

beforeAll(() => {
  echo = startEchoServer();
  const tmp = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  closedPort = tmp.port;
  tmp.stop(true);
  const sockets: Bun.Socket<undefined>[] = [];
  // An app that accepts and never reads: the relay must stop at the stream's window.
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.pause();
        sockets.push(s);
      },
      data() {},
    },
  });
  slowApp = { port: listener.port, sockets, stop: () => listener.stop(true) };
});

afterAll(() => {
  echo.stop();
  slowApp.stop();
});

function pair(clock?: FakeClock) {
  const allowList = AllowList.compile({
    version: "1",
    apps: [
      {
        name: "echo",
        destinations: [
          { host: "127.0.0.1", ports: `${echo.port}` },
          { host: "127.0.0.1", ports: `${closedPort}` },
        ],
        servers: [],
      },
      { name: "slow", destinations: [{ host: "127.0.0.1", ports: `${slowApp.port}` }], servers: [] },
    ],
  });
  const counters: DataplaneCounters = { failures: {} };
  const warnings: unknown[][] = [];
  const log = createConsola({
    level: 999,
    reporters: [{ log: (entry) => void (entry.type === "warn" && warnings.push(entry.args)) }],
  });
  const [a, b] = createMemoryTransportPair();
  const connector = new Session({
    role: "connector",
    transport: a,
    onOpen: createOpenHandler({ allowList: () => allowList, log, counters, ...(clock ? { clock } : {}) }),
  });
  const gateway = new Session({ role: "gateway", transport: b });
  return { connector, gateway, counters, warnings, close: () => (gateway.close(), connector.close()) };
}

describe("relay between a stream and an app socket", () => {
  test("16 concurrent streams of 4 MiB each come back intact", async () => {
    const { gateway, close } = pair();
    const runs = Array.from({ length: 16 }, async () => {
      const data = randomBytes(4 * 1024 * 1024);
      const stream = await gateway.open({ app: "echo", host: "127.0.0.1", port: echo.port });
      const out = sink(stream);
      await pump(stream, out, data);
      // A safety deadline (9 s for all of them was seen under stress-ng): slower is not wrong.
      await until(() => out.closed !== undefined, "stream close", 90_000);
      expect(out.closed?.kind).toBe("fin");
      expect(out.sha256()).toBe(createHash("sha256").update(data).digest("hex"));
    });
    await Promise.all(runs);
    close();
  }, 120_000);

  test("a destination outside the catalog is refused NOT_ALLOWED and counted; the tunnel stays up", async () => {
    const { gateway, counters, close } = pair();
    const attempt = gateway.open({ app: "echo", host: "127.0.0.2", port: echo.port });
    await expect(attempt).rejects.toBeInstanceOf(OpenRejectedError);
    await attempt.catch((err: OpenRejectedError) => expect(err.result).toBe(StreamCode.NOT_ALLOWED));
    expect(counters.failures.NOT_ALLOWED).toBe(1);
    const stream = await gateway.open({ app: "echo", host: "127.0.0.1", port: echo.port });
    expect(stream.state).toBe("open");
    close();
  });

  test("an app that answers and resets the connection at once: the answer still reaches the user, then the reset", async () => {
    // Like iperf3 -s refusing a second client: an answer, then a close with the greeting unread (RST).
    // The same-tick case (data and reset in one event-loop turn) is pinned in session-data.test.ts.
    const refusing = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s) {
          s.write("busy");
          s.terminate();
        },
      },
    });
    try {
      const allowList = AllowList.compile({
        version: "1",
        apps: [{ name: "r", destinations: [{ host: "127.0.0.1", ports: `${refusing.port}` }], servers: [] }],
      });
      const [a, b] = createMemoryTransportPair();
      const connector = new Session({
        role: "connector",
        transport: a,
        onOpen: createOpenHandler({
          allowList: () => allowList,
          log: createConsola({ level: -999 }),
          counters: { failures: {} },
        }),
      });
      const gateway = new Session({ role: "gateway", transport: b });
      const stream = await gateway.open({ app: "r", host: "127.0.0.1", port: refusing.port });
      const out = sink(stream);
      stream.write(new TextEncoder().encode("hello"));
      await until(() => out.closed !== undefined, "the stream to end");
      expect(new TextDecoder().decode(Buffer.concat(out.chunks))).toBe("busy");
      expect(out.closed).toMatchObject({ kind: "reset", by: "remote" });
      gateway.close();
      connector.close();
    } finally {
      refusing.stop(true);
    }
  });

  test("a burst of the same failure is counted in full but logged once", async () => {
    const { gateway, counters, warnings, close } = pair(new FakeClock());
    const attempts = Array.from({ length: 20 }, () =>
      gateway.open({ app: "echo", host: "127.0.0.1", port: closedPort }).catch(() => "refused"),
    );
    expect(await Promise.all(attempts)).toEqual(Array(20).fill("refused"));
    expect(counters.failures.REFUSED).toBe(20);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![0]).toBe("stream failed: cannot reach destination");
    close();
  });

  test("a refused destination is answered REFUSED and counted", async () => {
    const { gateway, counters, close } = pair();
    const attempt = gateway.open({ app: "echo", host: "127.0.0.1", port: closedPort });
    await attempt.then(
      () => {
        throw new Error("expected a refusal");
      },
      (err: OpenRejectedError) => expect(err.result).toBe(StreamCode.REFUSED),
    );
    expect(counters.failures.REFUSED).toBe(1);
    close();
  });

  test("an app that does not read holds the sender at its window, not at the data size", async () => {
    const { gateway, connector, close } = pair();
    const stream = await gateway.open({ app: "slow", host: "127.0.0.1", port: slowApp.port });
    const out = sink(stream);
    const offered = 64 * 1024 * 1024;
    void pump(stream, out, new Uint8Array(offered));
    // Let the transfer run into the wall: kernel buffers fill, then stream credit runs out.
    let last = -1;
    await until(
      () => {
        const sent = gateway.stats().bytesOut;
        const stalled = sent === last && stream.sendCredit === 0;
        last = sent;
        return stalled;
      },
      "the sender to stall",
      10_000,
    );
    const sent = gateway.stats().bytesOut;
    // Only what the kernel's socket buffers took plus one window left the gateway...
    expect(sent).toBeLessThan(24 * 1024 * 1024);
    // ...the connector holds at most one (possibly grown) window for the app...
    expect(connector.stats().unconsumedBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    // ...and the gateway's stream buffers no more than its credit plus one chunk.
    expect(stream.queuedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(out.closed).toBeUndefined();
    stream.reset();
    close();
  });

  /**
   * Fills a never-reading app's socket through a stream, writing only what credit covers, until nothing
   * moves; then half-closes it. The connector holds the last bytes the app did not take, and FIN: only
   * the final flush is left.
   */
  async function stuckFinalFlush(clock: FakeClock) {
    const appsBefore = slowApp.sockets.length;
    const { gateway, close } = pair(clock);
    const stream = await gateway.open({ app: "slow", host: "127.0.0.1", port: slowApp.port });
    const out = sink(stream);
    let last = -1;
    await until(
      () => {
        const room = stream.sendCredit - stream.queuedBytes;
        if (room > 0) stream.write(new Uint8Array(Math.min(room, 1024 * 1024)));
        const sent = gateway.stats().bytesOut;
        const stalled = sent === last && stream.sendCredit === 0 && stream.queuedBytes === 0;
        last = sent;
        return stalled;
      },
      "the sender to stall",
      10_000,
    );
    await until(() => slowApp.sockets.length > appsBefore, "the app connection");
    stream.end(); // nothing queued: FIN leaves at once
    return { out, close };
  }

  test("a final flush the app never takes is cut after FINAL_FLUSH_STALL_MS, resetting the stream", async () => {
    const clock = new FakeClock();
    const { out, close } = await stuckFinalFlush(clock);
    await clock.advance(FINAL_FLUSH_STALL_MS - 1);
    expect(out.closed).toBeUndefined();
    await clock.advance(1);
    await until(() => out.closed !== undefined, "the stream to end");
    expect(out.closed).toMatchObject({ kind: "reset", code: StreamCode.CANCELLED });
    close();
  });
});
