/**
 * `dialTunnel`'s errors against real loopback sockets: what a gateway (or something in its place)
 * says is shown printably, and each failure names the check that failed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Secret } from "../../src/secret.ts";
import { dialTunnel, type DialTunnelOptions } from "../../src/tunnel/dial-tunnel.ts";
import { TunnelDialError } from "../../src/tunnel/websocket/errors.ts";
import { isOneLine } from "../support/printable.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/test-pki.ts";

let ca: TestCa;
let serverCert: IssuedCert;
let clientCert: IssuedCert;
const stops: (() => void)[] = [];

beforeAll(() => {
  ca = createTestCa("Cloud CA");
  serverCert = ca.issueServer();
  clientCert = ca.issueClient({ commonName: "conn-1", organization: "group-a" });
});
afterAll(() => {
  for (const stop of stops) stop();
});

function dialOptions(url: string, overrides: Partial<DialTunnelOptions> = {}): DialTunnelOptions {
  return {
    url,
    tls: { cert: clientCert.cert, key: new Secret(clientCert.key), ca: ca.cert },
    serverName: "localhost",
    connectorVersion: "9.9.9",
    timeoutMs: 5000,
    ...overrides,
  };
}

async function dialError(options: DialTunnelOptions): Promise<TunnelDialError> {
  try {
    const { transport } = await dialTunnel(options);
    transport.close();
  } catch (err) {
    if (err instanceof TunnelDialError) return err;
    throw err;
  }
  throw new Error("dial succeeded");
}

/** A TLS server that answers the first bytes it reads with `answer`, then closes. */
function rawGateway(answer: string, cert: IssuedCert = serverCert): string {
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.cert, key: cert.key },
    socket: {
      data(socket) {
        socket.write(answer);
        socket.end();
      },
    },
  });
  stops.push(() => listener.stop(true));
  return `wss://127.0.0.1:${listener.port}`;
}

describe("what the gateway says is shown printably", () => {
  test("a refusal's reason phrase with terminal escapes", async () => {
    const url = rawGateway("HTTP/1.1 500 Oops\x1b]0;owned\x07\x1b[2J\u009b\r\ncontent-length: 0\r\n\r\n");
    const err = await dialError(dialOptions(url));
    expect([err.code, err.status]).toEqual(["TUNNEL_HANDSHAKE", 500]);
    expect(err.message).toContain("500 Oops\\x1b]0;owned");
    expect(isOneLine(err.message)).toBe(true);
  });

  test("a 426's list of supported protocols with terminal escapes", async () => {
    const url = rawGateway("HTTP/1.1 426 Upgrade Required\r\nsec-websocket-protocol: connector.v7\x1b[2J\r\ncontent-length: 0\r\n\r\n");
    const err = await dialError(dialOptions(url));
    expect([err.code, err.status]).toEqual(["TUNNEL_HANDSHAKE", 426]);
    expect(err.message).toContain("connector.v7\\x1b[2J");
    expect(isOneLine(err.message)).toBe(true);
  });
});
