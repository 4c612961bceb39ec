/** runPreflight on a faked host: host checks, then net.target, in the report's order; a bad key stops it first. */
import { afterAll, expect, test } from "bun:test";
import { runPreflight } from "../../src/preflight/preflight.ts";
import { HOST_CHECK_IDS } from "../../src/preflight/report.ts";
import { fakeHost } from "../support/fake-host.ts";

const host = fakeHost();
afterAll(() => host.remove());
const overrides = {
  platform: "linux",
  machine: "x86_64",
  kernel: "6.1",
  binaryTarget: "linux-x64",
  binarySize: 1024,
  clockSync: { state: "synced" as const, detail: "ok" },
};

test("without a key or identity: every host check, then net.target WARN and no other network row", async () => {
  const report = await runPreflight({
    stateDir: host.stateDir,
    env: {},
    noProxy: [],
    host: { root: host.root, overrides },
  });
  expect(report.checks.map((c) => c.id)).toEqual([...HOST_CHECK_IDS, "net.target"]);
  expect(report.result).toBe("warn");
});

test("a malformed key is a usage error (exit 2) before anything is probed", async () => {
  const run = runPreflight({
    stateDir: host.stateDir,
    key: "cnk1.AAAA",
    env: {},
    noProxy: [],
    host: { root: host.root, overrides },
  });
  await expect(run).rejects.toMatchObject({ exitCode: 2, code: "KEY_TRUNCATED" });
});
