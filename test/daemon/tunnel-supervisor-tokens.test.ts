/**
 * The daemon's tunnel supervisor and its access tokens, against a reference gateway: every upgrade
 * carries the token, a 401 brings a fresh token that later dials use, and the tunnel is then handed
 * later tokens (TOKEN_UPDATE) without reconnecting.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createConsola } from "consola";
import { systemClock } from "../../src/clock.ts";
import { resolveSettings } from "../../src/config/settings.ts";
import { AccessTokens, type FetchedToken } from "../../src/daemon/access-tokens.ts";
import { StatusModel } from "../../src/daemon/status-model.ts";
import { createTunnelSupervisor } from "../../src/daemon/tunnel-supervisor.ts";
import type { Identity } from "../../src/identity/identity.ts";
import type { Tunnel } from "../../src/tunnel/connection.ts";
import type { Supervisor } from "../../src/tunnel/supervisor.ts";
import { startCloud, type CloudHandle } from "../cloud/cloud.ts";
import { enrollTestConnector, until, untilGateways, type TestConnector } from "../cloud/gateway/test-connector.ts";
import { silentLog } from "../cloud/test-client.ts";
import { makeIdentity } from "../identity/fixtures.ts";

let cloud: CloudHandle;
let enrolled: TestConnector;
let supervisor: Supervisor | undefined;
let tokens: AccessTokens | undefined;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 1 });
  enrolled = await enrollTestConnector(cloud, "supervised");
}, 15_000);

afterAll(async () => {
  supervisor?.stop();
  tokens?.stop();
  enrolled?.close();
  await cloud?.stop();
});

test("a 401 at the upgrade brings a fresh token that the next dials use; the tunnel then takes TOKEN_UPDATEs", async () => {
  const identity: Identity = {
    ...makeIdentity(enrolled.id),
    group: enrolled.group,
    certificate: enrolled.clientCert.cert,
    chain: [],
    privateKeyPem: enrolled.credentials.privateKeyPem,
    caCertificate: cloud.caCertPem,
    controlUrl: cloud.controlUrl,
    gateways: [...enrolled.gateways],
  };
  const lines: string[] = [];
  const log = createConsola({ level: 999, reporters: [{ log: (e) => void lines.push(JSON.stringify(e.args)) }] });
  let fetches = 0;
  const fetch = async (): Promise<FetchedToken> => {
    fetches++;
    // The first token is one the gateway cannot verify (as after a cloud key rotation): 401.
    if (fetches === 1) return { token: "v1.e30.AAAA", expiresAt: new Date(Date.now() + 600_000).toISOString(), expiresIn: 600, certificate: identity.certificate };
    return { ...(await enrolled.token()), certificate: identity.certificate };
  };
  tokens = new AccessTokens({ clock: systemClock, log, fetch, onRevoked: () => {} });
  tokens.start();
  const tunnels = new Map<number, Tunnel>();
  const { settings } = resolveSettings({ flags: { "state-dir": "/nonexistent", tunnels: "1" }, env: {}, envFile: "/nonexistent/env", isTTY: false });
  supervisor = createTunnelSupervisor({
    identity: () => identity,
    settings,
    log,
    clock: systemClock,
    status: new StatusModel(identity),
    tunnels,
    health: () => undefined,
    onOpen: () => {},
    refreshCatalog: () => {},
    stopping: () => false,
    tokens,
  });
  supervisor.start();

  const tunnel = await until("the tunnel up with a fresh token", () => tunnels.get(0), 10_000);
  expect(fetches).toBe(2);
  expect(lines.some((l) => l.includes("tunnel down") && l.includes("did not accept our credentials"))).toBe(true);
  expect(lines.join("\n")).not.toContain("v1.e30.AAAA");

  // A refresh reaches the open tunnel as TOKEN_UPDATE: the gateway moves its expiry, no reconnect.
  tokens.rejected(await tokens.forDial(identity.certificate)); // the quickest way to make it fetch (a 401 asks for a refresh)
  const gws = await untilGateways(cloud, "the gateway to take a TOKEN_UPDATE", (g) => g[0]!.tunnels.some((t) => t.connectorId === enrolled.id && t.tokenUpdates === 1));
  expect(gws[0]!.counters!.tunnelsAccepted).toBe(1);
  expect(tunnels.get(0)).toBe(tunnel);
}, 20_000);
