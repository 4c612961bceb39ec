/**
 * The daemon's tunnel supervisor and its access tokens, against a reference gateway: every upgrade
 * carries the token, a 401 brings a fresh token that later dials use, and the tunnel is then handed
 * later tokens (TOKEN_UPDATE) without reconnecting.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createConsola } from "consola";
import { systemClock } from "../../src/clock.ts";
import { resolveSettings } from "../../src/config/settings.ts";
import type { Gateway } from "../../src/control/api.ts";
import { ConnectionRefusedError } from "../../src/control/errors.ts";
import { AccessTokens, type FetchedToken } from "../../src/daemon/access-tokens.ts";
import { StatusModel } from "../../src/daemon/status-model.ts";
import { createTunnelSupervisor } from "../../src/daemon/tunnel-supervisor.ts";
import { tunnelEventsToStatus } from "../../src/daemon/tunnel-events.ts";
import { logEvents } from "../../src/daemon/event-log.ts";
import { DaemonEvents } from "../../src/daemon/events.ts";
import { connectTunnel, type Tunnel } from "../../src/supervisor/connection.ts";
import type { Identity } from "../../src/identity/identity.ts";
import type { Supervisor } from "../../src/supervisor/supervisor.ts";
import { startCloud, type CloudHandle } from "../cloud/cloud.ts";
import { enrollTestConnector, until, type TestConnector } from "../cloud/gateway/test-connector.ts";
import { silentLog } from "../cloud/test-client.ts";
import { makeIdentity } from "../identity/fixtures.ts";

let cloud: CloudHandle;
let enrolled: TestConnector;
let supervisor: Supervisor<Tunnel> | undefined;
let tokens: AccessTokens | undefined;
let hostile: ReturnType<typeof Bun.serve> | undefined;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 1 });
  enrolled = await enrollTestConnector(cloud, "supervised");
}, 15_000);

afterAll(async () => {
  supervisor?.stop();
  tokens?.stop();
  void hostile?.stop(true);
  enrolled?.close();
  await cloud?.stop();
});

/** A supervisor of `count` tunnels over `gateways`, with its token schedule, logging into `lines`. */
function supervise(gateways: Gateway[], count: number, fetch: (identity: Identity) => Promise<FetchedToken>) {
  const identity: Identity = {
    ...makeIdentity(enrolled.id),
    group: enrolled.group,
    certificate: enrolled.clientCert.cert,
    chain: [],
    privateKeyPem: enrolled.credentials.privateKeyPem,
    caCertificate: cloud.caCertPem,
    controlUrl: cloud.controlUrl,
    gateways,
  };
  const lines: string[] = [];
  const log = createConsola({ level: 999, reporters: [{ log: (e) => void lines.push(JSON.stringify(e.args)) }] });
  tokens = new AccessTokens({ clock: systemClock, log, fetch: () => fetch(identity), onRevoked: () => {} });
  tokens.start();
  const { settings } = resolveSettings({
    flags: { "state-dir": "/nonexistent", tunnels: String(count) },
    env: {},
    envFile: "/nonexistent/env",
    isTTY: false,
  });
  const status = new StatusModel(identity);
  const daemonEvents = new DaemonEvents();
  daemonEvents.subscribe(logEvents({ log, summary: () => status.summary() }));
  const events = tunnelEventsToStatus({ status, events: daemonEvents, clock: systemClock, stopping: () => false });
  const created = createTunnelSupervisor(
    {
      identity: () => identity,
      settings,
      log,
      clock: systemClock,
      random: Math.random,
      connect: connectTunnel,
      status,
      health: () => undefined,
      onOpen: () => {},
      refreshCatalog: () => {},
      gatewayRefused: () => {},
      tokens,
    },
    events,
  );
  supervisor = created;
  created.start();
  // The supervisor is the one that knows the live tunnels: the test asks it, as the daemon does.
  const tunnels = { get: (slot: number) => created.tunnel(slot), values: () => created.tunnels().values() };
  return { identity, lines, tunnels, tokens, supervisor };
}

