/**
 * `dialTunnel`'s errors against real loopback sockets: what a gateway (or something in its place)
 * says is shown printably, and each failure names the check that failed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { Secret } from "../../src/secret.ts";
import type { DialTunnelOptions } from "../../src/transport/dial-tunnel.ts";
import type { TunnelErrorCode } from "../../src/transport/websocket/errors.ts";
import { isOneLine } from "../support/printable.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/test-pki.ts";
import {
  misfitCertificate,
  startBrokenProxy,
  startLegacyTlsServer,
  type CertificateMisfit,
  type ProxyMisbehaviour,
} from "../support/tls-misfits.ts";
import { dialError } from "../support/dial-error.ts";

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
    const url = rawGateway(
      "HTTP/1.1 426 Upgrade Required\r\nsec-websocket-protocol: connector.v7\x1b[2J\r\ncontent-length: 0\r\n\r\n",
    );
    const err = await dialError(dialOptions(url));
    expect([err.code, err.status]).toEqual(["TUNNEL_HANDSHAKE", 426]);
    expect(err.message).toContain("connector.v7\\x1b[2J");
    expect(isOneLine(err.message)).toBe(true);
  });
});

describe("each failed TLS or proxy check is named as such", () => {
  /** A TLS gateway stand-in with `cert` that never answers the upgrade (the dial fails before). */
  function tlsServer(cert: IssuedCert): string {
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: cert.cert, key: cert.key },
      socket: { data() {} },
    });
    stops.push(() => listener.stop(true));
    return `wss://127.0.0.1:${listener.port}`;
  }

  const expected: [CertificateMisfit, TunnelErrorCode, string][] = [
    ["wrong-name", "TUNNEL_TLS_HOSTNAME", "signed by the cloud CA but not issued for localhost"],
    ["wrong-purpose", "TUNNEL_TLS_PURPOSE", "not meant for TLS servers (extended key usage"],
    ["expired", "TUNNEL_TLS_CLOCK", "expired by this host's clock"],
    ["not-yet-valid", "TUNNEL_TLS_CLOCK", "not valid yet by this host's clock"],
    ["other-ca", "TUNNEL_TLS", "TLS inspection"],
  ];
  for (const [misfit, code, text] of expected) {
    test(`a gateway certificate that is ${misfit}: ${code}`, async () => {
      const err = await dialError(dialOptions(tlsServer(misfitCertificate(ca, misfit))));
      expect(err.code).toBe(code);
      expect(err.message).toContain(text);
      if (misfit !== "other-ca") expect(err.message).not.toContain("TLS inspection");
      expect(err.message).not.toContain("TLS 1.2");
    });
  }

  test("a gateway that offers only TLS 1.1: TUNNEL_TLS_VERSION, not blamed on the certificate", async () => {
    const legacy = await startLegacyTlsServer(serverCert);
    stops.push(legacy.stop);
    const err = await dialError(dialOptions(`wss://127.0.0.1:${legacy.port}`));
    expect(err.code).toBe("TUNNEL_TLS_VERSION");
    expect(err.message).toContain("only TLS versions older than 1.2");
  });

  test("a gateway port that does not speak TLS: TUNNEL_TLS saying so, not a TLS version", async () => {
    const plain = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (s) => void (s.write("HTTP/1.1 400 Bad Request\r\n\r\n"), s.end()) },
    });
    stops.push(() => plain.stop(true));
    const err = await dialError(dialOptions(`wss://127.0.0.1:${plain.port}`));
    expect(err.code).toBe("TUNNEL_TLS");
    expect(err.message).toContain("does not speak TLS on this port");
    expect(err.message).not.toContain("1.2");
  });

  const proxyCases: [ProxyMisbehaviour, string][] = [
    ["close", "closed the connection without an answer when asked to CONNECT"],
    ["reset", "reset the connection when asked to CONNECT"],
    ["garbage", "answered with something that is not HTTP when asked to CONNECT"],
    ["close-after-200", "accepted CONNECT"],
  ];
  for (const [mode, text] of proxyCases) {
    test(`a proxy that does "${mode}" at CONNECT: TUNNEL_PROXY naming the proxy, not the gateway`, async () => {
      const proxy = startBrokenProxy(mode);
      stops.push(proxy.stop);
      const err = await dialError(dialOptions(tlsServer(serverCert), { proxy: proxy.url }));
      expect(err.code).toBe("TUNNEL_PROXY");
      expect(err.message).toStartWith(`proxy ${proxy.url} `);
      expect(err.message).toContain(text);
    });
  }
});

test("a TLS 1.2 gateway that hangs up on our client certificate: TUNNEL_TLS naming a closed handshake and the client certificate", async () => {
  const stranger = createTestCa("Other CA").issueClient({ commonName: "intruder" });
  const server = createTlsServer(
    {
      cert: serverCert.cert,
      key: serverCert.key,
      ca: ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
      maxVersion: "TLSv1.2",
    },
    (s) => s.resume(),
  );
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stops.push(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const err = await dialError(
    dialOptions(`wss://127.0.0.1:${port}`, {
      tls: { cert: stranger.cert, key: new Secret(stranger.key), ca: ca.cert },
    }),
  );
  expect(err.code).toBe("TUNNEL_TLS");
  expect(err.message).toContain("closed the connection during the TLS handshake");
  expect(err.message).toContain("client certificate");
  expect(err.message).not.toContain("TLS 1.2 or newer is required");
});
