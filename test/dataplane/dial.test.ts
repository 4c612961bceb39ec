/**
 * dialDestination on real loopback sockets (127.0.0.0/8 and ::1 only) plus fakes for what loopback
 * cannot produce (a connect that never answers, a resolver that never answers).
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketConnectOptions, TCPSocketListener } from "bun";
import type { ConnectFn } from "../../src/dataplane/dial.ts";
import { dialDestination } from "../../src/dataplane/dial.ts";
import { DialError, failureOfSocketError } from "../../src/dataplane/errors.ts";
import { dialOrder, type ResolvedAddress } from "../../src/dataplane/resolve.ts";
import { FakeClock } from "../support/fake-clock.ts";

/** A safety deadline for loopback events (milliseconds when idle, seconds on a loaded machine). */
const WAIT_MS = 20_000;
const listeners: TCPSocketListener<unknown>[] = [];
const sockets: Socket<unknown>[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const l of listeners.splice(0)) l.stop(true);
});

/** An echo server on `hostname`, port 0. */
function echoServer(hostname: string): TCPSocketListener<undefined> {
  const server = Bun.listen({ hostname, port: 0, socket: { data: (s, d) => void s.write(d) } });
  listeners.push(server as TCPSocketListener<unknown>);
  return server;
}

/** A port on 127.0.0.1 where nothing listens any more. */
function closedPort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

function hasIPv6Loopback(): boolean {
  try {
    Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}
const v6 = hasIPv6Loopback();
if (!v6) console.warn("dial.test: ::1 is not available on this machine; IPv6 loopback cases are skipped");

/** Waits for `promise`, failing the test if it takes longer than WAIT_MS. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function dialError(promise: Promise<unknown>): Promise<DialError> {
  const err = await within(
    promise.then(
      () => undefined,
      (e: unknown) => e,
    ),
    "the dial to fail",
  );
  expect(err).toBeInstanceOf(DialError);
  return err as DialError;
}

/** Records the hostnames dialed, then connects for real. */
function recordingConnect(hosts: string[]): ConnectFn {
  return <T>(options: TCPSocketConnectOptions<T>) => {
    hosts.push(options.hostname);
    return Bun.connect(options);
  };
}

const resolveTo =
  (...addresses: ResolvedAddress[]) =>
  async (): Promise<readonly ResolvedAddress[]> =>
    addresses;
const v4 = (address: string): ResolvedAddress => ({ address, family: 4 });

/** Advances the fake clock in steps until `promise` settles (each dial attempt arms its timer later). */
async function advanceUntilSettled(clock: FakeClock, promise: Promise<unknown>, stepMs: number): Promise<void> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 100 && !settled; i++) await clock.advance(stepMs);
}

