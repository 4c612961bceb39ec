import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildInfo } from "../../src/version.ts";
import { UpgradeError } from "../../src/upgrade/errors.ts";
import { selfCheck } from "../../src/upgrade/self-check.ts";

const dir = mkdtempSync(join(tmpdir(), "self-check-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function script(body: string, mode = 0o755): string {
  const path = join(dir, `candidate-${n++}`);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

const EXPECTED = { version: "1.5.0", target: "linux-x64" };
const GOOD_LINE = "connector 1.5.0 (commit abc123, built 2026-06-01, target linux-x64)";

async function failure(path: string, timeoutMs?: number): Promise<string> {
  const err = await selfCheck(path, EXPECTED, timeoutMs).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UpgradeError);
  expect((err as UpgradeError).code).toBe("SELF_CHECK_FAILED");
  return (err as UpgradeError).message;
}

describe("selfCheck", () => {
  test("accepts a binary that prints the expected version and target", async () => {
    await selfCheck(script(`[ "$1" = --version ] || exit 3\necho "${GOOD_LINE}"`), EXPECTED);
  });

  test("accepts what this source tree's own --version prints (the format it checks is the real one)", async () => {
    const path = script(
      `exec "${process.execPath}" "${join(import.meta.dir, "..", "..", "src", "main.ts")}" --version`,
    );
    await selfCheck(path, { version: buildInfo.version, target: buildInfo.target }, 30_000);
  });

  test("another version: SELF_CHECK_FAILED", async () => {
    expect(
      await failure(script(`echo "connector 1.4.0 (commit abc123, built 2026-06-01, target linux-x64)"`)),
    ).toContain("connector 1.4.0");
  });

  test("another target: SELF_CHECK_FAILED", async () => {
    await failure(script(`echo "connector 1.5.0 (commit abc123, built 2026-06-01, target linux-arm64)"`));
  });

  test("a non-zero exit: SELF_CHECK_FAILED", async () => {
    expect(await failure(script(`echo "${GOOD_LINE}"\nexit 1`))).toContain("status 1");
  });

  test("a binary that hangs is killed at the deadline: SELF_CHECK_FAILED", async () => {
    expect(await failure(script("exec sleep 60"), 300)).toContain("did not answer");
  });

  test("a grandchild holding stdout open does not outlast the deadline", async () => {
    expect(await failure(script(`sleep 5 &\necho "${GOOD_LINE}"\nwait`), 300)).toContain("did not answer");
  });

  test("endless output is cut at the cap: SELF_CHECK_FAILED", async () => {
    expect(await failure(script(`while :; do echo "${GOOD_LINE}"; done`), 10_000)).toContain("more than 4096 bytes");
  });

  test("runs with an empty environment", async () => {
    process.env.SELF_CHECK_PROBE = "secret-value";
    try {
      await selfCheck(script(`[ -z "$SELF_CHECK_PROBE" ] || exit 7\necho "${GOOD_LINE}"`), EXPECTED);
    } finally {
      delete process.env.SELF_CHECK_PROBE;
    }
  });

  test("a file that cannot run: SELF_CHECK_FAILED", async () => {
    await failure(script(`echo "${GOOD_LINE}"`, 0o644));
    await failure(join(dir, "does-not-exist"));
  });
});
