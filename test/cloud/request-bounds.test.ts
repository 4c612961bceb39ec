import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:tls";
import { CertificateAuthority } from "./ca.ts";
import { TokenIssuer } from "./access-token.ts";
import { CatalogStore } from "./catalog.ts";
import { startControlPlane, type ControlPlane } from "./control-plane.ts";
import { KeyStore } from "./keys.ts";
import { ConnectorRegistry } from "./registry.ts";
import { silentLog } from "./test-client.ts";
import { UpgradeReports } from "./upgrade-reports.ts";

const ca = new CertificateAuthority();
let control: ControlPlane;

beforeAll(async () => {
  control = await startControlPlane({
    ca,
    keys: new KeyStore({ caPin: ca.pin, controlUrl: () => "https://127.0.0.1:1" }),
    registry: new ConnectorRegistry(),
    catalog: new CatalogStore(),
    log: silentLog,
    tokens: new TokenIssuer({ ttlSeconds: 60 }),
    upgradeReports: new UpgradeReports(),
    gateways: () => [{ id: "gw-1", url: "wss://127.0.0.1:1/v1/tunnel" }],
    certTtlSeconds: 60,
    requestTimeoutMs: 200,
  });
});
afterAll(() => control.stop());

/** Sends `head` over TLS and resolves with everything the server writes until it closes (20 s safety deadline). */
function exchange(head: string): Promise<string> {
  const port = Number(new URL(control.url).port);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca: ca.certPem, servername: "localhost" }, () =>
      socket.write(head),
    );
    const chunks: Buffer[] = [];
    const deadline = setTimeout(
      () => socket.destroy(new Error("the server neither answered nor closed within 20 s")),
      20_000,
    );
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("close", () => {
      clearTimeout(deadline);
      resolve(Buffer.concat(chunks).toString());
    });
    socket.on("error", reject);
  });
}

test("a request whose body never completes is answered 408 and the connection closed", async () => {
  const head =
    "POST /v1/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
  const answer = await exchange(head);
  expect(answer).toStartWith("HTTP/1.1 408");
  expect(answer).toContain('"code":"BAD_REQUEST"');
});
