/** `status` in-process on an empty state dir: cheap and offline, and it shows flags and io.env are read. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { STATUS_EXIT } from "../../src/status/schema.ts";
import { runCli } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "cli-status-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function state(stdout: string): unknown {
  return (JSON.parse(stdout) as { state: unknown }).state;
}

describe("connector status", () => {
  test("an empty state dir is not enrolled: exit 44, JSON on stdout through io", async () => {
    const result = await runCli(["status", "--state-dir", dir, "--json"]);
    expect(result.code).toBe(STATUS_EXIT["not-enrolled"]);
    expect(result.code).toBe(44);
    expect(state(result.stdout)).toBe("not-enrolled");
  });

  test("every accepted spelling: --flag=value, global flags before the command", async () => {
    for (const argv of [
      ["status", `--state-dir=${dir}`, "--json"],
      ["--state-dir", dir, "status", "--json"],
      [`--state-dir=${dir}`, "--log-level", "warn", "status", "--json", "--log-format=json"],
    ]) {
      const result = await runCli(argv);
      expect(result.code, argv.join(" ")).toBe(44);
      expect(state(result.stdout)).toBe("not-enrolled");
    }
  });

  test("the state dir comes from io.env, else from the env file io.env names", async () => {
    const fromEnv = await runCli(["status", "--json"], { CONNECTOR_STATE_DIR: dir });
    expect(fromEnv.code).toBe(44);
    const envFile = join(dir, "connector.env");
    writeFileSync(envFile, `CONNECTOR_STATE_DIR=${dir}\n`);
    const fromFile = await runCli(["status", "--json"], { CONNECTOR_ENV_FILE: envFile });
    expect(fromFile.code).toBe(44);
    const fromFlag = await runCli(["status", "--json", "--env-file", join(dir, "absent.env"), "--log-level", "loud"]);
    expect(fromFlag.code).toBe(2);
  });

  test("without --json: the text view", async () => {
    const result = await runCli(["status", "--state-dir", dir]);
    expect(result.code).toBe(44);
    expect(result.stdout).toContain("not-enrolled");
  });
});
