/**
 * Access taken back from open streams: a catalog change re-checks every relayed stream, and a stream
 * that moves nothing for the idle timeout is reset. The same sweep switches keepalive on for streams
 * that live. Unit tests on `OpenStreams` with a fake clock, and
 * one through the open handler and a real app socket.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createConsola } from "consola";
import type { Catalog } from "../../src/control/api.ts";
import { AllowList } from "../../src/dataplane/allow-list.ts";
import { createOpenHandler } from "../../src/dataplane/open-handler.ts";
import { KEEPALIVE_SWEEP_MS, OpenStreams, sweepPeriodFor } from "../../src/dataplane/open-streams.ts";
import { StreamCode } from "../../src/mux/const.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session } from "../../src/mux/session.ts";
import type { OpenRequest } from "../../src/mux/stream.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { sink, until } from "../mux/helpers.ts";

function catalog(version: string, apps: Catalog["apps"]): AllowList {
  return AllowList.compile({ version, apps });
}

class FakeTracked {
  resets: { code: number; message: string }[] = [];
  moved = 0;
  constructor(readonly request: OpenRequest) {}
  readonly stream = {
    reset: (code: number = StreamCode.CANCELLED, message = "") => void this.resets.push({ code, message }),
  };
  bytesMoved = () => this.moved;
  keptAlive = 0;
  keepAlive = () => void this.keptAlive++;
}

describe("OpenStreams", () => {
  const wiki = {
    name: "wiki",
    destinations: [
      { host: "10.0.0.1", ports: "443" },
      { host: "10.0.0.2", ports: "443" },
    ],
    servers: [],
  };

  test("a catalog change resets NOT_ALLOWED exactly the streams whose destination or app is gone", () => {
    const ended: unknown[] = [];
    const streams = new OpenStreams(new FakeClock(), 0, (...args) => ended.push(args));
    const kept = new FakeTracked({ app: "wiki", host: "10.0.0.1", port: 443 });
    const removed = new FakeTracked({ app: "wiki", host: "10.0.0.2", port: 443 });
    const deletedApp = new FakeTracked({ app: "jira", host: "10.0.0.9", port: 80 });
    for (const t of [kept, removed, deletedApp]) streams.add(t);
    const next = catalog("2", [{ ...wiki, destinations: [{ host: "10.0.0.1", ports: "443" }] }]);
    expect(streams.recheck(next)).toBe(2);
    expect(kept.resets).toEqual([]);
    expect(removed.resets).toEqual([
      { code: StreamCode.NOT_ALLOWED, message: expect.stringContaining("access removed by catalog 2") },
    ]);
    expect(deletedApp.resets[0]?.code).toBe(StreamCode.NOT_ALLOWED);
    expect(streams.ended.notAllowed).toBe(2);
    expect(ended).toEqual([["notAllowed", 2, ["wiki", "jira"]]]);
    expect(streams.size).toBe(1);
    // Checked once: a second identical catalog resets nothing more.
    expect(streams.recheck(next)).toBe(0);
  });

  test("a forgotten stream is not rechecked", () => {
    const streams = new OpenStreams(new FakeClock(), 0);
    const t = new FakeTracked({ app: "wiki", host: "10.0.0.2", port: 443 });
    const forget = streams.add(t);
    forget();
    expect(streams.recheck(catalog("2", []))).toBe(0);
    expect(t.resets).toEqual([]);
  });

  test("a stream with no byte either way for the idle timeout is reset by the one sweep timer; a busy one is not", async () => {
    const clock = new FakeClock();
    const idleMs = 60_000;
    const streams = new OpenStreams(clock, idleMs);
    const idle = new FakeTracked({ app: "wiki", host: "10.0.0.1", port: 443 });
    const busy = new FakeTracked({ app: "wiki", host: "10.0.0.1", port: 443 });
    streams.add(idle);
    streams.add(busy);
    expect(clock.pendingTimers).toBe(1); // one timer for all streams
    for (let t = 0; t < idleMs; t += sweepPeriodFor(idleMs)) {
      busy.moved += 10;
      await clock.advance(sweepPeriodFor(idleMs));
    }
    await clock.advance(sweepPeriodFor(idleMs));
    expect(idle.resets).toEqual([
      { code: StreamCode.CANCELLED, message: "no data either way for 60 s (stream idle timeout)" },
    ]);
    expect(busy.resets).toEqual([]);
    expect(streams.ended.idle).toBe(1);
    // Not before the timeout: the busy stream, once quiet, survives until a full timeout has passed.
    await clock.advance(idleMs - 2 * sweepPeriodFor(idleMs));
    expect(busy.resets).toEqual([]);
    await clock.advance(3 * sweepPeriodFor(idleMs));
    expect(busy.resets).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0); // nothing open: no timer
  });

  test("an idle timeout of 0 never resets; the sweep still runs for keepalive while streams are open", async () => {
    const clock = new FakeClock();
    const streams = new OpenStreams(clock, 0);
    const t = new FakeTracked({ app: "wiki", host: "10.0.0.1", port: 443 });
    const forget = streams.add(t);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(100 * KEEPALIVE_SWEEP_MS);
    expect(t.resets).toEqual([]);
    expect(t.keptAlive).toBe(1);
    forget();
    await clock.advance(KEEPALIVE_SWEEP_MS);
    expect(clock.pendingTimers).toBe(0); // nothing open: no timer
  });

  test("keepalive: once, for each stream a sweep finds open, within one period; never for one gone before", async () => {
    const clock = new FakeClock();
    const idleMs = 3_600_000;
    expect(sweepPeriodFor(idleMs)).toBe(KEEPALIVE_SWEEP_MS);
    const streams = new OpenStreams(clock, idleMs);
    const short = new FakeTracked({ app: "wiki", host: "10.0.0.1", port: 443 });
    const long = new FakeTracked({ app: "wiki", host: "10.0.0.1", port: 443 });
    const forgetShort = streams.add(short);
    streams.add(long);
    await clock.advance(KEEPALIVE_SWEEP_MS - 1);
    forgetShort(); // a request and its answer, done before the first sweep
    expect(long.keptAlive).toBe(0);
    await clock.advance(1);
    expect(long.keptAlive).toBe(1);
    expect(short.keptAlive).toBe(0);
    for (let i = 0; i < 5; i++) {
      long.moved++;
      await clock.advance(KEEPALIVE_SWEEP_MS);
    }
    expect(long.keptAlive).toBe(1);
  });
});

describe("through the open handler", () => {
  // An echo app that counts the connections it saw closed.
  let closed = 0;
  let echo: { port: number; stop(): void };
  beforeAll(() => {
    const listener = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (s, chunk) => void s.write(chunk), close: () => void closed++, error() {} },
    });
    echo = { port: listener.port, stop: () => listener.stop(true) };
  });
  afterAll(() => echo.stop());

  test("a relayed stream is cut NOT_ALLOWED when its destination leaves the catalog, and its app socket is closed", async () => {
    let allowList = catalog("1", [
      { name: "echo", destinations: [{ host: "127.0.0.1", ports: `${echo.port}` }], servers: [] },
    ]);
    const openStreams = new OpenStreams(new FakeClock(), 0);
    const [a, b] = createMemoryTransportPair();
    const connector = new Session({
      role: "connector",
      transport: a,
      onOpen: createOpenHandler({
        allowList: () => allowList,
        log: createConsola({ level: -999 }),
        counters: { failures: {} },
        openStreams,
      }),
    });
    const gateway = new Session({ role: "gateway", transport: b });
    try {
      const stream = await gateway.open({ app: "echo", host: "127.0.0.1", port: echo.port });
      const out = sink(stream);
      stream.write(new TextEncoder().encode("ping"));
      await until(() => out.bytes >= 4, "the echo");
      expect(openStreams.size).toBe(1);
      allowList = catalog("2", [{ name: "echo", destinations: [{ host: "127.0.0.1", ports: "1" }], servers: [] }]);
      expect(openStreams.recheck(allowList)).toBe(1);
      await until(() => out.closed !== undefined, "the stream to be reset");
      expect(out.closed).toMatchObject({ kind: "reset", code: StreamCode.NOT_ALLOWED, by: "remote" });
      expect(openStreams.size).toBe(0);
      await until(() => connector.activeStreams === 0, "the connector to forget the stream");
      await until(() => closed === 1, "the app connection to be closed");
    } finally {
      gateway.close();
      connector.close();
    }
  });
});
