/**
 * Certificate renewal (PROTOCOL §3.4) with the compiled binary: a cloud that issues 12-second
 * certificates, so `connector run` renews about 8 s after enrolling. The new identity is stored
 * atomically with a new key, status shows the new expiry, both tunnels move onto the new certificate
 * one at a time, and a user connection opened before the renewal keeps working through it.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { splitAddress, roundTrip } from "../support/apps.ts";
import type { DaemonProcess } from "../support/daemon-process.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { until } from "../support/wait.ts";

let stack: Stack;
let daemon: DaemonProcess;

beforeAll(async () => {
  stack = await startStack({ gateways: 2, certTtlSeconds: 12, daemons: [{ tunnels: 2, gracePeriodSeconds: 5 }] });
  daemon = stack.daemons[0]!;
}, 120_000);

afterAll(() => stack?.stop(), 30_000);

function readIdentity(): { certificate: string; renewedAt?: string } {
  return JSON.parse(readFileSync(join(daemon.stateDir, "identity", "identity.json"), "utf8"));
}

test("the certificate is renewed at two thirds of its life; tunnels move to it and users keep working", async () => {
  const before = (await daemon.status()).snapshot!;
  const certificateBefore = readIdentity().certificate;
  const keyBefore = await Bun.file(join(daemon.stateDir, "identity", "key.pem")).text();

  // A user connection that is open across the renewal.
  let echoed = "";
  const { hostname, port } = splitAddress(stack.echoListen);
  const user = await Bun.connect({
    hostname,
    port,
    socket: { data: (_s, d) => void (echoed += new TextDecoder().decode(d)) },
  });
  user.write("before ");

  const after = await daemon.waitFor(
    "a renewed certificate with both tunnels up",
    (s) =>
      s.certificate.notAfter !== before.certificate.notAfter &&
      s.state === "connected" &&
      s.tunnels.filter((t) => t.state === "up").length === 2,
    60_000,
  );
  expect(Date.parse(after.certificate.notAfter!)).toBeGreaterThan(Date.parse(before.certificate.notAfter!));
  await daemon.waitFor(
    "both tunnels moved",
    () => (daemon.output().match(/tunnel moved to the renewed certificate/g) ?? []).length === 2,
    60_000,
  );

  const stored = readIdentity();
  expect(stored.certificate).not.toBe(certificateBefore);
  expect(stored.renewedAt).toBeDefined();
  const keyPath = join(daemon.stateDir, "identity", "key.pem");
  expect(await Bun.file(keyPath).text()).not.toBe(keyBefore); // a new key pair, not the old key re-certified
  expect(statSync(keyPath).mode & 0o777).toBe(0o600);
  expect(daemon.output()).toContain("certificate renewed");
  expect(daemon.output()).not.toContain("BEGIN PRIVATE KEY");

  user.write("after");
  await until(
    "the echo of both writes",
    () => (echoed === "before after" ? true : undefined),
    30_000,
    () => echoed,
  );
  user.end();
  expect(new TextDecoder().decode(await roundTrip(stack.echoListen, new TextEncoder().encode("new user")))).toBe(
    "new user",
  );
}, 180_000);
