import { describe, expect, test } from "bun:test";
import { createPublicKey } from "node:crypto";
import { createConsola } from "consola";
import type { Identity } from "../../src/identity/identity.ts";
import { logEvents } from "../../src/daemon/event-log.ts";
import { type DaemonEvent, DaemonEvents } from "../../src/daemon/events.ts";
import { CertificateRenewal, MAX_SLEEP_MS } from "../../src/daemon/certificate-renewal.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { makeIdentity, testCa } from "../identity/fixtures.ts";

const DAY = 86_400_000;
/** The fake clock's wall time at 0 (test/support/fake-clock.ts). */
const EPOCH = Date.UTC(2026, 0, 1);

/** An identity whose certificate is valid from `fromDay` to `toDay` (days after EPOCH). */
function identityValid(fromDay: number, toDay: number): Identity {
  const base = makeIdentity("c-renew");
  const keyPem = base.privateKeyPem.reveal();
  const publicKey = createPublicKey(keyPem).export({ type: "spki", format: "pem" }).toString();
  const certificate = testCa().signPublicKey(publicKey, {
    commonName: "c-renew",
    organization: "group-a",
    usage: "client",
    notBefore: new Date(EPOCH + fromDay * DAY),
    notAfter: new Date(EPOCH + toDay * DAY),
  });
  return { ...base, certificate };
}

function setup(renew: (current: Identity) => Promise<Identity>, random = () => 0) {
  const clock = new FakeClock();
  const lines: { type: string; message: unknown }[] = [];
  const log = createConsola({
    level: 999,
    reporters: [{ log: (e) => void lines.push({ type: e.type, message: e.args[0] }) }],
  });
  const events = new DaemonEvents();
  const told: DaemonEvent[] = [];
  events.subscribe((e) => void told.push(e));
  events.subscribe(logEvents({ log, summary: () => ({}) }));
  const renewed: Identity[] = [];
  const renewal = new CertificateRenewal(identityValid(0, 30), {
    clock,
    events,
    renew,
    onRenewed: (i) => void renewed.push(i),
    random,
  });
  return { clock, lines, told, renewed, renewal };
}

describe("certificate renewal schedule", () => {
  test("renews at two thirds of the certificate's life, then at two thirds of the new one's", async () => {
    const calls: number[] = [];
    const { clock, renewed, renewal, told } = setup(async () => {
      calls.push(clock.now());
      return identityValid(20, 50);
    });
    renewal.start();
    await clock.advance(20 * DAY - 1); // in MAX_SLEEP_MS steps: long waits are re-checked, not one huge timer
    expect(calls).toEqual([]);
    await clock.advance(1);
    expect(calls).toEqual([20 * DAY]);
    expect(renewed).toHaveLength(1);
    expect(told).toEqual([{ type: "renewal", ok: true, notAfter: new Date(EPOCH + 50 * DAY) }]);
    expect(renewal.view()).toMatchObject({
      dueAt: new Date(EPOCH + 40 * DAY).toISOString(),
      lastError: null,
      failures: 0,
    });
    await clock.advance(20 * DAY);
    expect(calls).toEqual([20 * DAY, 40 * DAY]);
    renewal.stop();
  });

  test("a 90-day certificate waits 60 days in steps a real timer can take (FakeClock refuses longer ones)", async () => {
    const calls: number[] = [];
    const clock = new FakeClock();
    const renewal = new CertificateRenewal(identityValid(0, 90), {
      clock,
      events: new DaemonEvents(),
      renew: async () => (calls.push(clock.now()), identityValid(60, 150)),
      onRenewed: () => {},
      random: () => 0,
    });
    renewal.start();
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(60 * DAY - 1);
    expect(calls).toEqual([]);
    await clock.advance(1);
    expect(calls).toEqual([60 * DAY]);
    expect(MAX_SLEEP_MS).toBeLessThan(60 * DAY);
    renewal.stop();
  });

  test("the random delay is at most 5% of the life, so a fleet enrolled together spreads out", async () => {
    const calls: number[] = [];
    const { clock, renewal } = setup(
      async () => (calls.push(clock.now()), identityValid(30, 60)),
      () => 0.999,
    );
    renewal.start();
    await clock.advance(22 * DAY);
    expect(calls).toHaveLength(1);
    expect(calls[0]!).toBeGreaterThan(20 * DAY + 1.4 * DAY);
    expect(calls[0]!).toBeLessThanOrEqual(20 * DAY + 1.5 * DAY);
    renewal.stop();
  });

  test("a failed renewal is retried with growing backoff, logged with its reason, and stops at stop()", async () => {
    let attempts = 0;
    const { clock, lines, told, renewed, renewal } = setup(
      async () => {
        attempts++;
        throw new Error("control plane unreachable");
      },
      () => 0.5,
    );
    renewal.start();
    await clock.advance(20.75 * DAY); // two thirds of 30 days, plus half of the 5% random delay
    expect(attempts).toBe(1);
    await clock.advance(30_000); // half of the first 1-minute ceiling
    expect(attempts).toBe(2);
    await clock.advance(60_000); // half of 2 minutes
    expect(attempts).toBe(3);
    expect(renewed).toEqual([]);
    expect(lines.filter((l) => l.type === "warn").map((l) => l.message)).toEqual(
      Array(3).fill("certificate renewal failed; retrying"),
    );
    expect(renewal.view()).toMatchObject({ lastError: "control plane unreachable", failures: 3 });
    expect(told.at(-1)).toEqual({
      type: "renewal",
      ok: false,
      code: "UNEXPECTED",
      error: "control plane unreachable",
      notAfter: new Date(EPOCH + 30 * DAY),
      expired: false,
      retryAt: new Date(clock.wallNow().getTime() + 120_000), // half of the third ceiling, 4 minutes
    });
    renewal.stop();
    await clock.advance(DAY);
    expect(attempts).toBe(3);
  });

  test("past expiry, failures are logged as errors that name the fix", async () => {
    const { clock, lines, renewal } = setup(
      async () => {
        throw new Error("401 UNAUTHENTICATED");
      },
      () => 0.5,
    );
    renewal.start();
    await clock.advance(31 * DAY);
    const errors = lines.filter((l) => l.type === "error").map((l) => String(l.message));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toContain("connector enroll --force");
    renewal.stop();
  });
});
