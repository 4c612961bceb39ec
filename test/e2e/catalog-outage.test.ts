/**
 * A restart during a control-plane outage (compiled binary, reference cloud): the daemon kept the
 * last good app catalog in its state dir, so after a restart with the control plane unreachable its
 * tunnels come up and streams the stored catalog allows still work.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { roundTrip, startEchoServer, type EchoServer } from "../support/apps.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";

let echo: EchoServer;
let cloud: CloudProcess;
let root: string;
const daemons: DaemonProcess[] = [];

beforeAll(async () => {
  echo = startEchoServer();
  cloud = await startCloud({ gateways: 2, apps: [`echo=${echo.address}`] });
  root = mkdtempSync(join(tmpdir(), "e2e-catalog-outage-"));
}, 120_000);

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop(5_000)));
  await cloud?.stop();
  echo?.stop();
  rmSync(root, { recursive: true, force: true });
}, 30_000);

function closedPort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Runs `body`; on failure adds the daemons' and the cloud's log tails to the error. */
async function withLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const tails = daemons.map((d, i) => `--- daemon ${i} ---\n${d.output().slice(-3000)}`).join("\n");
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\n${tails}\n--- cloud ---\n${cloud.output().slice(-2000)}`,
    );
  }
}

test("restarted while the control plane is unreachable: tunnels come up on the stored catalog and its apps work", async () => {
  await withLogs(async () => {
    const stateDir = join(root, "state");
    const first = await startDaemon({ key: cloud.provisioningKey, tunnels: 2, stateDir });
    daemons.push(first);
    await first.waitFor("connected", allTunnelsUp(2));
    const echoListen = cloud.apps.echo!.listen!;
    expect(Buffer.from(await roundTrip(echoListen, Buffer.from("before"))).toString()).toBe("before");
    const catalogFile = join(stateDir, "catalog.json");
    expect(statSync(catalogFile).mode & 0o777).toBe(0o600);
    expect(await first.stop(60_000)).toBe(0); // SIGKILL (not exit 0) only if it hangs a minute

    // The control plane becomes unreachable: the identity now points at a port nobody listens on.
    // The gateways (and what the catalog allows) stay as they were.
    const identityFile = join(stateDir, "identity", "identity.json");
    const identity = JSON.parse(readFileSync(identityFile, "utf8")) as { controlUrl: string };
    identity.controlUrl = `https://127.0.0.1:${closedPort()}`;
    writeFileSync(identityFile, JSON.stringify(identity), { mode: 0o600 });

    const second = await startDaemon({ key: cloud.provisioningKey, tunnels: 2, stateDir });
    daemons.push(second);
    const up = await second.waitFor("connected on the stored catalog", allTunnelsUp(2), 60_000);
    expect(up.catalog?.source).toBe("stored");
    expect(up.controlPlane?.reachable).toBe(false);
    expect(Buffer.from(await roundTrip(echoListen, Buffer.from("during the outage"))).toString()).toBe(
      "during the outage",
    );
    expect(second.output()).toContain("starting with the stored app catalog");
  });
}, 240_000);
