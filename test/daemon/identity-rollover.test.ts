/**
 * The renewal roll (identity-rollover.ts) on a fake clock with fake tunnels: a renewed certificate
 * moves the tunnels onto it one slot at a time — never fewer than N-1 up, each old tunnel drained
 * (GO_AWAY) and kept until its streams end — and a slot whose replacement does not come up holds the
 * roll only for ROLL_SLOT_TIMEOUT_MS. The waits are for the supervisor's events.
 */
import { expect, test } from "bun:test";
import { ROLL_SLOT_TIMEOUT_MS, rollTunnels, type RollOutcome } from "../../src/daemon/identity-rollover.ts";
import { LiveTunnels } from "../../src/daemon/live-tunnels.ts";
import type { Tunnel } from "../../src/supervisor/connection.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { Gateway } from "../../src/supervisor/supervisor-types.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { FakeTunnel } from "../supervisor/fake-tunnel.ts";
import { recordingLog } from "./daemon-fakes.ts";

const gateways: Gateway[] = ["a", "b", "c"].map((id) => ({ id, url: `wss://${id}.invalid/v1/tunnel` }));
const DIAL_MS = 2_000;

/** Three tunnels under a supervisor; each dial takes DIAL_MS and records the credentials in use. */
async function world(tunnels = 3) {
  const clock = new FakeClock();
  const { log, lines } = recordingLog();
  let credentials = "old";
  const failing = new Set<string>(); // credentials the gateways refuse
  const dialled: FakeTunnel[] = [];
  const live = new LiveTunnels(
    (onEvent) =>
      new Supervisor<Tunnel>({
        gateways,
        tunnels,
        clock,
        onEvent,
        random: () => 0.5,
        connect: (gateway) => {
          const used = credentials;
          return new Promise((resolve, reject) =>
            clock.setTimeout(() => {
              if (failing.has(used)) return reject(new Error(`the gateway refused the ${used} certificate`));
              const tunnel = new FakeTunnel(gateway, { certificate: used });
              dialled.push(tunnel);
              resolve(tunnel);
            }, DIAL_MS),
          );
        },
      }),
  );
  // The lowest count of tunnels up at any supervisor event, from the moment the roll starts.
  let lowest = Infinity;
  let watching = false;
  live.subscribe(() => {
    if (watching) lowest = Math.min(lowest, live.upCount());
  });
  live.start();
  await clock.advance(DIAL_MS);
  expect(live.upCount()).toBe(tunnels);
  const abort = new AbortController();
  return {
    clock,
    lines,
    live,
    dialled,
    abort,
    lowest: () => lowest,
    renew: (next: string, options: { refused?: boolean } = {}) => {
      credentials = next;
      if (options.refused) failing.add(next);
      watching = true;
      let outcome: RollOutcome | undefined;
      void rollTunnels({
        supervisor: live.current!,
        events: (listener) => live.subscribe(listener),
        clock,
        log,
        graceMs: 60 * 60_000,
        signal: abort.signal,
      }).then((o) => (outcome = o));
      return () => outcome;
    },
  };
}

const on = (tunnels: readonly FakeTunnel[], certificate: string) =>
  tunnels.filter((t) => t.dialledWith.certificate === certificate && !t.session.isClosed);

test("a renewed certificate rolls the tunnels over one at a time, never fewer than N-1 up", async () => {
  const w = await world(3);
  const old = [...w.dialled];
  old[0]!.streams = 2; // a user on the first tunnel
  const outcome = w.renew("new");
  // One slot at a time: while the first replacement dials, the other two old tunnels are untouched.
  await w.clock.advance(DIAL_MS - 1);
  expect(old.map((t) => t.drained)).toEqual([true, false, false]);
  await w.clock.advance(1);
  expect(on(w.dialled, "new")).toHaveLength(1);
  expect(old.map((t) => t.drained)).toEqual([true, true, false]); // the next slot moves once this one is up
  await w.clock.advance(2 * DIAL_MS);
  expect(outcome()).toBe("rolled");
  expect(w.live.upCount()).toBe(3);
  expect(w.live.tunnels().map((t) => (t as FakeTunnel).dialledWith.certificate)).toEqual(["new", "new", "new"]);
  expect(w.lowest()).toBeGreaterThanOrEqual(2);
  expect(w.lines.filter((l) => l.includes("tunnel moved to the renewed certificate"))).toHaveLength(3);
  // The replaced tunnels got GO_AWAY; the idle ones are closed, the busy one runs until its streams end.
  await w.clock.advance(1_000);
  expect(old[0]!.session.isClosed).toBe(false);
  expect(old.slice(1).every((t) => t.session.isClosed)).toBe(true);
  old[0]!.streams = 0;
  await w.clock.advance(0);
  expect(old[0]!.closedBy).toBe("moved to a renewed certificate");
});

test("a replacement that does not come up holds the roll only for the slot timeout, then it moves on", async () => {
  const w = await world(2);
  const outcome = w.renew("rejected", { refused: true });
  await w.clock.advance(ROLL_SLOT_TIMEOUT_MS - 1);
  expect(w.dialled.filter((t) => t.drained)).toHaveLength(1); // the second slot still waits
  expect(w.lines.some((l) => l.includes("not back within the roll timeout"))).toBe(false);
  await w.clock.advance(1);
  expect(w.lines.filter((l) => l.startsWith("warn tunnel not back within the roll timeout"))).toHaveLength(1);
  expect(w.dialled.filter((t) => t.drained)).toHaveLength(2);
  await w.clock.advance(ROLL_SLOT_TIMEOUT_MS);
  expect(outcome()).toBe("rolled");
  // Its slots keep retrying under the supervisor's backoff; the roll itself is over.
  expect(w.live.upCount()).toBe(0);
});

test("a slot its gateway drains during the roll redials on the new certificate and is not moved again", async () => {
  const w = await world(2);
  await w.clock.advance(10_000); // stable
  const [first, second] = w.dialled;
  const outcome = w.renew("new");
  await w.clock.advance(1_000); // slot 0's replacement is dialling
  expect(first!.drained).toBe(true);
  second!.goAway(); // slot 1's gateway drains it: it redials at once, with the current (new) credentials
  await w.clock.advance(2 * DIAL_MS);
  expect(outcome()).toBe("rolled");
  expect(w.lines.filter((l) => l.includes("tunnel moved to the renewed certificate"))).toHaveLength(1);
  expect(w.live.tunnels().map((t) => (t as FakeTunnel).dialledWith.certificate)).toEqual(["new", "new"]);
  expect(on(w.dialled, "new")).toHaveLength(2); // no third dial: slot 1 was not replaced twice
});

test("the daemon stopping or the supervisor stopping (revoked) ends the roll at once, without the timeout", async () => {
  const w = await world(2);
  const outcome = w.renew("new", { refused: true });
  await w.clock.advance(1_000);
  w.live.stop("connector revoked");
  await w.clock.advance(0);
  expect(outcome()).toBe("stopped");
  const v = await world(2);
  const other = v.renew("new", { refused: true });
  await v.clock.advance(1_000);
  v.abort.abort();
  await v.clock.advance(0);
  expect(other()).toBe("stopped");
});
