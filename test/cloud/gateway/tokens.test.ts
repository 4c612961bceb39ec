/**
 * Access tokens at the reference gateways (docs/PROTOCOL.md §4, §5.8), with an 8-second token lifetime (long enough that a busy machine's delays do not outlast a token):
 * the upgrade needs a token bound to the presented certificate (401 otherwise), TOKEN_UPDATE moves a
 * tunnel's expiry without reconnecting, an unverifiable TOKEN_UPDATE closes the tunnel, and a tunnel
 * whose token runs out gets GO_AWAY AUTH_EXPIRED and is closed: also when the connector was revoked and
 * no gateway was told.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Secret } from "../../../src/secret.ts";
import { GoAwayCode } from "../../../src/mux/const.ts";
import type { TunnelDialError } from "../../../src/transport/websocket/errors.ts";
import { startCloud, type CloudHandle } from "../cloud.ts";
import { adminFetch, controlFetch, refusal, silentLog } from "../test-client.ts";
import { enrollTestConnector, until, untilGateways, type TestConnector } from "./test-connector.ts";

const TTL_SECONDS = 8;
let cloud: CloudHandle;
let alice: TestConnector;
let bob: TestConnector;

beforeAll(async () => {
  cloud = await startCloud({ log: silentLog, gateways: 1, tokenTtlSeconds: TTL_SECONDS });
  [alice, bob] = await Promise.all([enrollTestConnector(cloud, "alice"), enrollTestConnector(cloud, "bob")]);
}, 60_000);

afterAll(async () => {
  alice?.close();
  bob?.close();
  await cloud?.stop();
});

const gateway = () => cloud.gateways[0]!;
const dialError = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as TunnelDialError,
  );
/** The gateway's view of the connector's one tunnel, once there is exactly one. */
const gatewayTunnel = async (connectorId: string) => {
  const gws = await untilGateways(
    cloud,
    `one tunnel of ${connectorId}`,
    (g) => g[0]!.tunnels.filter((t) => t.connectorId === connectorId).length === 1,
  );
  return gws[0]!.tunnels.find((t) => t.connectorId === connectorId)!;
};
const counters = async () => (await cloud.gatewayAdmin!.describe())[0]!.counters!;
const waitUntil = (ms: number) =>
  until(
    `the clock to pass ${new Date(ms).toISOString()}`,
    () => (Date.now() > ms ? true : undefined),
    ms - Date.now() + 5_000,
  );

describe("the upgrade", () => {
  test("is refused 401 without a token, with garbage, and with another connector's token", async () => {
    const before = (await counters()).tunnelsRefused;
    expect((await dialError(alice.connect(gateway(), { token: null })))?.status).toBe(401);
    expect((await dialError(alice.connect(gateway(), { token: "v1.e30.AAAA" })))?.status).toBe(401);
    const bobs = (await bob.token()).token;
    expect((await dialError(alice.connect(gateway(), { token: bobs })))?.status).toBe(401);
    expect((await counters()).tunnelsRefused).toBe(before + 3);
    // Bob's own token does open a tunnel for Bob.
    const tunnel = await bob.connect(gateway(), { token: bobs });
    tunnel.tunnel.close("done");
    await tunnel.waitClosed();
  });
});

describe("on an open tunnel", () => {
  test("a valid TOKEN_UPDATE carries it past its first token's expiry; without another it gets GO_AWAY AUTH_EXPIRED and is closed", async () => {
    const tunnel = await alice.connect(gateway());
    const first = Date.parse((await gatewayTunnel(alice.id)).tokenExpiresAt);
    const updatesBefore = (await counters()).tokenUpdates;
    await waitUntil(first - (TTL_SECONDS * 1000) / 2); // half a life later: the next token expires later than the first
    const next = await alice.token();
    expect(Date.parse(next.expiresAt)).toBeGreaterThan(first);
    tunnel.tunnel.session.sendTokenUpdate(new Secret(next.token));
    const moved = await until("the gateway to take the update", async () => {
      const info = await gatewayTunnel(alice.id);
      return info.tokenUpdates === 1 ? info : undefined;
    });
    expect(moved.tokenExpiresAt).toBe(next.expiresAt);
    expect((await counters()).tokenUpdates).toBe(updatesBefore + 1);

    await waitUntil(first + 500);
    expect(tunnel.closed).toBeUndefined();
    expect(tunnel.goAways).toEqual([]);

    const closed = await until(
      "the tunnel to close after its token expired",
      () => tunnel.closed,
      TTL_SECONDS * 1000 + 5_000,
    );
    expect(tunnel.goAways).toEqual([GoAwayCode.AUTH_EXPIRED]);
    expect(closed).toMatchObject({ code: 1008, reason: "AUTH_EXPIRED" });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(next.expiresAt));
    expect((await counters()).tunnelsExpired).toBeGreaterThanOrEqual(1);
  }, 60_000);

  test("a TOKEN_UPDATE that does not verify with this tunnel's certificate closes the tunnel", async () => {
    const refusedBefore = (await counters()).tokenUpdatesRefused;
    for (const bad of [(await bob.token()).token, "v1.e30.AAAA"]) {
      const tunnel = await alice.connect(gateway());
      tunnel.tunnel.session.sendTokenUpdate(new Secret(bad));
      expect(await tunnel.waitClosed()).toMatchObject({ code: 1008, reason: "TOKEN_INVALID" });
    }
    expect((await counters()).tokenUpdatesRefused).toBe(refusedBefore + 2);
  });
});

describe("revocation the gateways never hear of", () => {
  test("the control plane refuses the next token and the tunnel ends when its token expires", async () => {
    const carol = await enrollTestConnector(cloud, "carol");
    try {
      const tunnel = await carol.connect(gateway());
      const expiresAt = Date.parse((await gatewayTunnel(carol.id)).tokenExpiresAt);
      const revokedAt = Date.now();
      const revoke = await adminFetch(cloud, "POST", `/admin/connectors/${carol.id}/revoke`, { notifyGateways: false });
      expect(revoke.status).toBe(204);
      const answer = await controlFetch(cloud, "/v1/token", { method: "POST", clientCert: carol.clientCert });
      expect(await refusal(answer)).toBe("403 CONNECTOR_REVOKED");
      // Still open: nobody told the gateway. Its token is all that keeps it.
      expect(tunnel.closed).toBeUndefined();
      const closed = await until(
        "the revoked connector's tunnel to close",
        () => tunnel.closed,
        TTL_SECONDS * 1000 + 5_000,
      );
      const closedAt = Date.now();
      expect(tunnel.goAways).toEqual([GoAwayCode.AUTH_EXPIRED]);
      expect(closed).toMatchObject({ code: 1008, reason: "AUTH_EXPIRED" });
      expect(closedAt).toBeGreaterThanOrEqual(expiresAt); // ended by the token's expiry, nothing earlier
      console.log(
        `revoked (gateways not told) -> tunnel closed in ${closedAt - revokedAt} ms (token TTL ${TTL_SECONDS} s)`,
      );
    } finally {
      carol.close();
    }
  }, 60_000);
});
