/**
 * A gateway that sends GO_AWAY right after every upgrade must not take the connector down: the
 * compiled connector runs against the reference control plane whose only gateway is scripted here.
 * The connector must space its dials by its backoff, close the drained tunnels itself and keep its
 * log short; a GO_AWAY written together with the 101 must be seen like any other.
 */
import { afterEach, expect } from "bun:test";
import { test } from "../support/e2e.ts";
import { createConsola } from "consola";
import { startCloud, type CloudHandle } from "../cloud/cloud.ts";
import type { GatewayFleet } from "../cloud/gateway-api.ts";
import { listenTunnels } from "../support/ws-server.ts";
import { GoAwayCode, SUBPROTOCOL } from "../../src/mux/const.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import type { TransportClose } from "../../src/transport/transport.ts";
import { startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { until } from "../support/wait.ts";

/** A tunnel as the scripted gateway saw it: when it came, and how it ended. */
interface SeenTunnel {
  readonly openedAt: number;
  closed?: TransportClose;
}

type Mode = "with-101" | "after-101";

let cloud: CloudHandle | undefined;
let daemon: DaemonProcess | undefined;

afterEach(async () => {
  await daemon?.stop(5_000);
  await cloud?.stop();
  daemon = undefined;
  cloud = undefined;
}, 30_000);

/** A cloud whose only gateway drains every tunnel: in the same write as its 101, or just after. */
async function start(mode: Mode): Promise<{ seen: SeenTunnel[]; daemon: DaemonProcess }> {
  const seen: SeenTunnel[] = [];
  const scripted = (
    state: Parameters<NonNullable<Parameters<typeof startCloud>[0]>["startGateways"] & {}>[0],
  ): Promise<GatewayFleet> => {
    const cert = state.ca.issueServerCert();
    const listener = listenTunnels({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: cert.certPem, key: cert.keyPem, ca: state.ca.certPem },
      authorize: () => ({ accept: true, protocol: SUBPROTOCOL, context: undefined }),
      onTunnel: ({ transport }) => {
        const tunnel: SeenTunnel = { openedAt: Date.now() };
        seen.push(tunnel);
        transport.setHandlers({ message: () => {}, drain: () => {}, close: (info) => void (tunnel.closed = info) });
        const goAway = () => transport.send([enc.encodeGoAway(GoAwayCode.DRAINING, "go away")]);
        // Sent in the same tick, the GO_AWAY leaves in the same socket write as the 101 answer.
        if (mode === "with-101") goAway();
        else setTimeout(goAway, 20);
      },
    });
    const url = `wss://127.0.0.1:${listener.port}/v1/tunnel`;
    return Promise.resolve({
      gateways: [{ id: "drainer", url, stop: async () => listener.stop(true) }],
      listenAddress: () => null,
      stop: async () => listener.stop(true),
    });
  };
  cloud = await startCloud({ startGateways: scripted, apps: [], log: createConsola({ level: -999 }) });
  daemon = await startDaemon({ key: cloud.provisioningKey, tunnels: 2 });
  return { seen, daemon };
}

/** Runs `check`; on failure adds the daemon's log tail to the error. */
async function withLogs(d: DaemonProcess, check: () => Promise<void> | void): Promise<void> {
  try {
    await check();
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- daemon log tail ---\n${d.output().slice(-4000)}`, { cause: err });
  }
}

/** Waits until `ok()` (polling), or throws at the safety deadline. */
const untilTrue = (what: string, ok: () => boolean, timeoutMs: number) =>
  until(what, () => (ok() ? true : undefined), timeoutMs);

/** Closed by the connector: once idle after the GO_AWAY, or at once as the idlest past the cap on drained tunnels. */
const drainedByConnector = (t: SeenTunnel) =>
  t.closed?.code === 1000 &&
  (t.closed.reason.includes("gateway drained this tunnel") || t.closed.reason.includes("too many draining tunnels"));

test("GO_AWAY right after every upgrade: a handful of tunnels, each closed by the connector, a short log", async () => {
  const { seen, daemon: d } = await start("after-101");
  await withLogs(d, async () => {
    await untilTrue("the first tunnel", () => seen.length > 0, 60_000);
    const windowStart = Date.now();
    const linesBefore = d.output().split("\n").length;
    await Bun.sleep(15_000); // the window we measure: the audit saw 357 tunnels in 20 s
    const windowEnd = Date.now();
    const opened = seen.filter((t) => t.openedAt >= windowStart - 1_000);
    const windowLog = d.output().split("\n").slice(linesBefore);
    console.log(
      `goaway-storm: ${seen.length} tunnels in all, ${opened.length} in the 15 s window, ${windowLog.length} log lines`,
    );
    // Two slots with backoff ceilings 1, 2, 4, 8, 16 s (full jitter): about 5 dials each; old code: hundreds.
    // (A busy machine only delays dials, so it can only make this count smaller.)
    expect(opened.length).toBeLessThanOrEqual(24);
    expect(windowLog.length).toBeLessThan(250);
    // The GO_AWAY line: at most one per gateway per 10 s, so at most 3 in a 15 s window.
    expect(windowLog.filter((line) => line.includes("gateway is draining this tunnel")).length).toBeLessThanOrEqual(3);
    // Every tunnel of the window is closed by the connector (the gateway never closes one); 60 s is a
    // safety deadline for a busy machine, the connector looks 1 s after each GO_AWAY.
    const ofWindow = seen.filter((t) => t.openedAt <= windowEnd);
    expect(ofWindow.length).toBeGreaterThan(0);
    await untilTrue(
      "every tunnel of the window closed by the connector",
      () => ofWindow.every(drainedByConnector),
      60_000,
    ).catch(() => undefined);
    expect(
      ofWindow.filter((t) => !drainedByConnector(t)).map((t) => ({ ageMs: Date.now() - t.openedAt, closed: t.closed })),
    ).toEqual([]);
    expect(d.proc.exitCode).toBeNull();
  });
}, 180_000);

test("a GO_AWAY in the same write as the 101 is seen: the tunnel is not counted up, replaced, and closed by the connector", async () => {
  const { seen, daemon: d } = await start("with-101");
  await withLogs(d, async () => {
    // Without the fix each slot stays "up" on its first tunnel and no third tunnel ever comes.
    await untilTrue("a replacement tunnel", () => seen.length >= 3, 60_000);
    await untilTrue(
      "the first tunnels closed by the connector",
      () => seen.slice(0, 2).every(drainedByConnector),
      60_000,
    );
    const { exitCode, snapshot } = await d.status();
    expect(snapshot?.state).not.toBe("connected");
    expect(exitCode).not.toBe(0);
  });
}, 180_000);