describe("dialDestination on loopback", () => {
  test("connects to 127.0.0.1, hands the socket its data, and delivers the peer's bytes to the caller's handlers", async () => {
    const server = echoServer("127.0.0.1");
    let received!: (text: string) => void;
    const echoed = new Promise<string>((resolve) => (received = resolve));
    const socket = await dialDestination(
      "127.0.0.1",
      server.port,
      { data: (_s, d) => received(d.toString()) },
      { data: { stream: 7 } },
    );
    sockets.push(socket as Socket<unknown>);
    expect(socket.data).toEqual({ stream: 7 });
    expect(socket.remoteAddress).toBe("127.0.0.1");
    socket.write("ping");
    expect(await within(echoed, "the echo")).toBe("ping");
  });

  test("makes no socket-option call per dial: NODELAY is Bun's default, keepalive is the stream sweep's", async () => {
    const server = echoServer("127.0.0.1");
    const calls: string[] = [];
    const connect: ConnectFn = async <T>(options: TCPSocketConnectOptions<T>) => {
      const socket = await Bun.connect(options);
      const noDelay = socket.setNoDelay.bind(socket);
      const keepAlive = socket.setKeepAlive.bind(socket);
      socket.setNoDelay = (on?: boolean) => (calls.push(`nodelay ${on}`), noDelay(on));
      socket.setKeepAlive = (on?: boolean, delay?: number) => (
        calls.push(`keepalive ${on} ${delay}`), keepAlive(on, delay)
      );
      return socket;
    };
    const socket = await dialDestination("127.0.0.1", server.port, {}, { data: undefined, connect });
    sockets.push(socket as Socket<unknown>);
    expect(calls).toEqual([]);
  });

  test.skipIf(!v6)("connects to ::1, written bare or in brackets", async () => {
    const server = echoServer("::1");
    for (const host of ["::1", "[::1]"]) {
      const socket = await dialDestination(host, server.port, {}, { data: undefined });
      sockets.push(socket as Socket<unknown>);
      expect(socket.remoteAddress).toBe("::1");
    }
  });

  test("an IPv4-mapped IPv6 literal is dialed as the IPv4 address", async () => {
    const server = echoServer("127.0.0.1");
    const hosts: string[] = [];
    const socket = await dialDestination(
      `::ffff:127.0.0.1`,
      server.port,
      {},
      { data: undefined, connect: recordingConnect(hosts) },
    );
    sockets.push(socket as Socket<unknown>);
    expect(hosts).toEqual(["127.0.0.1"]);
  });

  test("a port that was just closed is REFUSED", async () => {
    const err = await dialError(dialDestination("127.0.0.1", closedPort(), {}, { data: undefined }));
    expect(err.failure).toBe("REFUSED");
    expect(err.code).toBe("DIAL_REFUSED");
    expect(err.message).toContain("ECONNREFUSED");
  });

  test("after a refused address the next one is tried, and only the winner's events reach the handlers", async () => {
    const server = echoServer("127.0.0.1");
    const hosts: string[] = [];
    const attempts: [string, boolean][] = [];
    const seen: unknown[] = [];
    let closed!: () => void;
    const closedP = new Promise<void>((resolve) => (closed = resolve));
    const socket = await dialDestination(
      "app.corp.example",
      server.port,
      { close: (s) => void (seen.push(s), closed()), end: (s) => void seen.push(s), error: (s) => void seen.push(s) },
      {
        data: undefined,
        resolve: resolveTo(v4("127.0.0.2"), v4("127.0.0.1")),
        connect: recordingConnect(hosts),
        onAttempt: (a, ok) => void attempts.push([a, ok]),
      },
    );
    expect(hosts).toEqual(["127.0.0.2", "127.0.0.1"]);
    // Passive health hears about each resolved address, as the active checks name them.
    expect(attempts).toEqual([
      [`127.0.0.2:${server.port}`, false],
      [`127.0.0.1:${server.port}`, true],
    ]);
    expect(socket.remoteAddress).toBe("127.0.0.1");
    socket.terminate();
    await within(closedP, "close");
    expect(seen).toEqual([socket]);
  });

  test("when every address fails the message names each and the failure is REFUSED", async () => {
    const port = closedPort();
    const err = await dialError(
      dialDestination(
        "app.corp.example",
        port,
        {},
        { data: undefined, resolve: resolveTo(v4("127.0.0.2"), v4("127.0.0.3")) },
      ),
    );
    expect(err.failure).toBe("REFUSED");
    expect(err.message).toContain(`127.0.0.2:${port}`);
    expect(err.message).toContain(`127.0.0.3:${port}`);
  });

  test("a name is resolved with the host's DNS (localhost)", async () => {
    const server = echoServer("127.0.0.1");
    const socket = await within(dialDestination("localhost", server.port, {}, { data: undefined }), "localhost dial");
    sockets.push(socket as Socket<unknown>);
    expect(socket.remoteAddress).toBe("127.0.0.1");
  });

  test("a real lookup of a name under .invalid is a DNS_FAILURE", async () => {
    const err = await dialError(
      dialDestination("no-such-app.invalid", 443, {}, { data: undefined, timeoutMs: 20_000 }),
    );
    expect(err.failure).toBe("DNS_FAILURE");
  });
});

