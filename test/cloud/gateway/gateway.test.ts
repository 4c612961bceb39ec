/**
 * The reference gateways end to end, in process except for the gateways themselves (two child
 * processes): a connector made of the real tunnel and dataplane modules connects to both, and users
 * reach an echo app through the shared user port. Health reports, drain, CONFIG_CHANGED, unknown and
 * revoked connectors.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startEchoServer, echoTransfer, roundTrip, type EchoServer } from "../../support/apps.ts";
import { TunnelDialError } from "../../../src/transport/websocket/errors.ts";
import { startCloud, type CloudHandle } from "../cloud.ts";
import { ecKeys, nativeCsr } from "../fixtures.ts";
import { adminFetch, silentLog } from "../test-client.ts";
import { enrollTestConnector, untilGateways, type TestConnector, type TestTunnel } from "./test-connector.ts";
import { Secret } from "../../../src/secret.ts";
import { connectTunnel } from "../../../src/supervisor/connection.ts";
import { dialTunnel } from "../../../src/transport/dial-tunnel.ts";
import { ProxyBypass } from "../../../src/netaddr/proxy-bypass.ts";
import { systemClock } from "../../../src/clock.ts";

let echo: EchoServer;
let cloud: CloudHandle;
let connector: TestConnector;
let tunnels: TestTunnel[];
const text = (s: string) => new TextEncoder().encode(s);
const listen = () => cloud.apps.echo!.listen!;

beforeAll(async () => {
  echo = startEchoServer();
  const app = {
    name: "echo",
    destinations: [{ host: "127.0.0.1", ports: String(echo.port) }],
    servers: [echo.address],
  };
  cloud = await startCloud({ log: silentLog, gateways: 2, apps: [app] });
  connector = await enrollTestConnector(cloud);
  tunnels = await Promise.all(connector.gateways.map((g) => connector.connect(g)));
  for (const t of tunnels) connector.reportHealth(t, "echo", echo.address, true);
  await untilGateways(cloud, "both gateways routing echo", (gws) =>
    gws.every((g) => g.apps.echo?.routable && g.apps.echo.listening),
  );
}, 60_000);

afterAll(async () => {
  connector?.close();
  await cloud?.stop();
  echo?.stop();
});

describe("users through the gateways", () => {
  test("cloud.json's user port carries bytes to the app and back, through both gateway processes", async () => {
    expect(listen()).toMatch(/^127\.0\.0\.1:\d+$/);
    const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => roundTrip(listen(), text(`hello ${i}`))));
    expect(answers.map((a) => new TextDecoder().decode(a))).toEqual(Array.from({ length: 24 }, (_, i) => `hello ${i}`));
    const gws = await cloud.gatewayAdmin!.describe();
    // SO_REUSEPORT spreads connections by hash: 24 all on one process has probability 2^-23.
    expect(gws.map((g) => (g.counters?.routed ?? 0) > 0)).toEqual([true, true]);
    expect(gws.reduce((n, g) => n + (g.counters?.routed ?? 0), 0)).toBe(24);
    expect(gws.every((g) => g.tunnels.length === 1 && g.tunnels[0]!.connectorId === connector.id)).toBe(true);
  });

  test("a bulk transfer keeps every byte in order (8 MiB each way, SHA-256 equal)", async () => {
    const result = await echoTransfer(listen(), 8 * 1024 * 1024, { timeoutMs: 10_000 });
    expect(result.receivedBytes).toBe(8 * 1024 * 1024);
    expect(result.receivedSha256).toBe(result.sentSha256);
  });

  test("when every connector reports the app unhealthy, users are still routed and the connector answers for itself", async () => {
    for (const t of tunnels) connector.reportHealth(t, "echo", echo.address, false);
    const gws = await untilGateways(cloud, "every gateway has the unhealthy reports", (all) =>
      all.every((g) => g.tunnels.length > 0 && g.tunnels.every((t) => t.unhealthyApps.includes("echo"))),
    );
    expect(gws.every((g) => g.apps.echo?.routable)).toBe(true);
    expect(new TextDecoder().decode(await roundTrip(listen(), text("anyone?")))).toBe("anyone?");
    for (const t of tunnels) connector.reportHealth(t, "echo", echo.address, true);
    await untilGateways(cloud, "echo routable everywhere", (g) =>
      g.every((x) => x.apps.echo?.routable && x.apps.echo.listening),
    );
  });

  test("a catalog change reaches the group's tunnels as CONFIG_CHANGED; a new app gets its own user port", async () => {
    const body = { destinations: [{ host: "127.0.0.1", ports: String(echo.port) }], servers: [echo.address] };
    const response = await adminFetch(cloud, "PUT", "/admin/apps/echo-two", body);
    const { version, listen: listenTwo } = (await response.json()) as { version: string; listen: string | null };
    expect(listenTwo).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(listenTwo).not.toBe(listen());
    await untilGateways(cloud, "CONFIG_CHANGED on both tunnels", () =>
      tunnels.every((t) => t.configChanged.includes(version)),
    );
    for (const t of tunnels) connector.reportHealth(t, "echo-two", echo.address, true);
    // Listening alone is not enough: the gateway that chose the port listens before it can route
    // and releases it only once the other routes; a user landing on it in between gets a FIN.
    await untilGateways(cloud, "echo-two routable", (g) =>
      g.every((x) => x.apps["echo-two"]?.routable && x.apps["echo-two"].listening),
    );
    expect(new TextDecoder().decode(await roundTrip(listenTwo!, text("second app")))).toBe("second app");
  });

  test("a tunnel the connector drains (GO_AWAY) gets no new streams, and its gateway gives the port to the other", async () => {
    const drained = tunnels[0]!;
    drained.tunnel.drain();
    const gws = await untilGateways(cloud, "gw-1 released echo", (g) => g[0]!.apps.echo?.listening === false);
    expect(gws[0]!.tunnels[0]!.draining).toBe(true);
    const before = gws[1]!.counters!.routed;
    await Promise.all(Array.from({ length: 8 }, () => roundTrip(listen(), text("via gw-2"))));
    const after = await cloud.gatewayAdmin!.describe();
    expect(after[1]!.counters!.routed).toBe(before + 8);
    drained.tunnel.close("replaced");
    tunnels[0] = await connector.connect(connector.gateways[0]!);
    connector.reportHealth(tunnels[0], "echo", echo.address, true);
    await untilGateways(cloud, "gw-1 serving echo again", (g) => g[0]!.apps.echo?.listening === true);
  });
});

describe("who may open a tunnel", () => {
  test("a certificate from the cloud CA for a connector the registry does not know is refused 403", async () => {
    const keys = ecKeys("prime256v1");
    const cert = cloud.state.ca.issueClientCert({
      csrPem: nativeCsr(keys),
      connectorId: "c-0000000000000000",
      group: "default",
      ttlSeconds: 3600,
    });
    const credentials = {
      certificateChainPem: cert.certPem,
      privateKeyPem: new Secret(keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString()),
      caCertificatePem: cloud.caCertPem,
    };
    const attempt = connectTunnel(cloud.gateways[0]!, {
      credentials,
      connectorVersion: "0",
      noProxy: ProxyBypass.parse([]),
      clock: systemClock,
      onOpen: () => {},
      timeoutMs: 5_000,
    });
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TunnelDialError);
    expect((error as TunnelDialError).status).toBe(403);
  });

  test("connector.v2 offered first gets connector.v1; a connector offering only unknown versions gets 426 naming v1", async () => {
    const dial = (protocols: string[]) =>
      dialTunnel({
        url: cloud.gateways[0]!.url,
        tls: {
          cert: connector.credentials.certificateChainPem,
          key: connector.credentials.privateKeyPem,
          ca: cloud.caCertPem,
        },
        protocols,
        accessToken: new Secret(token),
        connectorVersion: "0",
        timeoutMs: 5_000,
      });
    const { token } = await connector.token();
    const accepted = await dial(["connector.v2", "connector.v1"]);
    expect(accepted.protocol).toBe("connector.v1");
    accepted.transport.close();
    const error = await dial(["connector.v2"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ status: 426, supportedProtocols: ["connector.v1"] });
  });

  test("revoking a connector closes its tunnels on every gateway at once; it is refused 403 afterwards", async () => {
    const { token } = await connector.token(); // still valid after the revocation: the registry refuses
    const response = await adminFetch(cloud, "POST", `/admin/connectors/${connector.id}/revoke`);
    expect(response.status).toBe(204);
    const closed = await Promise.all(tunnels.map((t) => t.waitClosed()));
    expect(closed.map((c) => c.code)).toEqual([1008, 1008]);
    const error = await connector.connect(connector.gateways[1]!, { token }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as TunnelDialError).status).toBe(403);
    const gws = await untilGateways(cloud, "no tunnels left", (g) => g.every((x) => x.tunnels.length === 0));
    expect(gws.reduce((n, g) => n + (g.counters?.tunnelsRefused ?? 0), 0)).toBeGreaterThanOrEqual(2);
  });
});
