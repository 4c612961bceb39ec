/**
 * Access tokens with the compiled binary (docs/PROTOCOL.md §3.5, §4, §5.8): a cloud that issues
 * 12-second tokens, so `connector run` refreshes about every 8 s (a third of the life, 4 s, is the room
 * a late timer and a slow token request have on a busy machine before a tunnel's token would expire). Its two tunnels stay up across several
 * refreshes without reconnecting (the gateways see TOKEN_UPDATEs, accept no new tunnel), and a user
 * connection opened before the first refresh keeps working. A connector revoked without telling the
 * gateways loses its tunnels within one token lifetime. Timings are printed for the record.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { roundTrip, splitAddress } from "../support/apps.ts";
import type { CloudProcess } from "../support/cloud-process.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { until } from "../support/wait.ts";

const TTL_SECONDS = 12;
const REFRESHES = 3;
let stack: Stack;
let cloud: CloudProcess;
let daemon: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({ gateways: 2, tokenTtlSeconds: TTL_SECONDS, daemons: [{ tunnels: 2 }] });
  ({ cloud } = stack);
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

/** Runs `body`; a failure carries the daemon's and the cloud's log tails. */
async function withLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${message}\n--- connector log (tail) ---\n${daemon.output().slice(-4000)}\n--- cloud log (tail) ---\n${cloud.output().slice(-4000)}`,
    );
  }
}

/** The daemon's "access token received" log lines: when, and the life and refresh delay it computed. */
function tokensReceived(): { at: number; lifeMs: number; refreshInMs: number; expiresAt: string }[] {
  return daemon
    .output()
    .split("\n")
    .filter((line) => line.includes('"access token received"'))
    .map((line) => JSON.parse(line) as { time: string; lifeMs: number; refreshInMs: number; expiresAt: string })
    .map((r) => ({ at: Date.parse(r.time), lifeMs: r.lifeMs, refreshInMs: r.refreshInMs, expiresAt: r.expiresAt }));
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test("tunnels stay up across several token refreshes without reconnecting; a user connection keeps working", async () => {
  await withLogs(async () => {
    const id = (await daemon.status()).snapshot!.connectorId!;
    const before = await cloud.gatewayStatus();
    const accepted = sum(before.map((g) => g.counters!.tunnelsAccepted));
    expect(before.flatMap((g) => g.tunnels).filter((t) => t.connectorId === id).length).toBe(2);

    let echoed = "";
    const { hostname, port } = splitAddress(stack.echoListen);
    const user = await Bun.connect({
      hostname,
      port,
      socket: { data: (_s, d) => void (echoed += new TextDecoder().decode(d)) },
    });
    user.write("before ");

    // Each tunnel takes REFRESHES token updates (about 8 s apart with a 12 s token).
    const after = await until(
      `${REFRESHES} TOKEN_UPDATEs on each tunnel`,
      async () => {
        const gws = await cloud.gatewayStatus();
        const mine = gws.flatMap((g) => g.tunnels).filter((t) => t.connectorId === id);
        return mine.length === 2 && mine.every((t) => t.tokenUpdates >= REFRESHES) ? gws : undefined;
      },
      (REFRESHES + 2) * TTL_SECONDS * 1000,
    );
    // Same tunnels: the gateways accepted none since, none expired, the status never left "connected".
    expect(sum(after.map((g) => g.counters!.tunnelsAccepted))).toBe(accepted);
    expect(sum(after.map((g) => g.counters!.tunnelsExpired))).toBe(0);
    expect(sum(after.map((g) => g.counters!.tokenUpdatesRefused))).toBe(0);
    const status = (await daemon.status()).snapshot!;
    expect(status.state).toBe("connected");
    expect(status.accessToken?.expiresAt).toBeDefined();
    expect(Date.parse(status.accessToken!.expiresAt!)).toBeGreaterThan(Date.now());
    expect(daemon.output()).not.toContain('"tunnel down"');
    expect(daemon.output()).not.toMatch(/v1\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}/); // never a token in the logs

    user.write("after");
    await until("the echo of both writes", async () => (echoed === "before after" ? true : undefined), 30_000);
    user.end();
    expect(new TextDecoder().decode(await roundTrip(stack.echoListen, new TextEncoder().encode("new user")))).toBe(
      "new user",
    );

    const received = tokensReceived();
    expect(received.length).toBeGreaterThanOrEqual(REFRESHES + 1);
    // The schedule the connector chose: at 2/3 of the life plus up to 5% of it. A refresh is never
    // early (the next token arrives at least that long after the last); how late it is on this machine
    // is printed, not judged.
    for (const r of received) {
      expect(r.refreshInMs / r.lifeMs).toBeGreaterThanOrEqual(2 / 3 - 0.001);
      expect(r.refreshInMs / r.lifeMs).toBeLessThanOrEqual(2 / 3 + 0.05 + 0.001);
    }
    received
      .slice(1)
      .forEach((r, i) => expect(r.at - received[i]!.at).toBeGreaterThanOrEqual(received[i]!.refreshInMs - 5));
    const fractions = received.slice(1).map((r, i) => (r.at - received[i]!.at) / received[i]!.lifeMs);
    console.log(
      `token TTL ${TTL_SECONDS} s; lives seen by the connector ${received.map((r) => r.lifeMs).join(", ")} ms; ` +
        `refreshed at ${fractions.map((f) => f.toFixed(3)).join(", ")} of life; tunnels accepted ${accepted} before and after`,
    );
  });
}, 120_000);

test("revoked without telling the gateways: its next refresh fails and its tunnels are gone within one token lifetime", async () => {
  await withLogs(async () => {
    const id = (await daemon.status()).snapshot!.connectorId!;
    const revokedAt = Date.now();
    await cloud.revokeConnector(id, { notifyGateways: false });
    // A safety deadline; the time it took is printed below.
    const gone = await cloud.untilNoTunnelsOf(id, TTL_SECONDS * 1000 + 30_000);
    const goneAfterMs = Date.now() - revokedAt;
    await daemon.waitFor("revoked", (s) => s.state === "revoked", 60_000);
    expect(daemon.output()).toContain("access token refused: this connector has been revoked");
    const expired = sum(gone.map((g) => g.counters!.tunnelsExpired));
    console.log(
      `revoked (gateways not told) -> last tunnel gone after ${goneAfterMs} ms (token TTL ${TTL_SECONDS} s; tunnels ended by token expiry at the gateway: ${expired})`,
    );
  });
}, 120_000);
