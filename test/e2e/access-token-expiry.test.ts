/**
 * The gateways alone end a revoked connector's access (docs/PROTOCOL.md §5.8), with the compiled binary:
 * the connector reaches the control plane only through a CONNECT proxy (its tunnels go direct, by
 * NO_PROXY), so stopping the proxy leaves it unable to learn of its revocation or to refresh its 6-second
 * token. It is revoked without telling the gateways; its tunnels must still be gone within one token
 * lifetime (plus the gateway's 1 s close delay and slack), ended by the gateways with GO_AWAY
 * AUTH_EXPIRED, and it must not get new ones.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { startEchoServer, type EchoServer } from "../support/apps.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { until } from "../support/wait.ts";

const TTL_SECONDS = 10;
let echo: EchoServer;
let cloud: CloudProcess;
let proxy: ConnectProxy;
let daemon: DaemonProcess;

beforeAll(async () => {
  echo = startEchoServer();
  proxy = startConnectProxy();
  cloud = await startCloud({ gateways: 2, apps: [`echo=${echo.address}`], tokenTtlSeconds: TTL_SECONDS });
  const direct = cloud.gateways.map((g) => `127.0.0.1:${new URL(g.url).port}`).join(",");
  daemon = await startDaemon({
    key: cloud.provisioningKey,
    tunnels: 2,
    extraArgs: ["--proxy", proxy.url, "--no-proxy", direct],
  });
  await daemon.waitFor("connected", allTunnelsUp(2));
}, 120_000);

afterAll(async () => {
  await daemon?.stop(5_000);
  await cloud?.stop();
  proxy?.stop();
  echo?.stop();
}, 30_000);

test("revoked, gateways not told, control plane out of reach: the gateways end its tunnels with AUTH_EXPIRED within one token lifetime", async () => {
  try {
    const id = (await daemon.status()).snapshot!.connectorId!;
    const before = await cloud.gatewayStatus();
    const accepted = before.reduce((n, g) => n + g.counters!.tunnelsAccepted, 0);
    const latestExpiry = Math.max(
      ...before
        .flatMap((g) => g.tunnels)
        .filter((t) => t.connectorId === id)
        .map((t) => Date.parse(t.tokenExpiresAt)),
    );
    proxy.stop(); // from here the connector cannot reach the control plane: no refresh, no revocation news
    const revokedAt = Date.now();
    await cloud.revokeConnector(id, { notifyGateways: false });

    // A safety deadline; when they went, against the token's expiry, is printed.
    const gone = await cloud.untilNoTunnelsOf(id, TTL_SECONDS * 1000 + 30_000);
    const goneAfterMs = Date.now() - revokedAt;
    // Ended by the gateways because the tokens expired (not by the connector, which heard nothing).
    expect(gone.reduce((n, g) => n + g.counters!.tunnelsExpired, 0)).toBe(2);
    expect(gone.reduce((n, g) => n + g.counters!.tunnelsAccepted, 0)).toBe(accepted); // no tunnel came back
    await daemon.waitFor("no tunnel up", (s) => s.tunnels.every((t) => t.state !== "up"), 60_000);
    // Logged by the first failed retry after the token expired; full jitter may put it a while later.
    await until(
      "the connector to say it cannot get a token",
      async () => (daemon.output().includes("cannot get an access token") ? true : undefined),
      60_000,
    );
    console.log(
      `revoked (gateways not told, control plane unreachable) -> last tunnel gone after ${goneAfterMs} ms via AUTH_EXPIRED ` +
        `(token TTL ${TTL_SECONDS} s; the newest token expired ${latestExpiry - revokedAt} ms after the revocation)`,
    );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${message}\n--- connector log (tail) ---\n${daemon.output().slice(-4000)}\n--- cloud log (tail) ---\n${cloud.output().slice(-4000)}`,
    );
  }
}, 180_000);
