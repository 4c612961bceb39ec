/**
 * The tunnel transport over real loopback TLS: `dialTunnel` (client) against `listenTunnels`
 * (server), with a throwaway PKI. Integrity, backpressure, certificate checks both ways,
 * subprotocol negotiation, typed dial errors and the CONNECT proxy path.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { TCPSocketListener } from "bun";
import { Secret } from "../../src/secret.ts";
import { dialTunnel, type DialTunnelOptions } from "../../src/transport/dial-tunnel.ts";
import type { Transport, TransportClose } from "../../src/transport/transport.ts";
import { WRITE_HIGH_WATER_BYTES } from "../../src/transport/websocket/config.ts";
import { negotiateProtocol, type UpgradeRequest } from "../../src/transport/websocket/handshake.ts";
import type { SocketSlot } from "../../src/transport/websocket/socket-slot.ts";
import {
  listenTunnels,
  type AcceptedTunnel,
  type AuthorizeDecision,
  type PeerInfo,
  type RejectedConnection,
} from "../support/ws-server.ts";
import { startConnectProxy } from "../support/connect-proxy.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/test-pki.ts";
import { dialError } from "../support/dial-error.ts";

let ca: TestCa;
let serverCert: IssuedCert;
let clientCert: IssuedCert;

beforeAll(() => {
  ca = createTestCa("Cloud CA");
  serverCert = ca.issueServer();
  clientCert = ca.issueClient({ commonName: "conn-1", organization: "group-a" });
});

interface Gateway {
  port: number;
  url: string;
  tunnels: AcceptedTunnel<string>[];
  requests: UpgradeRequest[];
  rejected: RejectedConnection[];
  nextTunnel(): Promise<AcceptedTunnel<string>>;
  nextRejection(): Promise<RejectedConnection>;
  stop(): void;
}

const stops: (() => void)[] = [];
afterAll(() => {
  for (const stop of stops) stop();
});

/** A gateway that supports `supported` protocols and refuses CNs listed in `revoked` with 403. */
function startGateway(
  options: { supported?: string[]; revoked?: string[]; acceptTimeoutMs?: number; cert?: IssuedCert } = {},
): Gateway {
  const tunnels: AcceptedTunnel<string>[] = [];
  const requests: UpgradeRequest[] = [];
  const rejected: RejectedConnection[] = [];
  let tunnelWaiter: ((t: AcceptedTunnel<string>) => void) | null = null;
  let rejectWaiter: ((r: RejectedConnection) => void) | null = null;
  const supported = options.supported ?? ["connector.v1"];
  const listener: TCPSocketListener<SocketSlot> = listenTunnels<string>({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: (options.cert ?? serverCert).cert, key: (options.cert ?? serverCert).key, ca: ca.cert },
    ...(options.acceptTimeoutMs ? { acceptTimeoutMs: options.acceptTimeoutMs } : {}),
    authorize(request: UpgradeRequest, peer: PeerInfo): AuthorizeDecision<string> {
      requests.push(request);
      const cn = /CN=([^\n,]+)/.exec(peer.certificate.subject)?.[1] ?? "";
      if (options.revoked?.includes(cn)) return { accept: false, status: 403, message: "connector revoked" };
      const protocol = negotiateProtocol(request.protocols, supported);
      if (!protocol)
        return {
          accept: false,
          status: 426,
          message: "no common version",
          headers: [["Sec-WebSocket-Protocol", supported.join(", ")]],
        };
      return { accept: true, protocol, context: cn };
    },
    onTunnel(t) {
      tunnels.push(t);
      tunnelWaiter?.(t);
    },
    onRejected(r) {
      rejected.push(r);
      rejectWaiter?.(r);
    },
  });
  const gw: Gateway = {
    port: listener.port,
    url: `wss://127.0.0.1:${listener.port}`,
    tunnels,
    requests,
    rejected,
    nextTunnel: () =>
      tunnels.length > 0
        ? Promise.resolve(tunnels.shift() as AcceptedTunnel<string>)
        : new Promise((r) => (tunnelWaiter = r)),
    nextRejection: () =>
      rejected.length > 0
        ? Promise.resolve(rejected.shift() as RejectedConnection)
        : new Promise((r) => (rejectWaiter = r)),
    stop: () => listener.stop(true),
  };
  stops.push(gw.stop);
  return gw;
}

