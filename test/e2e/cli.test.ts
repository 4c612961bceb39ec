/** The command line of the compiled binary: version, help, usage errors and their exit codes. */
import { describe, expect } from "bun:test";
import { test } from "../support/e2e.ts";
import { runConnector } from "../support/binary.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

describe("connector CLI", () => {
  test("--version prints version, commit, build date and target", async () => {
    const { exitCode, stdout } = await runConnector(["--version"]);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(
      /^connector \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,}(-dirty)?|unknown), built \d{4}-\d\d-\d\dT[\d:]+Z, target linux-[a-z0-9-]+\)\n$/,
    );
  });

  test("--help lists the five subcommands; a subcommand's --help shows its flags", async () => {
    const root = await runConnector(["--help"]);
    expect(root.exitCode).toBe(0);
    for (const sub of ["preflight", "enroll", "run", "status", "upgrade"])
      expect(root.stdout + root.stderr).toContain(sub);
    const run = await runConnector(["run", "--help"]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout + run.stderr).toContain("--tunnels");
    expect(run.stdout + run.stderr).toContain("--state-dir");
  });

  test("no help text or refusal cites a section of a document users do not have", async () => {
    for (const args of [
      ["--help"],
      ...["preflight", "enroll", "run", "status", "upgrade"].map((sub) => [sub, "--help"]),
      ["preflight"],
      ["upgrade"],
    ]) {
      const { stdout, stderr } = await runConnector(args);
      expect(`${stdout}${stderr}`, args.join(" ")).not.toMatch(/§|PRODUCT\.md/);
    }
  });

  test("an unknown command is a usage error (exit 2)", async () => {
    const { exitCode, stderr } = await runConnector(["frobnicate"]);
    expect(exitCode).toBe(2);
    expect(stderr).toContain('unknown command "frobnicate"');
  });

  test("an invalid setting names itself and its source, exit 2", async () => {
    const { exitCode, stderr } = await runConnector(["status", "--log-format", "xml"]);
    expect(exitCode).toBe(2);
    expect(stderr).toContain('log-format = "xml" (from flag --log-format)');
    const fromEnv = await runConnector(["status", "--state-dir", "/tmp/none"], {
      env: { CONNECTOR_LOG_LEVEL: "loud" },
    });
    expect(fromEnv.exitCode).toBe(2);
    expect(fromEnv.stderr).toContain("environment variable CONNECTOR_LOG_LEVEL");
  });

  test("global flags may come before the subcommand", async () => {
    const { exitCode, stdout } = await runConnector(["--state-dir", "/nonexistent/state", "status", "--json"]);
    expect(exitCode).toBe(44);
    expect(JSON.parse(stdout).state).toBe("not-enrolled");
    const bad = await runConnector(["--log-level=bogus", "status"]);
    expect(bad.exitCode).toBe(2);
  });

  test("upgrade without a release source says how to name one, exits 24 and changes nothing", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "cli-upgrade-"));
    try {
      const { exitCode, stdout, stderr } = await runConnector(["upgrade", "--state-dir", stateDir]);
      expect(exitCode).toBe(24);
      expect(stdout).toBe("");
      expect(stderr).toContain("[NO_RELEASE_SOURCE]");
      expect(stderr).toContain("CONNECTOR_MANIFEST_URL");
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test("an unknown flag or a stray argument is a usage error naming it, exit 2", async () => {
    const typo = await runConnector(["status", "--state-dri", "/x"]);
    expect(typo.exitCode).toBe(2);
    expect(typo.stdout).toBe("");
    expect(typo.stderr).toContain("unknown flag --state-dri for status; did you mean --state-dir?");
    const stray = await runConnector(["run", "now"]);
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toContain('unexpected argument "now"');
    const port = await runConnector(["run", "--metrics", "127.0.0.1:99999"]);
    expect(port.exitCode).toBe(2);
    expect(port.stderr).toContain("--metrics");
    expect(port.stderr).not.toContain("unexpected failure");
  });

  test("upgrade's actions are exclusive: a usage error, exit 2", async () => {
    const { exitCode, stderr } = await runConnector(["upgrade", "--check", "--rollback"]);
    expect(exitCode).toBe(2);
    expect(stderr).toContain("separate actions");
  });
});
