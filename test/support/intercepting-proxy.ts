/**
 * A TLS-intercepting HTTP CONNECT proxy for tests, like a corporate proxy with TLS inspection: it
 * answers CONNECT with 200, terminates the client's TLS with a certificate from its own CA
 * ("Inspection CA", for localhost/127.0.0.1), opens its own TLS connection to the real target (not
 * verifying it) and relays the decrypted bytes both ways. Loopback targets only, as
 * test/support/connect-proxy.ts; `targets` lists every CONNECT it received.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";
import { connect as tlsConnect, TLSSocket } from "node:tls";
import { createTestCa, type TestCa } from "./test-pki.ts";

export interface InterceptingProxy {
  readonly url: string;
  /** The proxy's own CA: what a client sees as the issuer. */
  readonly ca: TestCa;
  readonly targets: readonly string[];
  stop(): Promise<void>;
}

const MAX_HEAD_BYTES = 16 * 1024;

export async function startInterceptingProxy(commonName = "Inspection CA"): Promise<InterceptingProxy> {
  const ca = createTestCa(commonName);
  const leaf = ca.issueServer();
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) client.destroy();
        return;
      }
      client.off("data", onData);
      const [method, target = ""] = head.subarray(0, end).toString("latin1").split(" ");
      const match = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(target);
      targets.push(target);
      if (method !== "CONNECT" || !match) {
        client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      // The chain includes the proxy's CA, as inspection appliances send it: the pin must still reject it.
      const inner = new TLSSocket(client, { isServer: true, cert: `${leaf.cert}\n${ca.cert}`, key: leaf.key });
      const upstream = tlsConnect({
        host: match[1]!.replace(/^\[|\]$/g, ""),
        port: Number(match[2]),
        rejectUnauthorized: false,
      });
      inner.pipe(upstream);
      upstream.pipe(inner);
      inner.on("error", () => upstream.destroy());
      upstream.on("error", () => inner.destroy());
      inner.on("close", () => upstream.destroy());
      upstream.on("close", () => inner.destroy());
    };
    client.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ca,
    targets,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
