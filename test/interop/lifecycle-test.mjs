// @ts-check
/**
 * A tunnel's life between the compiled connector and the interop gateway: the gateway drains it
 * (GO_AWAY, PROTOCOL §5.7, also in the same read as the 101), the connector stops (its GO_AWAY and close
 * code), the gateway goes silent (§5.6: TUNNEL_DEAD), and access tokens (§5.8: TOKEN_UPDATE before
 * expiry, GO_AWAY AUTH_EXPIRED). The cloud issues 10-second tokens here so a refresh comes quickly.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertClean, assertGoodRequest, logLines } from "./checks.mjs";
import { CODE, encode, GO_AWAY, T } from "./gateway/codec.mjs";
import { tokenClaims } from "./gateway/token.mjs";
import { startInterop } from "./harness.mjs";

const TOKEN_TTL_SECONDS = 10;

/** @type {import("./harness.mjs").Interop} */
let h;
before(async () => {
  h = await startInterop({ tokenTtlSeconds: TOKEN_TTL_SECONDS });
});
after(() => h?.stop());

/** @param {import("./gateway/tunnel.mjs").Tunnel} tunnel */
async function openEcho(tunnel) {
  const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
  assert.equal((await s.opened()).code, CODE.OK);
  return s;
}

describe("drain, stop, silence, tokens", { concurrency: true }, () => {
  test("the gateway's GO_AWAY: streams finish, OPEN gets BUSY, a new tunnel, the drained one closed 1000", () =>
    h.scenario("lc-drain", "lc-drain", async () => {
      const c = h.startConnector("lc-drain");
      const tunnel = await h.gateway.tunnel(c.name);
      const s = await openEcho(tunnel);
      tunnel.send(encode.goAway(GO_AWAY.DRAINING, "gateway restarting"));
      const replacement = await h.gateway.tunnel(c.name, 2);
      assertGoodRequest(replacement.dial);
      await s.write(Buffer.from("still here"));
      assert.equal((await s.readBytes(10)).toString(), "still here", "the open stream keeps working");
      const late = await tunnel.open("echo", "127.0.0.1", h.apps.ports.echo).opened();
      assert.equal(late.code, CODE.BUSY, "an OPEN after our GO_AWAY is answered BUSY");
      s.fin();
      await s.readToEnd();
      const closed = await tunnel.closed();
      assert.deepEqual([closed.initiator, closed.code], ["connector", 1000], "closed by the connector once idle");
      assert.equal((await openEcho(replacement)).state, "open");
      assertClean(tunnel, replacement);
    }));

  test("a GO_AWAY in the same read as the 101 counts like any other", () =>
    h.scenario("lc-drain-101", "lc-drain-101", async () => {
      h.gateway.onAccept.set("lc-drain-101", (t) => t.send(encode.goAway(GO_AWAY.DRAINING, "at once")));
      const c = h.startConnector("lc-drain-101");
      const tunnel = await h.gateway.tunnel(c.name);
      h.gateway.onAccept.delete(c.name);
      const closed = await tunnel.closed();
      assert.deepEqual([closed.initiator, closed.code], ["connector", 1000]);
      const next = await h.gateway.tunnel(c.name, 2);
      // §5.7: a GO_AWAY within 10 s of the upgrade counts as a failed connection for the backoff.
      const [down] = logLines(c, "tunnel down");
      assert.match(down?.error ?? "", /GO_AWAY/);
      assert.ok(
        down.retryInMs <= 1000 && next.dial.at >= Date.parse(down.time) + down.retryInMs - 5,
        "waited the backoff",
      );
      await next.ping();
      assertClean(tunnel, next);
    }));

  test("a GO_AWAY with a code from the future drains like any other (read as INTERNAL)", () =>
    h.scenario("lc-drain-code", "lc-drain-code", async () => {
      const c = h.startConnector("lc-drain-code");
      const tunnel = await h.gateway.tunnel(c.name);
      tunnel.send(encode.goAway(77, "a code from the future"));
      const next = await h.gateway.tunnel(c.name, 2);
      const closed = await tunnel.closed();
      assert.deepEqual([closed.initiator, closed.code], ["connector", 1000], "drained, then closed once idle");
      await next.ping();
      assertClean(tunnel, next);
    }));

  test("the connector stops: GO_AWAY DRAINING, open streams finish, close 1000, exit 0", () =>
    h.scenario("lc-stop", "lc-stop", async () => {
      const c = h.startConnector("lc-stop", { gracePeriod: 20 });
      const tunnel = await h.gateway.tunnel(c.name);
      const s = await openEcho(tunnel);
      c.proc.kill("SIGTERM");
      const goAway = await tunnel.waitFrame((f) => f.type === T.GO_AWAY, "the connector's GO_AWAY");
      assert.equal(goAway.code, GO_AWAY.DRAINING);
      await s.write(Buffer.from("last words"));
      assert.equal((await s.readBytes(10)).toString(), "last words", "a stream open at the stop finishes");
      s.fin();
      await s.readToEnd();
      const closed = await tunnel.closed();
      assert.deepEqual([closed.initiator, closed.code], ["connector", 1000]);
      assert.equal(await c.exited, 0);
      assertClean(tunnel);
    }));

  test("the connector stops with a stream still open: it closes 1000 when the grace period ends", () =>
    h.scenario("lc-stop-grace", "lc-stop-grace", async () => {
      const c = h.startConnector("lc-stop-grace", { gracePeriod: 1 });
      const tunnel = await h.gateway.tunnel(c.name);
      await openEcho(tunnel);
      c.proc.kill("SIGTERM");
      await tunnel.waitFrame((f) => f.type === T.GO_AWAY && f.code === GO_AWAY.DRAINING, "GO_AWAY DRAINING");
      const closed = await tunnel.closed();
      assert.equal(closed.initiator, "connector");
      assert.equal(closed.code, 1000, `PROTOCOL §5.7: 1000 when the grace period ends (reason "${closed.reason}")`);
      assert.equal(await c.exited, 0);
      assertClean(tunnel);
    }));

  test("a gateway that falls silent: the connector closes 1001 TUNNEL_DEAD after 3 heartbeats, and redials", () =>
    h.scenario("lc-silent", "lc-silent", async () => {
      const c = h.startConnector("lc-silent");
      const tunnel = await h.gateway.tunnel(c.name);
      tunnel.autoPong = false; // from now on the gateway sends nothing at all
      const closed = await tunnel.closed(60_000); // the event comes after three 10 s heartbeats
      assert.deepEqual([closed.initiator, closed.code, closed.reason], ["connector", 1001, "TUNNEL_DEAD"]);
      const pings = tunnel.frames.filter((f) => f.type === T.PING);
      assert.ok(pings.length >= 3, `it kept pinging while waiting (${pings.length} PINGs)`);
      const next = await h.gateway.tunnel(c.name, 2);
      await next.ping();
      assertClean(tunnel, next);
    }));

  test("TOKEN_UPDATE: a fresh token bound to the same certificate arrives before the old one expires", () =>
    h.scenario("lc-token", "lc-token", async () => {
      const c = h.startConnector("lc-token");
      const tunnel = await h.gateway.tunnel(c.name);
      const first = tokenClaims(tunnel.dial.token ?? "");
      const update = await tunnel.waitFrame((f) => f.type === T.TOKEN_UPDATE, "TOKEN_UPDATE", {
        timeoutMs: TOKEN_TTL_SECONDS * 2000,
      });
      // The tunnel checked it against the certificate (a bad one is a violation, and closes 1008).
      const next = tokenClaims(update.token ?? "");
      assert.ok(next.exp > first.exp, "a later expiry");
      assert.ok((update.at ?? 0) < first.exp * 1000, "sent before the previous token expired");
      assert.equal(tunnel.closeInfo, undefined, "the tunnel stays (no reconnect for a new token)");
      await tunnel.ping();
      assertClean(tunnel);
    }));

  test("GO_AWAY AUTH_EXPIRED and close 1008: the connector comes back with a valid token", () =>
    h.scenario("lc-auth-expired", "lc-auth-expired", async () => {
      const c = h.startConnector("lc-auth-expired");
      const tunnel = await h.gateway.tunnel(c.name);
      tunnel.send(encode.goAway(GO_AWAY.AUTH_EXPIRED, "token expired"));
      await tunnel.ping();
      tunnel.close(1008, "AUTH_EXPIRED");
      const closed = await tunnel.closed();
      assert.equal(closed.code, 1008, "the connector answered our close");
      const next = await h.gateway.tunnel(c.name, 2); // accepted: its token verified against its certificate
      await next.ping();
      assertClean(tunnel, next);
    }));
});
