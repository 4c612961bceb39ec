/**
 * The router over fake tunnels: round-robin, health reports, drain, retries on BUSY / draining /
 * closed tunnels with a bound, and the routable notifications the user listeners follow.
 */
import { describe, expect, test } from "bun:test";
import { StreamCode } from "../../../src/mux/const.ts";
import { OpenRejectedError, TunnelClosedError, TunnelDrainingError } from "../../../src/mux/errors.ts";
import type { OpenRequest } from "../../../src/mux/stream.ts";
import type { GatewayApp } from "./messages.ts";
import { Router, type RouteTarget } from "./router.ts";

/** A fake tunnel: records the opens it gets and answers with the scripted outcome. */
class FakeTunnel implements RouteTarget<string> {
  usable = true;
  readonly opens: OpenRequest[] = [];
  /** Each open takes the next outcome; "ok" when none is left. */
  outcomes: (Error | "ok")[] = [];
  constructor(
    readonly connectorId: string,
    readonly group = "default",
  ) {}
  open(request: OpenRequest): Promise<string> {
    this.opens.push(request);
    const outcome = this.outcomes.shift() ?? "ok";
    return outcome === "ok" ? Promise.resolve(`stream via ${this.connectorId}`) : Promise.reject(outcome);
  }
}

const wiki: GatewayApp = { name: "wiki", group: "default", servers: ["10.0.0.1:80", "[2001:db8::1]:8080"] };
const jira: GatewayApp = { name: "jira", group: "other", servers: ["10.0.0.9:443"] };

function routerWith(targets: FakeTunnel[], apps: GatewayApp[] = [wiki, jira]) {
  const changes: string[] = [];
  const router = new Router<string>({ onRoutableChange: (app, routable) => changes.push(`${app}:${routable}`) });
  router.setApps(apps);
  for (const t of targets) router.addTarget(t);
  return { router, changes };
}

const healthy = (app: string, ok: boolean) => ({
  apps: [{ name: app, servers: [{ address: "10.0.0.1:80", healthy: ok }] }],
});

