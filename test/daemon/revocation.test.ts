/**
 * Revocation (src/daemon/revocation.ts) on a fake clock: which answers count as a revocation and which
 * are only signs, what a revocation does (tunnels stopped, status "revoked", one error line, a slow
 * re-check), that it happens once however often it is said, and how a reinstatement undoes it. Then
 * the same through a whole daemon on fakes: a gateway's 1008 or 403 makes it ask the control plane,
 * and an unrelated close does not.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { apiRejection, ConnectionRefusedError } from "../../src/control/errors.ts";
import { Daemon } from "../../src/daemon/daemon.ts";
import {
  isGatewayRefusal,
  isPolicyClose,
  isRevokedAnswer,
  Revocation,
  REVOKED_RETRY_MS,
} from "../../src/daemon/revocation.ts";
import { CloseCode } from "../../src/transport/close-code.ts";
import { TunnelDialError } from "../../src/transport/websocket/errors.ts";
import { FakeClock, untilQueued } from "../support/fake-clock.ts";
import { daemonWorld, type DaemonWorld, recordingLog } from "./daemon-fakes.ts";

describe("what counts", () => {
  test("only the control plane's CONNECTOR_REVOKED is a revocation", () => {
    expect(isRevokedAnswer(apiRejection(403, "CONNECTOR_REVOKED", "revoked"))).toBe(true);
    expect(isRevokedAnswer(apiRejection(403, "FORBIDDEN", "no"))).toBe(false);
    expect(isRevokedAnswer(apiRejection(401, "UNAUTHORIZED", ""))).toBe(false);
    expect(isRevokedAnswer(new ConnectionRefusedError("cloud:443", "ECONNREFUSED"))).toBe(false);
  });

  test("a gateway's 403 on the upgrade and a 1008 close are signs; other refusals and closes are not", () => {
    const dial = (status?: number) =>
      new TunnelDialError("TUNNEL_HANDSHAKE", "refused", status === undefined ? {} : { status });
    expect(isGatewayRefusal(dial(403))).toBe(true);
    for (const status of [401, 426, 500, 502, undefined]) expect(isGatewayRefusal(dial(status))).toBe(false);
    expect(isGatewayRefusal(new Error("403"))).toBe(false);
    expect(isPolicyClose(CloseCode.POLICY_VIOLATION)).toBe(true);
    expect(CloseCode.POLICY_VIOLATION).toBe(1008);
    for (const code of [1000, 1001, 1006, 1011, 4000]) expect(isPolicyClose(code)).toBe(false);
  });
});

/** A Revocation with recording fakes around it. */
function machine() {
  const clock = new FakeClock();
  const { log, lines } = recordingLog();
  const seen: string[] = [];
  let running = false;
  let stopping = false;
  let asked = 0;
  const revocation = new Revocation({
    clock,
    log,
    status: { revoked: () => void seen.push("status revoked"), reinstated: () => void seen.push("status reinstated") },
    askControlPlane: async () => void asked++,
    tunnels: {
      get running() {
        return running;
      },
      start: () => {
        running = true;
        seen.push("tunnels started");
      },
      stop: (reason) => {
        running = false;
        seen.push(`tunnels stopped: ${reason}`);
      },
    },
    stopping: () => stopping,
  });
  return {
    clock,
    lines,
    seen,
    revocation,
    asked: () => asked,
    stopDaemon: () => void (stopping = true),
  };
}

