/**
 * POST /admin/refuse-version through real gateway processes: a tunnel upgrade whose X-Connector-Version
 * is refused gets 403 from every gateway (also one restarted afterwards), other versions and tunnels
 * already open are untouched, and DELETE lifts it. This is how an upgrade test makes a release whose
 * tunnels never come up.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TunnelDialError } from "../../../src/transport/websocket/errors.ts";
import { startCloud, type CloudHandle } from "../cloud.ts";
import { adminFetch, silentLog } from "../test-client.ts";
import { enrollTestConnector, type TestConnector } from "./test-connector.ts";

let cloud: CloudHandle;
let connector: TestConnector;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 2 });
  connector = await enrollTestConnector(cloud, "refuse-version");
}, 60_000);

afterAll(async () => {
  connector?.close();
  await cloud?.stop();
});

const dialError = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as TunnelDialError,
  );
const refusedCount = async () =>
  (await cloud.gatewayAdmin!.describe()).reduce((n, g) => n + (g.counters?.tunnelsRefused ?? 0), 0);

describe("refuse-version", () => {
  test("every gateway answers 403 to the refused version only, until it is lifted", async () => {
    const open = await connector.connect(cloud.gateways[0]!, { connectorVersion: "1.5.0" });

    const refused = await adminFetch(cloud, "POST", "/admin/refuse-version", { version: "1.5.0" });
    expect(refused.status).toBe(200);
    expect(await refused.json()).toEqual({ refused: ["1.5.0"] });
    const before = await refusedCount();
    for (const gateway of cloud.gateways) {
      const error = await dialError(connector.connect(gateway, { connectorVersion: "1.5.0" }));
      expect(error?.status).toBe(403);
    }
    expect(await refusedCount()).toBe(before + 2);
    // Another version still gets in, and the tunnel opened before the refusal stays up.
    (await connector.connect(cloud.gateways[1]!, { connectorVersion: "1.4.0" })).tunnel.close("done");
    expect(open.closed).toBeUndefined();

    // A gateway started after the refusal refuses too.
    await cloud.gatewayAdmin!.restart("gw-2");
    expect((await dialError(connector.connect(cloud.gateways[1]!, { connectorVersion: "1.5.0" })))?.status).toBe(403);

    const lifted = await adminFetch(cloud, "DELETE", "/admin/refuse-version", { version: "1.5.0" });
    expect(await lifted.json()).toEqual({ refused: [] });
    for (const gateway of cloud.gateways)
      (await connector.connect(gateway, { connectorVersion: "1.5.0" })).tunnel.close("done");
    open.tunnel.close("done");
  }, 30_000);

  test("DELETE without a version lifts every refusal; a body that is not a version is refused 400", async () => {
    await adminFetch(cloud, "POST", "/admin/refuse-version", { version: "2.0.0" });
    await adminFetch(cloud, "POST", "/admin/refuse-version", { version: "2.0.1-rc.1" });
    expect(await (await adminFetch(cloud, "GET", "/admin/refuse-version")).json()).toEqual({
      refused: ["2.0.0", "2.0.1-rc.1"],
    });
    expect(await (await adminFetch(cloud, "DELETE", "/admin/refuse-version")).json()).toEqual({ refused: [] });
    expect((await adminFetch(cloud, "POST", "/admin/refuse-version", { version: "latest" })).status).toBe(400);
    expect((await adminFetch(cloud, "POST", "/admin/refuse-version", {})).status).toBe(400);
  });

  test("a cloud started without --releases answers 404 to the release endpoints", async () => {
    expect((await adminFetch(cloud, "POST", "/admin/releases/misbehave", { mode: "none" })).status).toBe(404);
    expect((await adminFetch(cloud, "GET", "/admin/releases")).status).toBe(404);
  });
});