function dialOptions(gw: { url: string }, overrides: Partial<DialTunnelOptions> = {}): DialTunnelOptions {
  return {
    url: gw.url,
    tls: { cert: clientCert.cert, key: new Secret(clientCert.key), ca: ca.cert },
    serverName: "localhost",
    connectorVersion: "9.9.9",
    timeoutMs: 5000,
    ...overrides,
  };
}

/** Resolves with `promise`, or rejects after `ms` naming what did not happen. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
    ),
  ]);
}

/** Sends `total` bytes as messages of varied sizes from a random pool, honouring backpressure. */
function sendStream(t: Transport, total: number, seed: number): { done: Promise<string>; resume(): void } {
  const pool = randomBytes(1 << 20);
  const hash = createHash("sha256");
  let sent = 0;
  let n = seed;
  const result = Promise.withResolvers<string>();
  const resume = () => {
    while (sent < total) {
      n = (n * 1103515245 + 12345) >>> 0;
      const size = Math.min(total - sent, n % 7 === 0 ? 1 << 20 : (n >>> 8) % 100_000);
      const start = (n >>> 3) % ((1 << 20) - size + 1);
      const message = pool.subarray(start, start + size);
      hash.update(Uint32Array.of(size));
      hash.update(message);
      sent += size;
      if (!t.send([message.subarray(0, size >>> 1), message.subarray(size >>> 1)])) return;
    }
    result.resolve(hash.digest("hex"));
  };
  return { done: result.promise, resume };
}

/** Hashes received messages (length-prefixed, so message boundaries count) until `total` bytes. */
function receiveStream(total: number) {
  const hash = createHash("sha256");
  let received = 0;
  const result = Promise.withResolvers<string>();
  return {
    done: result.promise,
    message(d: Uint8Array) {
      hash.update(Uint32Array.of(d.length));
      hash.update(d);
      received += d.length;
      if (received >= total) result.resolve(hash.digest("hex"));
    },
  };
}

describe("data path", () => {
  test("64 MiB each way arrive intact, in order, with message boundaries kept", async () => {
    const gw = startGateway();
    const { transport: client, protocol } = await dialTunnel(dialOptions(gw));
    expect(protocol).toBe("connector.v1");
    const { transport: server, context } = await gw.nextTunnel();
    expect(context).toBe("conn-1");
    const TOTAL = 64 * 1024 * 1024;
    const up = sendStream(client, TOTAL, 1);
    const down = sendStream(server, TOTAL, 2);
    const atServer = receiveStream(TOTAL);
    const atClient = receiveStream(TOTAL);
    client.setHandlers({ message: atClient.message, drain: up.resume, close() {} });
    server.setHandlers({ message: atServer.message, drain: down.resume, close() {} });
    up.resume();
    down.resume();
    // A safety deadline, not a speed target (the benchmark measures speed): 64 MiB each way is a few
    // seconds on an idle machine, much more on a loaded one.
    const [sentUp, sentDown, gotUp, gotDown] = await within(
      150_000,
      "64 MiB each way",
      Promise.all([up.done, down.done, atServer.done, atClient.done]),
    );
    expect(gotUp).toBe(sentUp);
    expect(gotDown).toBe(sentDown);
    const closed = Promise.withResolvers<TransportClose>();
    server.setHandlers({ message() {}, drain() {}, close: closed.resolve });
    client.close(1000, "done");
    expect(await within(20_000, "server close", closed.promise)).toEqual({ code: 1000, reason: "done" });
  }, 180_000);

  test("a server that stops reading makes send() return false with bufferedBytes bounded; drain fires once it reads again", async () => {
    const gw = startGateway();
    const { transport: client } = await dialTunnel(dialOptions(gw));
    const accepted = await gw.nextTunnel();
    let receivedMessages = 0;
    accepted.transport.setHandlers({ message: () => receivedMessages++, drain() {}, close() {} });
    accepted.transport.pauseReading();
    const drained = { count: 0, waiter: null as (() => void) | null };
    client.setHandlers({
      message() {},
      drain: () => {
        drained.count++;
        drained.waiter?.();
      },
      close() {},
    });
    const message = new Uint8Array(64 * 1024);
    let sentMessages = 0;
    let maxBuffered = 0;
    // Send until the socket is full: after a refused send and a turn of the event loop the queue is still there.
    const limit = (256 * 1024 * 1024) / message.length; // kernel buffers are far smaller than 256 MiB
    for (;;) {
      let accepted = true;
      while (accepted && sentMessages < limit) {
        accepted = client.send([message]);
        sentMessages++; // a refused send was still accepted
        maxBuffered = Math.max(maxBuffered, client.bufferedBytes);
      }
      expect(sentMessages).toBeLessThan(limit);
      await new Promise((r) => setImmediate(r));
      if (client.bufferedBytes > 0 && drained.count === 0) break;
      drained.count = 0;
    }
    expect(maxBuffered).toBeLessThanOrEqual(WRITE_HIGH_WATER_BYTES + message.length + 14);
    expect(client.bufferedBytes).toBeGreaterThan(0);
    const drain = new Promise<void>((r) => (drained.waiter = r));
    accepted.transport.resumeReading();
    await within(20_000, "drain after the server resumed", drain);
    await within(
      20_000,
      "all messages at the server",
      (async () => {
        while (receivedMessages < sentMessages) await new Promise((r) => setImmediate(r));
      })(),
    );
    expect(receivedMessages).toBe(sentMessages);
    client.close();
  }, 60_000);
});

