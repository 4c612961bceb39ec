/**
 * `connectTunnel` against a raw TLS gateway that controls its own writes: bytes that follow the 101
 * answer in the same TCP segment are WebSocket frames and must reach the session, in order.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer as createTlsServer, type Server, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { systemClock } from "../../src/clock.ts";
import { Secret } from "../../src/secret.ts";
import { connectTunnel } from "../../src/supervisor/connection.ts";
import { FrameType, GoAwayCode, StreamCode, SUBPROTOCOL } from "../../src/mux/const.ts";
import { decodeMessage } from "../../src/mux/frame-decoder.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import { ProxyBypass } from "../../src/netaddr/proxy-bypass.ts";
import { buildSwitchingResponse } from "../../src/transport/websocket/handshake.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/test-pki.ts";

let ca: TestCa;
let serverCert: IssuedCert;
let clientCert: IssuedCert;
const servers: Server[] = [];

beforeAll(() => {
  ca = createTestCa("Cloud CA");
  serverCert = ca.issueServer();
  clientCert = ca.issueClient({ commonName: "conn-1", organization: "group-a" });
});

afterAll(() => {
  for (const server of servers) server.close();
});

/** One unmasked binary WebSocket frame (server to client) carrying `payload` (< 126 bytes). */
function wsBinary(payload: Uint8Array): Uint8Array {
  return Uint8Array.from([0x82, payload.length, ...payload]);
}

/** A gateway that answers the upgrade with the 101 head and `after` in one write, then keeps the connection open. */
async function rawGateway(
  after: Uint8Array[],
): Promise<{ url: string; received: () => Buffer; onData: (fn: () => void) => void }> {
  let head = "";
  let upgraded = false;
  let received = Buffer.alloc(0);
  const listeners: (() => void)[] = [];
  const server = createTlsServer(
    { cert: serverCert.cert, key: serverCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
    (socket: TLSSocket) => {
      socket.on("data", (chunk: Buffer) => {
        if (upgraded) {
          received = Buffer.concat([received, chunk]);
          for (const fn of listeners) fn();
          return;
        }
        head += chunk.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        upgraded = true;
        const key = /sec-websocket-key:\s*(\S+)/i.exec(head)![1]!;
        socket.write(Buffer.concat([buildSwitchingResponse(key, SUBPROTOCOL), ...after])); // ONE write: the 101 and the frames
      });
      socket.on("error", () => {});
    },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `wss://127.0.0.1:${(server.address() as AddressInfo).port}/v1/tunnel`,
    received: () => received,
    onData: (fn) => void listeners.push(fn),
  };
}

const options = () => ({
  credentials: {
    certificateChainPem: clientCert.cert,
    privateKeyPem: new Secret(clientCert.key),
    caCertificatePem: ca.cert,
  },
  connectorVersion: "9.9.9",
  noProxy: ProxyBypass.parse(""),
  clock: systemClock,
  onOpen: () => {
    throw new Error("no OPEN expected");
  },
});

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
    ),
  ]);
}

test("a GO_AWAY in the same write as the 101 reaches the session and the tunnel's peerDraining", async () => {
  const gw = await rawGateway([wsBinary(enc.encodeGoAway(GoAwayCode.DRAINING, "right away"))]);
  const heard: { code: number; message: string }[] = [];
  const tunnel = await connectTunnel(
    { id: "raw", url: gw.url },
    { ...options(), timeoutMs: 5_000 },
    { goAway: (code, message) => heard.push({ code, message }) },
  );
  try {
    expect(tunnel.peerDraining).toBeDefined();
    const goAway = await within(20_000, "peerDraining", tunnel.peerDraining!);
    expect(goAway).toEqual({ code: GoAwayCode.DRAINING, message: "right away" });
    expect(heard).toEqual([{ code: GoAwayCode.DRAINING, message: "right away" }]);
    expect(tunnel.session.peerDraining).toBe(true);
  } finally {
    tunnel.close("test over");
  }
});

test("several frames after the 101 in one write arrive in order", async () => {
  const opaque = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  // A PING (answered), then GO_AWAY: both must be seen, the PING first.
  const gw = await rawGateway([
    wsBinary(enc.encodePing(opaque)),
    wsBinary(enc.encodeGoAway(GoAwayCode.DRAINING, "second")),
  ]);
  const tunnel = await connectTunnel({ id: "raw", url: gw.url }, { ...options(), timeoutMs: 5_000 });
  try {
    await within(20_000, "peerDraining", tunnel.peerDraining!);
    // The PONG went back: the PING before the GO_AWAY was not lost either.
    const sawPong = Promise.withResolvers<void>();
    const look = () => {
      for (const message of unmaskedPayloads(gw.received())) {
        decodeMessage(message, (f) => {
          if (f.type === FrameType.PONG && Buffer.from(f.opaque).equals(opaque)) sawPong.resolve();
        });
      }
    };
    gw.onData(look);
    look();
    await within(20_000, "the PONG", sawPong.promise);
  } finally {
    tunnel.close("test over");
  }
});

test("idle(): pending while a stream is open (another one's end left it open), resolved when the tunnel closes", async () => {
  // Two OPENs and a RESET of the first, with the 101: one stream stays open (never answered here).
  const gw = await rawGateway([
    wsBinary(enc.encodeOpen(1, "wiki", "wiki.corp.example", 443)),
    wsBinary(enc.encodeOpen(3, "wiki", "wiki.corp.example", 443)),
    wsBinary(enc.encodeReset(1, StreamCode.CANCELLED, "user left")),
  ]);
  const opened: number[] = [];
  const tunnel = await connectTunnel(
    { id: "raw", url: gw.url },
    { ...options(), onOpen: (_request, stream) => void opened.push(stream.id), timeoutMs: 5_000 },
  );
  try {
    await within(
      20_000,
      "both opens",
      until(() => opened.length === 2 && tunnel.activeStreams() === 1),
    );
    let idle = false;
    void tunnel.idle().then(() => (idle = true));
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(idle).toBe(false);
    tunnel.close("test over");
    await within(20_000, "idle after the close", tunnel.idle());
    expect(tunnel.activeStreams()).toBe(0);
  } finally {
    tunnel.close("test over");
  }
});

/** Resolves once `condition` holds, looking after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Payloads of the masked binary client frames in `buf` (small frames only; close frames left out). */
function unmaskedPayloads(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i + 6 <= buf.length; ) {
    const len = buf[i + 1]! & 0x7f;
    if (len >= 126 || i + 6 + len > buf.length) break;
    const mask = buf.subarray(i + 2, i + 6);
    if (buf[i]! === 0x82) out.push(buf.subarray(i + 6, i + 6 + len).map((b, j) => b ^ mask[j % 4]!));
    i += 6 + len;
  }
  return out;
}