describe("the state machine", () => {
  test("running, revoked: tunnels stop, status says so, one error line, and the control plane is asked only every 10 min", async () => {
    const m = machine();
    m.revocation.startTunnels();
    expect(m.seen).toEqual(["tunnels started"]);
    m.revocation.confirmed();
    expect(m.revocation.revoked).toBe(true);
    expect(m.seen).toEqual(["tunnels started", "status revoked", "tunnels stopped: connector revoked"]);
    const errors = m.lines.filter((l) => l.startsWith("error"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("has been revoked");
    expect(errors[0]).toContain(`"checkAgainInMs":${REVOKED_RETRY_MS}`);
    await m.clock.advance(REVOKED_RETRY_MS - 1);
    expect(m.asked()).toBe(0);
    await m.clock.advance(1);
    expect(m.asked()).toBe(1);
    await m.clock.advance(REVOKED_RETRY_MS);
    expect(m.asked()).toBe(2);
  });

  test("idempotent: the same answer again (token and catalog, many tunnels) changes nothing", async () => {
    const m = machine();
    m.revocation.startTunnels();
    for (let i = 0; i < 5; i++) m.revocation.confirmed();
    expect(m.seen.filter((s) => s.startsWith("tunnels stopped"))).toHaveLength(1);
    expect(m.lines.filter((l) => l.startsWith("error"))).toHaveLength(1);
    await m.clock.advance(REVOKED_RETRY_MS);
    expect(m.asked()).toBe(1); // one schedule, not one per answer
    m.revocation.confirmed(); // the re-check's own answer
    await m.clock.advance(REVOKED_RETRY_MS);
    expect(m.asked()).toBe(2);
    expect(m.clock.pendingTimers).toBe(1);
  });

  test("reinstated: status back, tunnels start again, the re-checks end; served while not revoked does nothing", async () => {
    const m = machine();
    m.revocation.startTunnels();
    m.revocation.served();
    expect(m.seen).toEqual(["tunnels started"]);
    m.revocation.confirmed();
    m.revocation.served();
    expect(m.revocation.revoked).toBe(false);
    expect(m.seen.slice(-2)).toEqual(["status reinstated", "tunnels started"]);
    expect(m.lines.some((l) => l.startsWith("info the control plane accepts this connector again"))).toBe(true);
    await m.clock.advance(10 * REVOKED_RETRY_MS);
    expect(m.asked()).toBe(0);
    expect(m.clock.pendingTimers).toBe(0);
  });

  test("a gateway's refusal is only a sign: the control plane is asked, nothing else changes", () => {
    const m = machine();
    m.revocation.startTunnels();
    m.revocation.gatewayRefused();
    expect(m.asked()).toBe(1);
    expect(m.revocation.revoked).toBe(false);
    expect(m.seen).toEqual(["tunnels started"]);
  });

  test("during start-up answers only set the state (the first fetch logs and retries itself)", () => {
    const m = machine();
    m.revocation.confirmed();
    expect(m.seen).toEqual(["status revoked"]);
    expect(m.lines).toEqual([]);
    expect(m.clock.pendingTimers).toBe(0);
    m.revocation.served();
    expect(m.seen).toEqual(["status revoked", "status reinstated"]);
    m.revocation.startTunnels();
    expect(m.seen.at(-1)).toBe("tunnels started");
  });

  test("start-up on a stored catalog while still revoked: no tunnels, the revocation is said, re-checks begin", async () => {
    const m = machine();
    m.revocation.confirmed(); // the first fetch was refused, a later one failed: the stored catalog was used
    m.revocation.startTunnels();
    expect(m.seen).toEqual(["status revoked", "tunnels stopped: connector revoked"]);
    expect(m.lines.filter((l) => l.startsWith("error"))).toHaveLength(1);
    await m.clock.advance(REVOKED_RETRY_MS);
    expect(m.asked()).toBe(1);
  });

  test("stopping: no re-check is scheduled, a reinstatement starts no tunnels; stop() cancels the schedule", async () => {
    const m = machine();
    m.revocation.startTunnels();
    m.revocation.confirmed();
    m.stopDaemon();
    m.revocation.served();
    expect(m.seen.at(-1)).toBe("status reinstated");
    const other = machine();
    other.revocation.startTunnels();
    other.revocation.confirmed();
    other.revocation.stop();
    await other.clock.advance(2 * REVOKED_RETRY_MS);
    expect(other.asked()).toBe(0);
  });
});

describe("through a daemon on fakes", () => {
  const worlds: DaemonWorld[] = [];
  afterEach(() => {
    for (const w of worlds.splice(0)) {
      w.signals.send("SIGINT");
      w.signals.send("SIGINT");
      w.cleanup();
    }
  });

  async function serving() {
    const clock = new FakeClock();
    const world = daemonWorld(clock, { flags: { tunnels: "2" } });
    worlds.push(world);
    void new Daemon(world.options, world.deps).run();
    await untilQueued(() => world.gateways.open().length === 2, "two tunnels up");
    return { clock, world };
  }

  test("revoked in the cloud: a gateway's 1008 close makes it ask, the answer stops every tunnel; lifted, they return", async () => {
    const { clock, world } = await serving();
    const asked = world.control.catalogRequests;
    world.control.revoked = true;
    const [refused, other] = world.gateways.open();
    world.gateways.close(refused!, CloseCode.POLICY_VIOLATION);
    await untilQueued(() => world.snapshot().state === "revoked", "status revoked");
    expect(world.control.catalogRequests).toBe(asked + 1);
    expect(world.gateways.open()).toEqual([]);
    expect(other!.tunnel.closedBy).toBe("connector revoked"); // closed by us, not waited for
    const dials = world.gateways.dialled.length;
    await clock.advance(REVOKED_RETRY_MS - 1);
    expect(world.gateways.dialled.length).toBe(dials); // no redial on the tunnels' 1 s backoff
    expect(world.control.catalogRequests).toBe(asked + 1); // nor on the 5 min catalog poll
    world.control.revoked = false;
    await clock.advance(1);
    await untilQueued(() => world.gateways.open().length === 2, "tunnels back");
    expect(world.snapshot().state).not.toBe("revoked");
  });

  test("a 403 on the upgrade makes it ask the control plane; a 401 or a 502 does not", async () => {
    const { clock, world } = await serving();
    const asked = world.control.catalogRequests;
    const [a] = world.gateways.open();
    world.gateways.refuse(a!.tunnel.gateway.id, 502);
    world.gateways.close(a!, 1011);
    await clock.advance(60_000);
    world.gateways.refuse(a!.tunnel.gateway.id, 401);
    await clock.advance(60_000);
    expect(world.control.catalogRequests).toBe(asked);
    world.gateways.refuse(a!.tunnel.gateway.id, 403);
    await clock.advance(60_000);
    expect(world.control.catalogRequests).toBeGreaterThan(asked);
    expect(world.snapshot().state).not.toBe("revoked"); // the control plane still serves us: only a sign
  });

  test("closes that are not by policy (normal, going away, internal error) never make it ask", async () => {
    const { clock, world } = await serving();
    const asked = world.control.catalogRequests;
    for (const code of [1000, 1001, 1011]) {
      world.gateways.close(world.gateways.open()[0]!, code);
      await clock.advance(60_000);
      await untilQueued(() => world.gateways.open().length === 2, "the tunnel back");
    }
    expect(world.control.catalogRequests).toBe(asked);
  });

  test("the token fetch's CONNECTOR_REVOKED revokes too", async () => {
    const { clock, world } = await serving();
    world.control.revoked = true;
    await clock.advance(60 * 60_000); // the token's refresh at two thirds of its life
    await untilQueued(() => world.snapshot().state === "revoked", "status revoked");
    expect(world.gateways.open()).toEqual([]);
    expect(world.lines.filter((l) => l.includes("has been revoked by the cloud: tunnels stopped"))).toHaveLength(1);
  });
});