describe("certificates", () => {
  test("the gateway sees the verified client certificate, the token and the connector version", async () => {
    const gw = startGateway();
    const { transport } = await dialTunnel(dialOptions(gw, { accessToken: new Secret("tok-abc") }));
    const accepted = await gw.nextTunnel();
    expect(accepted.peer.certificate.subject).toContain("CN=conn-1");
    expect(accepted.request.accessToken?.reveal()).toBe("tok-abc");
    expect(accepted.request.connectorVersion).toBe("9.9.9");
    transport.close();
  });

  test("a client certificate from another CA is refused before the upgrade reaches authorize", async () => {
    const gw = startGateway();
    const stranger = createTestCa("Other CA").issueClient({ commonName: "intruder" });
    const err = await dialError(
      dialOptions(gw, { tls: { cert: stranger.cert, key: new Secret(stranger.key), ca: ca.cert } }),
    );
    expect(["TUNNEL_TLS", "TUNNEL_HANDSHAKE"]).toContain(err.code);
    expect(err.status).toBeUndefined(); // no HTTP answer: refused at the TLS layer
    expect((await within(20_000, "rejection", gw.nextRejection())).reason).toContain("certificate");
    expect(gw.requests).toHaveLength(0);
  });

  test("a client without a certificate is refused", async () => {
    const gw = startGateway();
    const socketClosed = Promise.withResolvers<void>();
    await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.port,
      tls: { ca: [ca.cert], serverName: "localhost" },
      socket: { data() {}, close: () => socketClosed.resolve() },
    });
    await within(20_000, "the server to close", socketClosed.promise);
    expect(gw.requests).toHaveLength(0);
  });

  test("a gateway certificate from another CA fails the dial with TUNNEL_TLS naming TLS inspection", async () => {
    const impostor = createTestCa("Inspection CA").issueServer();
    const gw = startGateway({ cert: impostor });
    const err = await dialError(dialOptions(gw));
    expect(err.code).toBe("TUNNEL_TLS");
    expect(err.message).toContain("TLS inspection");
  });

  test("without a serverName the URL's IP address is verified against the certificate's IP SAN", async () => {
    const gw = startGateway();
    const { serverName: _unused, ...options } = dialOptions(gw);
    const { transport } = await dialTunnel(options);
    transport.close();
    const dnsOnly = startGateway({ cert: ca.issueServer({ dnsNames: ["localhost"], ips: [] }) });
    expect((await dialError({ ...options, url: dnsOnly.url })).code).toBe("TUNNEL_TLS_HOSTNAME");
  });

  test("a gateway that only speaks TLS 1.1 is refused with TUNNEL_TLS_VERSION (TLS 1.2 minimum), not blamed on inspection", async () => {
    const legacy = createTlsServer(
      { cert: serverCert.cert, key: serverCert.key, minVersion: "TLSv1", maxVersion: "TLSv1.1" },
      (s) => s.resume(),
    );
    legacy.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => legacy.listen(0, "127.0.0.1", resolve));
    stops.push(() => legacy.close());
    const port = (legacy.address() as AddressInfo).port;
    const err = await dialError(dialOptions({ url: `wss://127.0.0.1:${port}` }));
    expect(err.code).toBe("TUNNEL_TLS_VERSION");
    expect(err.message).toContain("TLS 1.2");
    expect(err.message).not.toContain("inspection");
  });

  test("a gateway certificate for another name fails with TUNNEL_TLS_HOSTNAME", async () => {
    const gw = startGateway();
    const err = await dialError(dialOptions(gw, { serverName: "gateway.example" }));
    expect(err.code).toBe("TUNNEL_TLS_HOSTNAME");
  });
});

