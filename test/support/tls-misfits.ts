/**
 * Servers and proxies that fail one TLS or proxy check each, on loopback port 0, for tests that pin
 * what Bun reports and how the connector names it: a certificate for another name, for the wrong
 * purpose (client-only EKU), expired, not yet valid, from another CA; a TLS 1.1-only server; and
 * proxies that close, reset or garble their answer to CONNECT, or cut the tunnel right after 200.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer as createTlsServer } from "node:tls";
import type { AddressInfo } from "node:net";
import type { IssuedCert, TestCa } from "./test-pki.ts";
import { createTestCa } from "./test-pki.ts";

const DAY_MS = 86_400_000;

export type CertificateMisfit = "wrong-name" | "wrong-purpose" | "expired" | "not-yet-valid" | "other-ca";

/** A server certificate from `ca` (or another CA) that fails exactly the named check for 127.0.0.1 / localhost. */
export function misfitCertificate(ca: TestCa, misfit: CertificateMisfit): IssuedCert {
  switch (misfit) {
    case "wrong-name":
      return ca.issueServer({ dnsNames: ["gateway.example"], ips: ["10.9.9.9"] });
    case "wrong-purpose": {
      const keys = generateKeyPairSync("rsa", {
        modulusLength: 2048,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      });
      const cert = ca.signPublicKey(keys.publicKey, {
        commonName: "localhost",
        dnsNames: ["localhost"],
        ips: ["127.0.0.1"],
        usage: "client",
      });
      return { cert, key: keys.privateKey };
    }
    case "expired":
      return ca.issueServer({ notBefore: new Date(Date.now() - 10 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) });
    case "not-yet-valid":
      return ca.issueServer({ notBefore: new Date(Date.now() + DAY_MS), notAfter: new Date(Date.now() + 10 * DAY_MS) });
    case "other-ca":
      return createTestCa("Inspection CA").issueServer();
  }
}

/** A TLS server that offers only TLS 1.0-1.1. */
export async function startLegacyTlsServer(cert: IssuedCert): Promise<{ port: number; stop(): void }> {
  const server = createTlsServer({ cert: cert.cert, key: cert.key, minVersion: "TLSv1", maxVersion: "TLSv1.1" }, (s) =>
    s.resume(),
  );
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, stop: () => server.close() };
}

export type ProxyMisbehaviour = "close" | "reset" | "garbage" | "close-after-200";

/** A proxy that misbehaves at CONNECT as named; `url` is `http://127.0.0.1:PORT`. */
export function startBrokenProxy(mode: ProxyMisbehaviour): { url: string; stop(): void } {
  const listener = Bun.listen<{ answered: boolean }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { answered: false };
      },
      data(socket) {
        if (socket.data.answered) return; // what follows the CONNECT (a ClientHello) is not answered
        socket.data.answered = true;
        if (mode === "close") socket.end();
        else if (mode === "reset") socket.terminate();
        else if (mode === "garbage") {
          socket.write("SSH-2.0-OpenSSH_9.6\r\n\r\n");
          socket.end();
        } else {
          socket.write("HTTP/1.1 200 Connection established\r\n\r\n");
          socket.end();
        }
      },
    },
  });
  return { url: `http://127.0.0.1:${listener.port}`, stop: () => listener.stop(true) };
}
