/**
 * The process-wide admission gate: streams, pending dials, fds and buffered bytes, each answered BUSY
 * with its reason and counted; and the gate shared by the open handlers of several tunnels.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createConsola } from "consola";
import {
  AdmissionGate,
  DEFAULT_ADMISSION_LIMITS,
  effectiveMaxStreams,
  kernelSendBufferMax,
  type AdmissionLimits,
} from "../../src/dataplane/admission.ts";
import { AllowList } from "../../src/dataplane/allow-list.ts";
import { createOpenHandler, type DataplaneCounters } from "../../src/dataplane/open-handler.ts";
import { StreamCode } from "../../src/mux/const.ts";
import { OpenRejectedError } from "../../src/mux/errors.ts";
import { createMemoryTransportPair } from "../support/memory-transport.ts";
import { Session } from "../../src/mux/session.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { sink, until } from "../mux/helpers.ts";

const limits = (over: Partial<AdmissionLimits>): AdmissionLimits => ({ ...DEFAULT_ADMISSION_LIMITS, ...over });
const noFdLimit = { limit: () => Infinity, openFds: () => 10 };

function admittedFor(gate: AdmissionGate, owner: object) {
  const a = gate.admit(owner);
  if (!a.admitted) throw new Error(`expected admission, got BUSY ${a.reason}`);
  return a.ticket;
}

function admitted(gate: AdmissionGate) {
  const a = gate.admit({});
  if (!a.admitted) throw new Error(`expected admission, got BUSY ${a.reason}`);
  return a.ticket;
}

describe("AdmissionGate", () => {
  test("streams beyond the cap are BUSY 'streams' until one ends; every rejection is counted", () => {
    const gate = new AdmissionGate(new FakeClock(), noFdLimit, limits({ maxStreams: 3 }));
    const tickets = [admitted(gate), admitted(gate), admitted(gate)];
    for (const t of tickets) t.dialEnded();
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "streams" });
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "streams" });
    expect(gate.rejections.streams).toBe(2);
    tickets[0]!.close();
    tickets[0]!.close(); // idempotent
    expect(gate.streams).toBe(2);
    admitted(gate);
    expect(gate.admit({}).admitted).toBe(false);
  });

  test("a connect given up on (Bun cannot cancel it) counts as a dial and an fd until it settles", async () => {
    let open = 10;
    const gate = new AdmissionGate(
      new FakeClock(),
      { limit: () => 10 + 2 + 128, openFds: () => open },
      limits({ maxStreams: 100, maxPendingDials: 2 }),
    );
    const ticket = admitted(gate);
    let settle!: () => void;
    gate.lingering(new Promise<void>((resolve) => (settle = resolve)));
    ticket.close(); // the stream was reset while its connect still ran: its slots are free, the connect is not
    expect(gate.streams).toBe(0);
    expect(gate.pendingDials).toBe(1);
    admitted(gate).dialEnded();
    // Two fds left above the reserve at the sample: one lingering connect, one stream since: no headroom.
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "fds" });
    settle();
    await Promise.resolve();
    await Promise.resolve();
    expect(gate.pendingDials).toBe(0);
    open = 11; // the late connect is gone; a resample sees only the stream's fd
    expect(gate.fdHeadroom()).toBe(true);
  });

  test("one tunnel gets at most half of each bound: a hostile gateway's tunnel is BUSY while another is served", () => {
    const gate = new AdmissionGate(
      new FakeClock(),
      noFdLimit,
      limits({
        maxStreams: 10,
        maxPendingDials: 4,
        maxBufferedBytes: 1_000,
        kernelBytesPerBlockedSocket: 100,
        stallMs: 0,
      }),
    );
    const hostile = {};
    const honest = {};
    const hostileTickets = [gate.admit(hostile), gate.admit(hostile)].map((a) => (a.admitted ? a.ticket : undefined));
    expect(gate.admit(hostile)).toMatchObject({ admitted: false, reason: "dials" }); // 2 of 4 in progress
    admittedFor(gate, honest).dialEnded();
    for (const t of hostileTickets) t!.dialEnded();
    for (let i = 0; i < 3; i++) admittedFor(gate, hostile).dialEnded(); // connected at once
    expect(gate.admit(hostile)).toMatchObject({ admitted: false, reason: "streams" }); // 5 of 10 open
    admittedFor(gate, honest).dialEnded();
    // Bytes: the hostile tunnel's apps stop reading; its share (500) fills, the honest tunnel's does not.
    hostileTickets[0]!.hold(450);
    hostileTickets[0]!.setBlocked(true);
    hostileTickets[1]!.close();
    expect(gate.admit(hostile)).toMatchObject({ admitted: false, reason: "buffered" });
    admittedFor(gate, honest).dialEnded();
    expect(gate.rejections).toMatchObject({ dials: 1, streams: 1, buffered: 1 });
    // A connector that keeps a single tunnel gives it every bound whole.
    const lone = new AdmissionGate(new FakeClock(), noFdLimit, limits({ maxPendingDials: 4 }), 1);
    for (let i = 0; i < 4; i++) admittedFor(lone, hostile);
    expect(lone.admit(hostile)).toMatchObject({ admitted: false, reason: "dials" });
  });

  test("the stream cap never exceeds the fd limit less the reserve", () => {
    expect(effectiveMaxStreams(limits({ maxStreams: 20_000, fdReserve: 128 }), 1024)).toBe(896);
    expect(effectiveMaxStreams(limits({ maxStreams: 500, fdReserve: 128 }), 1024)).toBe(500);
    expect(effectiveMaxStreams(limits({ maxStreams: 500, fdReserve: 128 }), 100)).toBe(0);
    expect(new AdmissionGate(new FakeClock(), { limit: () => 1024, openFds: () => 10 }).maxStreams).toBe(
      1024 - DEFAULT_ADMISSION_LIMITS.fdReserve,
    );
  });

  test("dials in progress beyond the cap are BUSY 'dials'; a settled dial frees its slot but not its stream", () => {
    const gate = new AdmissionGate(new FakeClock(), noFdLimit, limits({ maxStreams: 100, maxPendingDials: 2 }));
    const a = admitted(gate);
    admitted(gate);
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "dials" });
    a.dialEnded();
    a.dialEnded();
    expect(gate.pendingDials).toBe(1);
    expect(gate.streams).toBe(2);
    admitted(gate);
    expect(gate.rejections.dials).toBe(1);
  });

  test("the kernel estimate is charged only for a socket whose writes have fallen short for stallMs (an app not reading, not a bulk stream)", async () => {
    const clock = new FakeClock();
    const gate = new AdmissionGate(
      clock,
      noFdLimit,
      limits({ maxBufferedBytes: 10_000, kernelBytesPerBlockedSocket: 6_000, stallMs: 1_000 }),
    );
    const bulk = admitted(gate);
    const stuck = admitted(gate);
    bulk.setBlocked(true);
    stuck.setBlocked(true);
    await clock.advance(500);
    bulk.setBlocked(false); // the bulk stream's socket drained: never charged
    expect(gate.bufferedBytes).toBe(0);
    expect(gate.admit({}).admitted).toBe(true);
    await clock.advance(500); // the other one has taken nothing for a second
    expect(gate.bufferedBytes).toBe(6_000);
    bulk.setBlocked(true); // blocked again just now: not yet
    expect(gate.bufferedBytes).toBe(6_000);
    stuck.hold(5_000);
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "buffered" });
    stuck.close();
    expect(gate.bufferedBytes).toBe(0);
  });

  test("bytes held for app sockets plus the kernel estimate per blocked socket bound admission ('buffered')", () => {
    const gate = new AdmissionGate(
      new FakeClock(),
      noFdLimit,
      limits({ maxBufferedBytes: 10_000, kernelBytesPerBlockedSocket: 4_000, stallMs: 0 }),
    );
    const a = admitted(gate);
    a.hold(3_000);
    a.setBlocked(true);
    a.setBlocked(true); // counted once
    expect(gate.bufferedBytes).toBe(7_000);
    const b = admitted(gate);
    b.hold(3_000);
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "buffered" });
    a.hold(-3_000);
    a.setBlocked(false);
    expect(gate.bufferedBytes).toBe(3_000);
    admitted(gate);
    b.close(); // releases what it held
    expect(gate.bufferedBytes).toBe(0);
    b.hold(500); // after close: ignored
    expect(gate.bufferedBytes).toBe(0);
  });

  test("an OPEN that would eat into the fd reserve is BUSY 'fds'; the count is sampled, not read per OPEN", async () => {
    const clock = new FakeClock();
    let open = 50;
    let reads = 0;
    const gate = new AdmissionGate(
      clock,
      { limit: () => 200, openFds: () => (reads++, open) },
      limits({ fdReserve: 100 }),
    );
    // 50 open + reserve 100: 50 more fit under 200 (each admission is counted as one more fd).
    const tickets = Array.from({ length: 50 }, () => admitted(gate));
    expect(reads).toBeLessThan(50);
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "fds" });
    // Other fds closed meanwhile (the tunnel's requests ended): seen at the next sample.
    open = 20;
    await clock.advance(1_000);
    admitted(gate);
    for (const t of tickets) t.close();
    expect(gate.rejections.fds).toBe(1);
  });

  test("fds that cannot be counted leave only the stream cap", () => {
    const gate = new AdmissionGate(
      new FakeClock(),
      { limit: () => 200, openFds: () => undefined },
      limits({ fdReserve: 100, maxStreams: 1_000 }),
    );
    expect(gate.maxStreams).toBe(100);
    for (let i = 0; i < 100; i++) admitted(gate).dialEnded();
    expect(gate.admit({})).toMatchObject({ admitted: false, reason: "streams" });
  });

  test("the kernel estimate is tcp_wmem's maximum, or 4 MiB when unreadable", () => {
    expect(kernelSendBufferMax(() => "4096\t16384\t6291456\n")).toBe(6291456);
    expect(kernelSendBufferMax(() => "garbage")).toBe(4 * 1024 * 1024);
    expect(
      kernelSendBufferMax(() => {
        throw new Error("ENOENT");
      }),
    ).toBe(4 * 1024 * 1024);
  });
});

describe("one gate shared by the open handlers of two tunnels", () => {
  let echo: { port: number; stop(): void };
  let stalled: { port: number; stop(): void };
  beforeAll(() => {
    const e = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (s, c) => void s.write(c), error() {} },
    });
    echo = { port: e.port, stop: () => e.stop(true) };
    // Accepts and never reads: the connector's writes to it fall short and it is charged as blocked.
    const s = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: { open: (sock) => sock.pause(), data() {}, error() {} },
    });
    stalled = { port: s.port, stop: () => s.stop(true) };
  });
  afterAll(() => {
    echo.stop();
    stalled.stop();
  });

  function tunnels(gate: AdmissionGate) {
    const allowList = AllowList.compile({
      version: "1",
      apps: [
        {
          name: "echo",
          destinations: [
            { host: "127.0.0.1", ports: `${echo.port}` },
            { host: "127.0.0.1", ports: `${stalled.port}` },
          ],
          servers: [],
        },
      ],
    });
    const counters: DataplaneCounters = { failures: {} };
    const log = createConsola({ level: -999 });
    return [0, 1].map(() => {
      const [a, b] = createMemoryTransportPair();
      const connector = new Session({
        role: "connector",
        transport: a,
        onOpen: createOpenHandler({ allowList: () => allowList, log, counters, gate }),
      });
      const gateway = new Session({ role: "gateway", transport: b });
      return { connector, gateway, counters, close: () => (gateway.close(), connector.close()) };
    });
  }

  test("the process-wide cap holds across tunnels: the third stream is BUSY on either tunnel, and admitted again once one ends", async () => {
    const gate = new AdmissionGate(new FakeClock(), noFdLimit, limits({ maxStreams: 2 }));
    const [t1, t2] = tunnels(gate);
    try {
      const s1 = await t1!.gateway.open({ app: "echo", host: "127.0.0.1", port: echo.port });
      await t2!.gateway.open({ app: "echo", host: "127.0.0.1", port: echo.port });
      for (const t of [t1!, t2!]) {
        const refused = await t.gateway
          .open({ app: "echo", host: "127.0.0.1", port: echo.port })
          .catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(OpenRejectedError);
        expect((refused as OpenRejectedError).result).toBe(StreamCode.BUSY);
      }
      expect(gate.rejections.streams).toBe(2);
      expect(t1!.counters.failures.BUSY).toBe(2);
      const out = sink(s1);
      s1.end();
      await until(() => out.closed !== undefined, "the first stream to end");
      await until(() => gate.streams === 1, "its slot to be freed");
      const again = await t1!.gateway.open({ app: "echo", host: "127.0.0.1", port: echo.port });
      expect(again.state).toBe("open");
    } finally {
      t1!.close();
      t2!.close();
    }
  });

  test("an app that does not read is charged as blocked; the charge is released when its stream ends", async () => {
    const gate = new AdmissionGate(
      new FakeClock(),
      noFdLimit,
      limits({ kernelBytesPerBlockedSocket: 1_000_000, stallMs: 0 }),
    );
    const [t] = tunnels(gate);
    try {
      const stream = await t!.gateway.open({ app: "echo", host: "127.0.0.1", port: stalled.port });
      const out = sink(stream);
      const chunk = new Uint8Array(64 * 1024);
      // Write until the stream pushes back: the app's kernel buffers fill, the relay holds the rest.
      for (let i = 0; i < 200 && stream.write(chunk); i++) await Bun.sleep(1);
      await until(() => gate.bufferedBytes >= 1_000_000, "the stalled socket to be charged", 10_000);
      stream.reset(StreamCode.CANCELLED, "done");
      await until(() => gate.bufferedBytes === 0 && gate.streams === 0, "the charge to be released");
      expect(out.closed?.kind).toBe("reset");
    } finally {
      t!.close();
    }
  });

  test("dials held by a black hole stop at the tunnel's share of the dial cap: the rest are BUSY 'dials' at once, not held for the dial timeout", async () => {
    const gate = new AdmissionGate(new FakeClock(), noFdLimit, limits({ maxPendingDials: 6 })); // one tunnel: 3
    const allowList = AllowList.compile({
      version: "1",
      apps: [{ name: "bh", destinations: [{ host: "*.corp.example", ports: "443" }], servers: [] }],
    });
    const [a, b] = createMemoryTransportPair();
    const connector = new Session({
      role: "connector",
      transport: a,
      onOpen: createOpenHandler({
        allowList: () => allowList,
        log: createConsola({ level: -999 }),
        counters: { failures: {} },
        gate,
        resolve: () => new Promise(() => {}),
      }),
    });
    const gateway = new Session({ role: "gateway", transport: b });
    try {
      const opens = Array.from({ length: 10 }, (_, i) =>
        gateway.open({ app: "bh", host: `h${i}.corp.example`, port: 443 }).catch((err: unknown) => err),
      );
      // The BUSY answers are immediate; 20 s only keeps a broken gate from hanging the test.
      const busy = await Promise.race([Promise.all(opens.slice(3)), Bun.sleep(20_000).then(() => "held")]);
      expect(busy).not.toBe("held");
      for (const err of busy as unknown[]) expect((err as OpenRejectedError).result).toBe(StreamCode.BUSY);
      expect(gate.pendingDials).toBe(3);
      expect(gate.rejections.dials).toBe(7);
    } finally {
      gateway.close();
      connector.close();
    }
    // The tunnel's end cancels the dials: every slot comes back.
    await until(() => gate.pendingDials === 0 && gate.streams === 0, "the slots to be freed");
  });
});
