/**
 * Tunnels and control-plane requests through an HTTP CONNECT proxy with basic auth, and straight
 * past it for a destination in the bypass list. The proxy's password never appears in any output.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, startDaemon } from "../support/daemon-process.ts";
import { roundTrip, startEchoServer, type EchoServer } from "../support/apps.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";

const PASSWORD = "pr0xy-s3cret-value";
let echo: EchoServer;
let cloud: CloudProcess;
let proxy: ConnectProxy;

beforeAll(async () => {
  echo = startEchoServer();
  proxy = startConnectProxy({ auth: { username: "ops", password: PASSWORD } });
  cloud = await startCloud({ gateways: 2, apps: [`echo=${echo.address}`] });
}, 120_000);

afterAll(async () => {
  await cloud?.stop();
  proxy?.stop();
  echo?.stop();
}, 30_000);

const portOf = (url: string) => new URL(url).port;

test("every tunnel goes through the CONNECT proxy with basic auth, and users get through", async () => {
  const before = proxy.targets.length;
  const daemon = await startDaemon({ key: cloud.provisioningKey, extraArgs: ["--proxy", proxy.urlWithAuth()] });
  try {
    await daemon.waitFor("connected", allTunnelsUp(2));
    const targets = proxy.targets.slice(before).map((t) => t.split(":").at(-1));
    for (const gateway of cloud.gateways) expect(targets).toContain(portOf(gateway.url));
    expect(targets).toContain(portOf(cloud.controlUrl));
    expect(
      new TextDecoder().decode(await roundTrip(cloud.apps.echo!.listen!, new TextEncoder().encode("via proxy"))),
    ).toBe("via proxy");
  } finally {
    await daemon.stop(5_000);
  }
  expect(daemon.output()).not.toContain(PASSWORD);
}, 60_000);

test("a gateway in the bypass list is reached directly, the other through the proxy", async () => {
  const [direct, proxied] = cloud.gateways;
  const before = proxy.targets.length;
  const daemon = await startDaemon({
    key: cloud.provisioningKey,
    extraArgs: ["--proxy", proxy.urlWithAuth(), "--no-proxy", `127.0.0.1:${portOf(direct!.url)}`],
  });
  try {
    await daemon.waitFor("connected", allTunnelsUp(2));
    const targets = proxy.targets.slice(before).map((t) => t.split(":").at(-1));
    expect(targets).not.toContain(portOf(direct!.url));
    expect(targets).toContain(portOf(proxied!.url));
  } finally {
    await daemon.stop(5_000);
  }
  expect(daemon.output()).not.toContain(PASSWORD);
}, 60_000);