describe("handshake", () => {
  test("the gateway picks connector.v1 when v2 is offered first", async () => {
    const gw = startGateway();
    const { transport, protocol } = await dialTunnel(dialOptions(gw, { protocols: ["connector.v2", "connector.v1"] }));
    expect(protocol).toBe("connector.v1");
    expect(gw.requests[0]?.protocols).toEqual(["connector.v2", "connector.v1"]);
    transport.close();
  });

  test("no common version gives TUNNEL_HANDSHAKE 426 with the gateway's supported list", async () => {
    const gw = startGateway({ supported: ["connector.v1"] });
    const err = await dialError(dialOptions(gw, { protocols: ["connector.v9"] }));
    expect([err.code, err.status]).toEqual(["TUNNEL_HANDSHAKE", 426]);
    expect(err.supportedProtocols).toEqual(["connector.v1"]);
  });

  test("a revoked connector gets TUNNEL_HANDSHAKE 403 that says so", async () => {
    const gw = startGateway({ revoked: ["conn-1"] });
    const err = await dialError(dialOptions(gw));
    expect([err.code, err.status]).toEqual(["TUNNEL_HANDSHAKE", 403]);
    expect(err.message).toContain("revoked");
  });

  test("the access token never appears in a dial error", async () => {
    const gw = startGateway({ revoked: ["conn-1"] });
    const err = await dialError(dialOptions(gw, { accessToken: new Secret("very-secret-token") }));
    expect(`${err.message} ${String(err.cause)}`).not.toContain("very-secret-token");
  });

  test("a server that never answers the upgrade makes the dial fail with TUNNEL_TIMEOUT", async () => {
    const silent = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: serverCert.cert, key: serverCert.key },
      socket: { data() {} },
    });
    stops.push(() => silent.stop(true));
    // 3 s, not less: the whole dial shares the deadline, and on a loaded machine a shorter one can expire
    // in the TLS handshake, before the upgrade this test is about.
    const err = await dialError(dialOptions({ url: `wss://127.0.0.1:${silent.port}` }, { timeoutMs: 3_000 }));
    expect(err.code).toBe("TUNNEL_TIMEOUT");
    expect(err.message).toContain("WebSocket upgrade");
  });

  test("a closed port gives TUNNEL_REFUSED", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const err = await dialError(dialOptions({ url: `wss://127.0.0.1:${port}` }));
    expect(err.code).toBe("TUNNEL_REFUSED");
  });

  test("a client that sends no upgrade request is dropped after the accept timeout", async () => {
    const gw = startGateway({ acceptTimeoutMs: 200 });
    const closed = Promise.withResolvers<void>();
    await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.port,
      tls: { cert: clientCert.cert, key: clientCert.key, ca: [ca.cert], serverName: "localhost" },
      socket: { data() {}, close: () => closed.resolve() },
    });
    await within(20_000, "the server to drop the idle client", closed.promise);
    expect((await gw.nextRejection()).reason).toContain("not completed in time");
  });

  test("a gateway on IPv6 loopback is reached by its bracketed URL", async () => {
    const listener = listenTunnels({
      hostname: "::1",
      port: 0,
      tls: { cert: serverCert.cert, key: serverCert.key, ca: ca.cert },
      authorize: (request) => ({ accept: true, protocol: "connector.v1", context: request.host }),
      onTunnel: (t) => hosts.resolve(t.context),
    });
    stops.push(() => listener.stop(true));
    const hosts = Promise.withResolvers<string>();
    const { transport } = await dialTunnel(dialOptions({ url: `wss://[::1]:${listener.port}/v1/tunnel` }));
    expect(await within(20_000, "tunnel", hosts.promise)).toBe(`[::1]:${listener.port}`);
    transport.close();
  });

  test.each([
    ["a plain GET", "GET /v1/tunnel HTTP/1.1\r\nHost: gw\r\n\r\n", 400],
    ["another path", "GET /admin HTTP/1.1\r\nHost: gw\r\n\r\n", 404],
    ["an oversized head", `GET /v1/tunnel HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`, 431],
  ])("the gateway answers %s with HTTP %d and closes", async (_name, request, status) => {
    const gw = startGateway();
    const answer = Promise.withResolvers<string>();
    let text = "";
    await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.port,
      tls: { cert: clientCert.cert, key: clientCert.key, ca: [ca.cert], serverName: "localhost" },
      socket: {
        handshake: (s) => void s.write(request),
        data: (_s, d) => void (text += Buffer.from(d).toString()),
        close: () => answer.resolve(text),
      },
    });
    expect((await within(20_000, "the answer", answer.promise)).split("\r\n")[0]).toStartWith(`HTTP/1.1 ${status} `);
    expect(gw.requests).toHaveLength(0);
  });

  test("the server closing the tunnel reaches the client with its code", async () => {
    const gw = startGateway();
    const { transport } = await dialTunnel(dialOptions(gw));
    const closed = Promise.withResolvers<TransportClose>();
    transport.setHandlers({ message() {}, drain() {}, close: closed.resolve });
    const accepted = await gw.nextTunnel();
    accepted.transport.setHandlers({ message() {}, drain() {}, close() {} });
    accepted.transport.close(1001, "gateway stopping");
    expect(await within(20_000, "client close", closed.promise)).toEqual({ code: 1001, reason: "gateway stopping" });
  });
});