test("a 401 at the upgrade brings a fresh token that the next dials use; the tunnel then takes TOKEN_UPDATEs", async () => {
  let fetches = 0;
  const { identity, lines, tunnels, tokens } = supervise([...enrolled.gateways], 1, async (identity) => {
    fetches++;
    // The first token is one the gateway cannot verify (as after a cloud key rotation): 401.
    if (fetches === 1)
      return {
        token: "v1.e30.AAAA",
        expiresAt: new Date(Date.now() + 600_000).toISOString(),
        expiresIn: 600,
        certificate: identity.certificate,
      };
    return { ...(await enrolled.token()), certificate: identity.certificate };
  });

  const tunnel = await until("the tunnel up with a fresh token", () => tunnels.get(0), 10_000);
  expect(fetches).toBe(2);
  expect(lines.some((l) => l.includes("tunnel down") && l.includes("did not accept our credentials"))).toBe(true);
  expect(lines.join("\n")).not.toContain("v1.e30.AAAA");

  // A refresh reaches the open tunnel as TOKEN_UPDATE: the gateway moves its expiry, no reconnect.
  tokens.rejected(await tokens.forDial(identity.certificate)); // the quickest way to make it fetch (a 401 asks for a refresh)
  // A 401 refresh comes at most every REJECTED_REFRESH_INTERVAL_MS (plus jitter): wait with room.
  const gws = await until(
    "the gateway to take a TOKEN_UPDATE",
    async () => {
      const g = await cloud.gatewayAdmin!.describe();
      return g[0]!.tunnels.some((t) => t.connectorId === enrolled.id && t.tokenUpdates === 1) ? g : undefined;
    },
    30_000,
  );
  expect(gws[0]!.counters!.tunnelsAccepted).toBe(1);
  expect(tunnels.get(0)).toBe(tunnel);
}, 40_000);

test("a hostile gateway's 401s do not stop dials to an honest one while the control plane is down; refreshes stay on the backoff", async () => {
  supervisor?.stop();
  tokens?.stop();
  const serverCert = cloud.state.ca.issueServerCert();
  let refusals = 0;
  hostile = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: serverCert.certPem, key: serverCert.keyPem },
    fetch: () => {
      refusals++;
      return new Response("invalid token", {
        status: 401,
        headers: { "WWW-Authenticate": 'Bearer error="invalid_token"' },
      });
    },
  });
  const honest = enrolled.gateways[0]!;
  const fetchTimes: number[] = [];
  // One good token, then the control plane is out of reach.
  const run = supervise(
    [honest, { id: "hostile", url: `wss://127.0.0.1:${hostile.port}/v1/tunnel` }],
    2,
    async (identity) => {
      fetchTimes.push(Date.now());
      if (fetchTimes.length > 1) throw new ConnectionRefusedError("127.0.0.1", "ECONNREFUSED");
      return { ...(await enrolled.token()), certificate: identity.certificate };
    },
  );
  const onHonest = () => [...run.tunnels.values()].find((t) => t.gateway.id === honest.id);
  const first = await until("a tunnel on the honest gateway", onHonest, 15_000);
  await until(
    "a 401 from the hostile gateway and the failed refresh it asked for",
    () => (refusals >= 1 && fetchTimes.length >= 2 ? true : undefined),
    15_000,
  );
  const accepted = (await cloud.gatewayAdmin!.describe()).find((g) => g.id === honest.id)!.counters!.tunnelsAccepted;
  // The honest gateway's tunnel drops: its slot redials with the token still held, as no refresh can succeed.
  first.close("test: dropped");
  await until(
    "a new tunnel on the honest gateway",
    () => {
      const next = onHonest();
      return next !== undefined && next !== first ? next : undefined;
    },
    15_000,
  );
  const gws = await cloud.gatewayAdmin!.describe();
  expect(gws.find((g) => g.id === honest.id)!.counters!.tunnelsAccepted).toBe(accepted + 1);
  // However many 401s came, the refreshes followed the failure backoff (1 s doubling, full jitter, ≥ 250 ms apart).
  for (let i = 2; i < fetchTimes.length; i++) expect(fetchTimes[i]! - fetchTimes[i - 1]!).toBeGreaterThanOrEqual(240);
}, 45_000);
