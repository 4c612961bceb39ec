// @ts-check
/**
 * Every frame type of PROTOCOL §5.2 between the compiled connector and the interop gateway, with the
 * loopback apps of the reference cloud's catalog behind the connector: OPEN and its results (§5.3),
 * DATA and FIN both ways (§5.4), RESET both ways, PING/PONG (§5.6), HEALTH_REPORT (§5.9) and
 * CONFIG_CHANGED (§5.10). Drain, shutdown, liveness and tokens are in lifecycle-test.mjs.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertClean } from "./checks.mjs";
import { CODE, encode, frame, T } from "./gateway/codec.mjs";
import { startInterop } from "./harness.mjs";

/** One connector serves every scenario here: none of them closes its tunnel, each uses its own streams. */
const SHARED = "frames";

/** @type {import("./harness.mjs").Interop} */
let h;
/** @type {import("./gateway/tunnel.mjs").Tunnel} */
let shared;
before(async () => {
  h = await startInterop();
  h.startConnector(SHARED);
  shared = await h.gateway.tunnel(SHARED);
});
after(() => h?.stop());

const tunnelOf = async (/** @type {string} */ _scenario) => shared;

describe("frames", { concurrency: true }, () => {
  test("OPEN → OPEN_RESULT OK, DATA both ways, FIN both ways", () =>
    h.scenario("fr-echo", SHARED, async () => {
      const tunnel = await tunnelOf("fr-echo");
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      const result = await s.opened();
      assert.deepEqual([result.code, result.message], [CODE.OK, ""]);
      const payload = Buffer.concat([Buffer.alloc(70_000, "x"), Buffer.from("end")]);
      await s.write(payload, { maxFrame: 16 * 1024 });
      s.fin(); // the echo app half-closes after our FIN: the connector must pass both EOFs on
      assert.ok((await s.readToEnd()).equals(payload));
      assert.equal(s.state, "closed");
      // A second stream on the same tunnel gets the next id and works too.
      const s2 = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s2.opened()).code, CODE.OK);
      await s2.write(Buffer.from("again"));
      assert.equal((await s2.readBytes(5)).toString(), "again");
      assertClean(tunnel);
    }));

  test("OPEN_RESULT refusals carry the §5.3 codes; the tunnel stays up", () =>
    h.scenario("fr-refusals", SHARED, async () => {
      const tunnel = await tunnelOf("fr-refusals");
      const { echo, closed } = h.apps.ports;
      const cases = /** @type {[string, string, number, number][]} */ ([
        ["closed", "127.0.0.1", closed, CODE.REFUSED], // in the catalog, nobody listens
        ["echo", "127.0.0.1", echo + 1, CODE.NOT_ALLOWED], // a port the catalog does not list
        ["echo", "10.9.8.7", echo, CODE.NOT_ALLOWED], // a host the catalog does not list
        ["no-such-app", "127.0.0.1", echo, CODE.NOT_ALLOWED],
        ["echo", "127.1", echo, CODE.NOT_ALLOWED], // §5.2: not an IP literal, and not a host name either
        ["echo", "0x7f000001", echo, CODE.NOT_ALLOWED],
      ]);
      for (const [app, host, port, code] of cases) {
        const result = await tunnel.open(app, host, port).opened();
        assert.equal(result.type, T.OPEN_RESULT, `${app} ${host}:${port} answered OPEN_RESULT`);
        assert.equal(result.code, code, `${app} ${host}:${port}: ${result.message}`);
      }
      assert.equal((await tunnel.open("echo", "127.0.0.1", echo).opened()).code, CODE.OK);
      await tunnel.ping();
      assertClean(tunnel);
    }));

  test("the gateway's RESET closes the app connection; the id is then unknown (RESET PROTOCOL)", () =>
    h.scenario("fr-reset-in", SHARED, async () => {
      const tunnel = await tunnelOf("fr-reset-in");
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s.opened()).code, CODE.OK);
      await s.write(Buffer.from("ping"));
      await s.readBytes(4);
      s.reset(CODE.CANCELLED, "user went away");
      // §5.4: DATA for a stream the connector no longer knows draws RESET PROTOCOL; the tunnel stays up.
      const since = tunnel.frames.length;
      tunnel.send(encode.data(s.id, Buffer.from("late")));
      const answer = await tunnel.waitFrame((f) => f.type === T.RESET && f.streamId === s.id, "RESET for the dead id", {
        since,
      });
      assert.equal(answer.code, CODE.PROTOCOL);
      await tunnel.ping();
      assertClean(tunnel);
    }));

  test("WINDOW_UPDATE while opening is allowed; RESET while opening ends the stream, no OPEN_RESULT follows", () =>
    h.scenario("fr-opening", SHARED, async () => {
      const tunnel = await tunnelOf("fr-opening");
      const grown = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo, {
        extraFrames: [encode.windowUpdate(tunnel.lastStreamId + 1, 1000)], // §5.4: allowed while opening
      });
      const cancelled = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo, {
        extraFrames: [encode.reset(tunnel.lastStreamId + 1, CODE.CANCELLED, "changed my mind")],
      });
      cancelled.resetSent = true; // an OPEN_RESULT for it now would be a violation (the tunnel checks)
      cancelled.state = "closed";
      assert.equal((await grown.opened()).code, CODE.OK);
      await grown.write(Buffer.from("round trip"));
      await grown.readBytes(10);
      await tunnel.ping();
      assert.deepEqual(
        tunnel.frames.filter((f) => f.streamId === cancelled.id),
        [],
        "nothing for the stream we reset while it was opening",
      );
      assertClean(tunnel);
    }));

  test("a RESET with an unknown code, and one for an unknown stream, are taken quietly", () =>
    h.scenario("fr-reset-odd", SHARED, async () => {
      const tunnel = await tunnelOf("fr-reset-odd");
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s.opened()).code, CODE.OK);
      s.reset(200, "a code from the future"); // §5.3: read as INTERNAL
      const since = tunnel.frames.length;
      tunnel.send(encode.reset(77, CODE.CANCELLED)); // §5.4: a RESET for an unknown id is ignored
      await tunnel.ping();
      await tunnel.ping();
      assert.deepEqual(
        tunnel.frames.slice(since).filter((f) => f.streamId === 77 || f.streamId === s.id),
        [],
        "nothing answers either RESET",
      );
      assert.equal((await tunnel.open("echo", "127.0.0.1", h.apps.ports.echo).opened()).code, CODE.OK);
      assertClean(tunnel);
    }));

  test("an app that resets its connection: the connector sends RESET CANCELLED for the stream", () =>
    h.scenario("fr-reset-out", SHARED, async () => {
      const tunnel = await tunnelOf("fr-reset-out");
      const s = tunnel.open("resetter", "127.0.0.1", h.apps.ports.resetter);
      assert.equal((await s.opened()).code, CODE.OK);
      await s.write(Buffer.from("provoke"));
      const reset = await s.waitReset();
      assert.equal(reset.code, CODE.CANCELLED, `§5.3: the app went away (message "${reset.message}")`);
      await tunnel.ping();
      assertClean(tunnel);
    }));

  test("PING is answered with a PONG carrying its 8 bytes, also inside a batch of frames", () =>
    h.scenario("fr-ping", SHARED, async () => {
      const tunnel = await tunnelOf("fr-ping");
      await tunnel.ping();
      const s = tunnel.open("echo", "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s.opened()).code, CODE.OK);
      const opaque = Buffer.from("0102030405060708", "hex");
      const since = tunnel.frames.length;
      tunnel.send([encode.data(s.id, Buffer.from("a")), tunnel.pingFrame(opaque), encode.data(s.id, Buffer.from("b"))]);
      // Other scenarios ping this tunnel too: ours is the PONG with our bytes.
      await tunnel.waitFrame((f) => f.type === T.PONG && f.opaque?.equals(opaque), "PONG with our 8 bytes", { since });
      assert.equal((await s.readBytes(2)).toString(), "ab");
      // The connector's own PINGs (§5.6: at start, then every heartbeat) are 8 bytes; we answered them.
      const pings = tunnel.frames.filter((f) => f.type === T.PING);
      assert.ok(pings.length >= 1 && pings.every((p) => p.length === 8));
      assertClean(tunnel);
    }));

  test("HEALTH_REPORT at start lists every catalog app once, healthy as the apps are", () =>
    h.scenario("fr-health", SHARED, async () => {
      const tunnel = await tunnelOf("fr-health");
      const report = await tunnel.waitFrame((f) => f.type === T.HEALTH_REPORT, "HEALTH_REPORT");
      /** @type {Record<string, { address: string, healthy: boolean }[]>} */
      const apps = Object.fromEntries(report.json.apps.map((/** @type {any} */ a) => [a.name, a.servers]));
      for (const name of Object.keys(h.apps.ports)) assert.ok(apps[name], `app ${name} reported`);
      assert.deepEqual(apps.echo, [{ address: `127.0.0.1:${h.apps.ports.echo}`, healthy: true }]);
      assert.deepEqual(apps.closed, [{ address: `127.0.0.1:${h.apps.ports.closed}`, healthy: false }]);
      assertClean(tunnel);
    }));

  test("CONFIG_CHANGED (with a field from the future): the connector fetches the new catalog, a new app opens", () =>
    h.scenario("fr-config", SHARED, async () => {
      const tunnel = await tunnelOf("fr-config");
      const app = "late-app";
      const refused = await tunnel.open(app, "127.0.0.1", h.apps.ports.echo).opened();
      assert.equal(refused.code, CODE.NOT_ALLOWED, "not in the catalog yet");
      const echo = `127.0.0.1:${h.apps.ports.echo}`;
      /** @type {any} */
      const put = await h.admin(
        `/admin/apps/${app}`,
        { destinations: [{ host: "127.0.0.1", ports: String(h.apps.ports.echo) }], servers: [echo] },
        "PUT",
      );
      const since = tunnel.frames.length;
      // A field this version does not know is ignored (§5.11), so a newer gateway can add one.
      tunnel.send(frame(T.CONFIG_CHANGED, 0, Buffer.from(JSON.stringify({ catalogVersion: put.version, future: 1 }))));
      const report = await tunnel.waitFrame(
        (f) => f.type === T.HEALTH_REPORT && f.json.apps.some((/** @type {any} */ a) => a.name === app),
        "a HEALTH_REPORT with the new app",
        { since },
      );
      assert.ok(report);
      const s = tunnel.open(app, "127.0.0.1", h.apps.ports.echo);
      assert.equal((await s.opened()).code, CODE.OK);
      await s.write(Buffer.from("new"));
      assert.equal((await s.readBytes(3)).toString(), "new");
      assertClean(tunnel);
    }));
});