describe("through an HTTP CONNECT proxy", () => {
  test("a tunnel through an authenticating proxy carries data", async () => {
    const gw = startGateway();
    const proxy = startConnectProxy({ auth: { username: "alice", password: "pa:ss word" } });
    stops.push(proxy.stop);
    const { transport } = await dialTunnel(dialOptions(gw, { proxy: proxy.urlWithAuth() }));
    expect(proxy.targets).toEqual([`127.0.0.1:${gw.port}`]);
    const accepted = await gw.nextTunnel();
    const got = Promise.withResolvers<string>();
    accepted.transport.setHandlers({ message: (d) => got.resolve(Buffer.from(d).toString()), drain() {}, close() {} });
    transport.setHandlers({ message() {}, drain() {}, close() {} });
    transport.send([Buffer.from("via proxy")]);
    expect(await within(20_000, "message via proxy", got.promise)).toBe("via proxy");
    transport.close();
  });

  test("wrong proxy credentials give TUNNEL_PROXY 407 without the password", async () => {
    const gw = startGateway();
    const proxy = startConnectProxy({ auth: { username: "alice", password: "right" } });
    stops.push(proxy.stop);
    const err = await dialError(dialOptions(gw, { proxy: proxy.urlWithAuth("alice", "wrong-pw") }));
    expect([err.code, err.status]).toEqual(["TUNNEL_PROXY", 407]);
    expect(err.message).not.toContain("wrong-pw");
  });

  test("a proxy that forbids the destination gives TUNNEL_PROXY 403", async () => {
    const gw = startGateway();
    const proxy = startConnectProxy({ refuseConnect: true });
    stops.push(proxy.stop);
    const err = await dialError(dialOptions(gw, { proxy: proxy.url }));
    expect([err.code, err.status]).toEqual(["TUNNEL_PROXY", 403]);
  });

  test("an unreachable proxy gives TUNNEL_PROXY", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const err = await dialError(
      dialOptions({ url: "wss://127.0.0.1:1" }, { proxy: `http://u:secret@127.0.0.1:${port}` }),
    );
    expect(err.code).toBe("TUNNEL_PROXY");
    expect(err.message).not.toContain("secret");
  });

  test("TLS inspection behind the proxy is reported as TUNNEL_TLS", async () => {
    const gw = startGateway({ cert: createTestCa("Inspection CA").issueServer() });
    const proxy = startConnectProxy();
    stops.push(proxy.stop);
    const err = await dialError(dialOptions(gw, { proxy: proxy.url }));
    expect(err.code).toBe("TUNNEL_TLS");
  });
});
