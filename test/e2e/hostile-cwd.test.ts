/**
 * The compiled binary runs the connector and only the connector, whatever directory it is started
 * in and whatever Bun runtime variables the environment holds: a `.env`, `bunfig.toml`,
 * `tsconfig.json` or `package.json` in the working directory is not read, and `BUN_OPTIONS`,
 * `BUN_BE_BUN`, `BUN_INSPECT*` and `BUN_CONFIG_VERBOSE_FETCH` do nothing (build.ts,
 * scripts/neutralize-runtime-env.ts).
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { connectorBinary, runConnector, type RunResult } from "../support/binary.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";

let cloud: CloudProcess;
let root: string;
let cwd: string;
let marker: string;
let inspector: UnixSocketListener<undefined>;
let inspectorConnections = 0;

beforeAll(async () => {
  connectorBinary();
  cloud = await startCloud();
  root = mkdtempSync(join(tmpdir(), "e2e-hostile-cwd-"));
  cwd = join(root, "cwd");
  mkdirSync(cwd);
  marker = join(root, "preload-ran");
  // Code that, if it ever runs, leaves a marker file behind.
  writeFileSync(join(cwd, "x.js"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
  writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./x.js"]\n[run]\npreload = ["./x.js"]\n');
  writeFileSync(
    join(cwd, ".env"),
    // Each of these, if loaded, changes the outcome: another state dir, an unreachable proxy, an invalid log level.
    `CONNECTOR_STATE_DIR=${join(root, "wrong-state")}\nHTTPS_PROXY=http://127.0.0.1:1\nCONNECTOR_LOG_LEVEL=bogus\n`,
  );
  writeFileSync(join(cwd, "tsconfig.json"), '{"compilerOptions":{"paths":{"*":["./x.js"]}}}\n');
  writeFileSync(join(cwd, "package.json"), '{"name":"x","type":"commonjs","main":"./x.js"}\n');
  inspector = Bun.listen({
    unix: join(root, "inspector.sock"),
    socket: {
      open(socket: Socket<undefined>) {
        inspectorConnections++;
        socket.end();
      },
      data() {},
    },
  });
}, 120_000);

afterAll(async () => {
  inspector?.stop(true);
  await cloud?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Every runtime override at once: if any one of them is honoured, the run's outcome shows it. */
function hostileEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    BUN_OPTIONS: `--preload ${join(cwd, "x.js")}`,
    BUN_BE_BUN: "1",
    BUN_INSPECT_CONNECT_TO: `unix://${join(root, "inspector.sock")}`,
    BUN_INSPECT_PRELOAD: join(cwd, "x.js"),
    BUN_CONFIG_VERBOSE_FETCH: "curl",
    ...extra,
  };
}

function expectNothingRan(result: RunResult): void {
  const output = result.stdout + result.stderr;
  expect(existsSync(marker)).toBe(false);
  expect(inspectorConnections).toBe(0);
  expect(output).not.toContain("curl ");
  expect(output).not.toContain("HTTP/1.1 ");
}

describe("the working directory and Bun runtime variables do not change the binary", () => {
  test("--version prints the connector's version line, runs no preload, connects no inspector", async () => {
    const result = await runConnector(["--version"], { cwd, env: hostileEnv() });
    expectNothingRan(result);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^connector \d+\.\d+\.\d+ \(commit /);
  });

  test("enroll uses the settings it was given, not the directory's .env, and prints no request", async () => {
    const stateDir = join(root, "state");
    const result = await runConnector(["enroll", "--log-format", "json", "--name", "cwd-host", "--json"], {
      cwd,
      env: hostileEnv({ CONNECTOR_STATE_DIR: stateDir, CONNECTOR_PROVISIONING_KEY: cloud.provisioningKey }),
    });
    expectNothingRan(result);
    expect(result.stdout + result.stderr).not.toContain(cloud.provisioningKey.slice(5, 30));
    expect(result.exitCode).toBe(0);
    expect(existsSync(join(stateDir, "identity", "key.pem"))).toBe(true);
    expect(existsSync(join(root, "wrong-state"))).toBe(false);

    const status = await runConnector(["status", "--json"], {
      cwd,
      env: hostileEnv({ CONNECTOR_STATE_DIR: stateDir }),
    });
    expectNothingRan(status);
    // Enrolled and not running: it read the state dir the environment chose, with the default log level.
    expect(status.exitCode).toBe(42);
    expect(JSON.parse(status.stdout).state).toBe("not-running");
  });
});