describe("router", () => {
  test("user connections take the group's tunnels in turn; another group's tunnel is never used", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    const other = new FakeTunnel("c-x", "other");
    const { router } = routerWith([a, other, b]);
    const via = [];
    for (let i = 0; i < 4; i++) {
      const r = await router.route("wiki");
      via.push(r.ok ? r.target.connectorId : r.reason);
    }
    expect(via).toEqual(["c-a", "c-b", "c-a", "c-b"]);
    expect(other.opens).toHaveLength(0);
    expect(router.counters).toMatchObject({ routed: 4, opensOk: 4, retries: 0 });
  });

  test("OPEN names the app's servers round-robin, IPv6 without brackets", async () => {
    const { router } = routerWith([new FakeTunnel("c-a")]);
    await router.route("wiki");
    await router.route("wiki");
    await router.route("wiki");
    const t = (router.candidates("wiki")[0] as FakeTunnel).opens;
    expect(t.map((o) => `${o.app} ${o.host} ${o.port}`)).toEqual([
      "wiki 10.0.0.1 80",
      "wiki 2001:db8::1 8080",
      "wiki 10.0.0.1 80",
    ]);
  });

  test("a tunnel whose last health report has no healthy server for the app gets none of its users", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    const { router } = routerWith([a, b]);
    router.setHealth(a, healthy("wiki", false));
    router.setHealth(b, healthy("jira", false)); // says nothing about wiki: still eligible
    for (let i = 0; i < 3; i++) await router.route("wiki");
    expect(a.opens).toHaveLength(0);
    expect(b.opens).toHaveLength(3);
    router.setHealth(a, healthy("wiki", true));
    expect(router.candidates("wiki").map((t) => t.connectorId)).toEqual(["c-a", "c-b"]);
  });

  test("when no connector reports the app healthy, users are routed anyway so the connector's failure reaches them", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    const { router } = routerWith([a, b]);
    router.setHealth(a, healthy("wiki", false));
    router.setHealth(b, healthy("wiki", false));
    for (let i = 0; i < 2; i++) await router.route("wiki");
    expect(a.opens.length + b.opens.length).toBe(2);
    expect(router.isRoutable("wiki")).toBe(true);
  });

  test("a draining tunnel (GO_AWAY either way) is skipped", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    const { router } = routerWith([a, b]);
    a.usable = false;
    router.refresh();
    for (let i = 0; i < 3; i++) await router.route("wiki");
    expect([a.opens.length, b.opens.length]).toEqual([0, 3]);
  });

  test("BUSY, draining and closed tunnels are retried on the next tunnel", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    const c = new FakeTunnel("c-c");
    a.outcomes = [new OpenRejectedError(StreamCode.BUSY, "full")];
    b.outcomes = [new TunnelDrainingError()];
    const { router } = routerWith([a, b, c]);
    const result = await router.route("wiki");
    expect(result.ok && result.target.connectorId).toBe("c-c");
    expect(router.counters).toMatchObject({ routed: 1, retries: 2, opensFailed: { OPEN_BUSY: 1, TUNNEL_DRAINING: 1 } });

    b.outcomes = [new TunnelClosedError("gone")];
    const again = await router.route("wiki"); // round-robin starts at b this time, and fails over to c
    expect(again.ok && again.target.connectorId).toBe("c-c");
    expect(router.counters.opensFailed.TUNNEL_CLOSED).toBe(1);
  });

  test("retries are bounded: with every tunnel BUSY only maxAttempts are tried, then the user is closed", async () => {
    const tunnels = Array.from({ length: 5 }, (_, i) => new FakeTunnel(`c-${i}`));
    for (const t of tunnels) t.outcomes = [new OpenRejectedError(StreamCode.BUSY, "full")];
    const { router } = routerWith(tunnels);
    const result = await router.route("wiki");
    expect(result).toMatchObject({ ok: false, reason: "failed" });
    expect(tunnels.reduce((n, t) => n + t.opens.length, 0)).toBe(3);
    expect(router.counters).toMatchObject({ routeFailed: 1, retries: 2, opensFailed: { OPEN_BUSY: 3 } });
  });

  test("a refusal about the destination (REFUSED) is final: no other tunnel is tried", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    a.outcomes = [new OpenRejectedError(StreamCode.REFUSED, "connection refused")];
    const { router } = routerWith([a, b]);
    expect(await router.route("wiki")).toMatchObject({ ok: false, reason: "failed" });
    expect(b.opens).toHaveLength(0);
    expect(router.counters.opensFailed).toEqual({ OPEN_REFUSED: 1 });
  });

  test("no usable tunnel, an unknown app and an app without servers are told apart and counted", async () => {
    const { router } = routerWith([], [wiki, { name: "empty", group: "default", servers: ["not-a-server"] }]);
    expect(await router.route("wiki")).toMatchObject({ ok: false, reason: "no-tunnel" });
    expect(await router.route("nope")).toMatchObject({ ok: false, reason: "unknown-app" });
    router.addTarget(new FakeTunnel("c-a"));
    expect(await router.route("empty")).toMatchObject({ ok: false, reason: "no-server" });
    expect(router.counters).toMatchObject({ noTunnel: 1, unknownApp: 1, routeFailed: 1, routed: 0 });
  });

  test("tunnels that disappear while an open is in flight are not tried again", async () => {
    const a = new FakeTunnel("c-a");
    const b = new FakeTunnel("c-b");
    const { router } = routerWith([a, b]);
    a.open = (request) => {
      a.opens.push(request);
      router.removeTarget(b); // b went away meanwhile
      return Promise.reject(new TunnelClosedError("gone"));
    };
    expect(await router.route("wiki")).toMatchObject({ ok: false, reason: "failed" });
    expect(b.opens).toHaveLength(0);
  });

  test("routable changes are announced once per change, per app", () => {
    const a = new FakeTunnel("c-a");
    const { router, changes } = routerWith([]);
    expect(changes).toEqual(["wiki:false", "jira:false"]);
    router.addTarget(a);
    router.addTarget(new FakeTunnel("c-b", "nobody's"));
    router.setHealth(a, healthy("wiki", true));
    router.setHealth(a, healthy("wiki", false));
    a.usable = false;
    router.refresh();
    router.removeTarget(a);
    expect(changes).toEqual(["wiki:false", "jira:false", "wiki:true", "wiki:false"]);
    router.setApps([jira]);
    expect(router.isRoutable("wiki")).toBe(false);
    expect(router.candidates("wiki")).toEqual([]);
  });
});
