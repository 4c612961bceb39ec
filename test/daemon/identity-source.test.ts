import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { obtainIdentity } from "../../src/daemon/identity-source.ts";
import { generateKeyPair } from "../../src/identity/keypair.ts";
import { createLogger } from "../../src/log.ts";
import { startFakeControlPlane } from "../control/fake-control-plane.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";

const cloud = startFakeControlPlane();
afterAll(() => cloud.stop());
const smallKeys = await generateKeyPair(2048);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "identity-source-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("obtainIdentity", () => {
  test("an unwritable state dir is retried every 5 minutes, with no enroll request", async () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const log = createLogger({ level: "debug", format: "json", write: (line) => lines.push(line) });
    const abort = new AbortController();
    let probes = 0;
    let writable = false;
    const before = cloud.requests.length;
    const result = obtainIdentity({
      stateDir: join(dir, "state"),
      env: { CONNECTOR_PROVISIONING_KEY: cloud.key },
      noProxy: [],
      log,
      clock,
      signal: abort.signal,
      machineIdPath: join(dir, "machine-id"),
      enrollDeps: {
        generateKeyPair: async () => smallKeys,
        machineIdPath: join(dir, "machine-id"),
        probeWritable: () => {
          probes++;
          if (!writable) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        },
      },
    });
    await settle(() => probes === 1 && clock.pendingTimers === 1);
    expect(probes).toBe(1);
    const error = lines.map((l) => JSON.parse(l)).find((l) => l.level === "error");
    expect(error.msg).toContain("state dir cannot be written");
    expect(error.code).toBe("STATE_DIR_UNWRITABLE");
    expect(error.retryInSeconds).toBe(300);

    // No fast loop: nothing more for almost five minutes.
    await clock.advance(299_000);
    expect(probes).toBe(1);
    await clock.advance(1_000);
    await settle(() => probes === 2 && clock.pendingTimers === 1);
    expect(probes).toBe(2);
    expect(cloud.requests.length).toBe(before);

    // Once the disk is fixed, the next attempt enrolls.
    writable = true;
    await clock.advance(300_000);
    const identity = await result;
    expect(identity?.connectorId).toBe("conn-1");
    expect(probes).toBe(3);
    abort.abort();
  });
});