describe("dialDestination failures from injected resolvers and connectors", () => {
  test("a resolver that rejects is a DNS_FAILURE naming the error code", async () => {
    const resolve = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" });
    };
    const err = await dialError(dialDestination("wiki.corp.example", 443, {}, { data: undefined, resolve }));
    expect(err.failure).toBe("DNS_FAILURE");
    expect(err.message).toBe("cannot resolve wiki.corp.example: ENOTFOUND");
  });

  test("a resolver that throws synchronously or answers nothing is a DNS_FAILURE", async () => {
    const throwing = () => {
      throw new Error("boom");
    };
    expect((await dialError(dialDestination("a.example", 1, {}, { data: undefined, resolve: throwing }))).failure).toBe(
      "DNS_FAILURE",
    );
    expect(
      (await dialError(dialDestination("a.example", 1, {}, { data: undefined, resolve: resolveTo() }))).failure,
    ).toBe("DNS_FAILURE");
  });

  test("a host that is neither a name nor an IP never reaches the resolver", async () => {
    let called = false;
    const resolve = async () => ((called = true), []);
    const err = await dialError(dialDestination("010.0.0.1", 443, {}, { data: undefined, resolve }));
    expect(err.failure).toBe("DNS_FAILURE");
    expect(called).toBe(false);
  });

  test("a resolver that never answers fails with DNS_FAILURE at the deadline", async () => {
    const clock = new FakeClock();
    const dial = dialDestination(
      "slow.example",
      443,
      {},
      { data: undefined, clock, timeoutMs: 3_000, resolve: () => new Promise(() => {}) },
    );
    await advanceUntilSettled(clock, dial, 500);
    const err = await dialError(dial);
    expect(err.failure).toBe("DNS_FAILURE");
    expect(clock.now()).toBe(3_000);
  });

  test("a connect that never completes is a TIMEOUT at the deadline; a socket it yields later is terminated", async () => {
    const clock = new FakeClock();
    let lateResolve!: (s: Socket<undefined>) => void;
    const connect = (() =>
      new Promise<Socket<undefined>>((resolve) => {
        lateResolve = resolve;
      })) as ConnectFn;
    let lingering: Promise<void> | undefined;
    const dial = dialDestination(
      "127.0.0.1",
      443,
      {},
      { data: undefined, clock, timeoutMs: 10_000, connect, onAbandoned: (settled) => void (lingering = settled) },
    );
    await advanceUntilSettled(clock, dial, 1_000);
    const err = await dialError(dial);
    expect(err.failure).toBe("TIMEOUT");
    expect(clock.now()).toBe(10_000);
    // The given-up connect is handed to the caller (it still holds an fd) until it settles.
    expect(lingering).toBeDefined();
    let gone = false;
    void lingering!.then(() => (gone = true));
    await Promise.resolve();
    expect(gone).toBe(false);
    let terminated = false;
    lateResolve({ terminate: () => void (terminated = true) } as unknown as Socket<undefined>);
    await lingering;
    expect(terminated).toBe(true);
    expect(gone).toBe(true);
  });

  test("addresses share the deadline: with two silent addresses the second is tried halfway", async () => {
    const clock = new FakeClock();
    const started: number[] = [];
    const connect = (() => (started.push(clock.now()), new Promise(() => {}))) as ConnectFn;
    const resolve = resolveTo(v4("127.0.0.2"), v4("127.0.0.3"));
    const dial = dialDestination("a.example", 443, {}, { data: undefined, clock, timeoutMs: 10_000, connect, resolve });
    await advanceUntilSettled(clock, dial, 1_000);
    expect((await dialError(dial)).failure).toBe("TIMEOUT");
    expect(started).toEqual([0, 5_000]);
  });

  test("a refusal outranks a timeout on another address", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const refused = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    const connect = (() => (calls++ === 0 ? Promise.reject(refused) : new Promise(() => {}))) as ConnectFn;
    const resolve = resolveTo(v4("127.0.0.2"), v4("127.0.0.3"));
    const dial = dialDestination("a.example", 443, {}, { data: undefined, clock, timeoutMs: 10_000, connect, resolve });
    await advanceUntilSettled(clock, dial, 1_000);
    expect((await dialError(dial)).failure).toBe("REFUSED");
  });

  test("a 'refused' connect while the process is out of fds ends BUSY at once, with no address blamed", async () => {
    const refused = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    let calls = 0;
    const connect = (() => (calls++, Promise.reject(refused))) as ConnectFn;
    const attempts: unknown[] = [];
    const resolve = resolveTo(v4("127.0.0.2"), v4("127.0.0.3"));
    const busy = await dialError(
      dialDestination(
        "a.example",
        443,
        {},
        { data: undefined, connect, resolve, outOfFds: () => true, onAttempt: (...a) => void attempts.push(a) },
      ),
    );
    expect(busy.failure).toBe("BUSY");
    expect(calls).toBe(1);
    expect(attempts).toEqual([]);
    const real = await dialError(
      dialDestination(
        "a.example",
        443,
        {},
        { data: undefined, connect, resolve, outOfFds: () => false, onAttempt: (...a) => void attempts.push(a) },
      ),
    );
    expect(real.failure).toBe("REFUSED");
    expect(attempts).toHaveLength(2);
  });

  test("aborting the signal cancels a dial in flight with CANCELLED", async () => {
    const controller = new AbortController();
    const connect = (() => new Promise(() => {})) as ConnectFn;
    const dial = dialDestination("127.0.0.1", 443, {}, { data: undefined, connect, signal: controller.signal });
    controller.abort();
    const err = await dialError(dial);
    expect(err.failure).toBe("CANCELLED");
  });

  test("port 0 and ports above 65535 are refused before any I/O", async () => {
    for (const port of [0, 65536, 1.5]) {
      expect((await dialError(dialDestination("127.0.0.1", port, {}, { data: undefined }))).failure).toBe("INTERNAL");
    }
  });
});

describe("failureOfSocketError", () => {
  const cases: [string | undefined, string][] = [
    ["ECONNREFUSED", "REFUSED"],
    ["EMFILE", "BUSY"],
    ["ENFILE", "BUSY"],
    ["ETIMEDOUT", "TIMEOUT"],
    ["ENETUNREACH", "UNREACHABLE"],
    ["EHOSTUNREACH", "UNREACHABLE"],
    ["EADDRNOTAVAIL", "UNREACHABLE"],
    ["EPERM", "UNREACHABLE"],
    ["ECONNRESET", "INTERNAL"],
    [undefined, "INTERNAL"],
  ];
  for (const [code, failure] of cases) {
    test(`${code ?? "an error without a code"} maps to ${failure}`, () => {
      expect(failureOfSocketError(Object.assign(new Error("x"), { code }))).toBe(
        failure as ReturnType<typeof failureOfSocketError>,
      );
    });
  }
});

describe("dialOrder", () => {
  const v6 = (address: string): ResolvedAddress => ({ address, family: 6 });
  test("alternates families starting with the first answer's family", () => {
    const order = dialOrder([v6("2001:db8::1"), v6("2001:db8::2"), v4("10.0.0.1"), v4("10.0.0.2")], 8);
    expect(order.map((a) => a.address)).toEqual(["2001:db8::1", "10.0.0.1", "2001:db8::2", "10.0.0.2"]);
  });
  test("drops duplicates (also mapped forms) and caps the count", () => {
    const order = dialOrder([v4("10.0.0.1"), v6("::ffff:10.0.0.1"), v4("10.0.0.1"), v4("10.0.0.2"), v4("10.0.0.3")], 2);
    expect(order.map((a) => a.address)).toEqual(["10.0.0.1", "10.0.0.2"]);
  });
});
