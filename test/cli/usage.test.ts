/**
 * Usage errors of every command, run in-process: an unknown flag, a stray argument, a missing value, a
 * switch given a value or a bad setting value is exit 2 before the command does anything, and the
 * message names the flag (and the nearest known one for a typo).
 */
import { describe, expect, test } from "bun:test";
import { citesNothingOutside, runCli } from "./harness.ts";

const COMMANDS = ["preflight", "enroll", "run", "status", "upgrade"] as const;

/** Runs a command line that must be a usage error; returns its stderr. */
async function usageError(argv: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await runCli(argv, env);
  expect(result.code, `${argv.join(" ")}: ${result.stderr}`).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr).toStartWith("error: ");
  expect(citesNothingOutside(result.stderr)).toBe(true);
  return result.stderr;
}

describe.each(COMMANDS)("connector %s", (command) => {
  test("an unknown flag is named with the nearest known one", async () => {
    expect(await usageError([command, "--state-dri", "/x"])).toContain(
      `unknown flag --state-dri for ${command}; did you mean --state-dir?`,
    );
    expect(await usageError([command, "--log-levle=debug"])).toContain("did you mean --log-level?");
    const far = await usageError([command, "--bogus"]);
    expect(far).toContain(`unknown flag --bogus for ${command}`);
    expect(far).toContain(`See connector ${command} --help.`);
    expect(await usageError([command, "-x"])).toContain(`unknown flag -x for ${command}`);
  });

  test("a stray argument is a usage error", async () => {
    expect(await usageError([command, "extra"])).toContain(`unexpected argument "extra": ${command} takes flags only`);
    expect(await usageError([command, "--log-level", "info", "extra"])).toContain('unexpected argument "extra"');
  });

  test("a flag without its value, a switch with one, a flag given twice", async () => {
    expect(await usageError([command, "--state-dir"])).toContain("--state-dir needs a value: --state-dir DIR");
    expect(await usageError([command, "--state-dir", "--log-level", "info"])).toContain("--state-dir needs a value");
    expect(await usageError([command, "--help=yes"])).toContain("unknown flag --help");
    expect(await usageError([command, "--log-level", "info", "--log-level=debug"])).toContain(
      "--log-level is given twice",
    );
  });

  test("a bad setting value names the flag and where it came from, before anything runs", async () => {
    expect(await usageError([command, "--log-level", "loud"])).toContain(
      'Invalid setting --log-level = "loud" (from flag --log-level): expected one of silent',
    );
    expect(await usageError([command], { CONNECTOR_LOG_FORMAT: "xml" })).toContain(
      "(from environment variable CONNECTOR_LOG_FORMAT)",
    );
  });

  test("--help and -h: exit 0, the flags with their env names", async () => {
    for (const help of [
      [command, "--help"],
      [command, "-h"],
      ["--help", command],
      [command, "--bogus", "--help"],
    ]) {
      const result = await runCli(help);
      expect(result.code).toBe(0);
      expect(result.stdout).toStartWith(`Usage: connector ${command} [flags]`);
      expect(result.stdout).toContain("env CONNECTOR_STATE_DIR");
      expect(result.stderr).toBe("");
      expect(citesNothingOutside(result.stdout)).toBe(true);
    }
  });
});

describe("values of one command", () => {
  test("run: ports, counts and words out of range are refused with the flag named", async () => {
    expect(await usageError(["run", "--metrics", "127.0.0.1:99999"])).toContain(
      'Invalid setting --metrics = "127.0.0.1:99999" (from flag --metrics): port 99999 is out of range',
    );
    expect(await usageError(["run", "--health=0.0.0.0:0"])).toContain("--health");
    expect(await usageError(["run", "--health=:8080"])).toContain("the host is missing");
    expect(await usageError(["run", "--tunnels", "0"])).toContain("--tunnels");
    expect(await usageError(["run", "--tunnels", "-1"])).toContain("Invalid setting --tunnels");
    expect(await usageError(["run", "--auto-upgrade", "maybe"])).toContain("--auto-upgrade");
    expect(await usageError(["run", "--upgrade-window", "25:00-26:00"])).toContain("--upgrade-window");
    expect(await usageError(["run", "--name", "  "])).toContain("--name");
  });

  test("a setting a command does not take is an unknown flag for it", async () => {
    expect(await usageError(["status", "--tunnels", "2"])).toContain("unknown flag --tunnels for status");
    expect(await usageError(["status", "--proxy", "http://p:1"])).toContain("unknown flag --proxy for status");
    expect(await usageError(["enroll", "--metrics", "127.0.0.1:9300"])).toContain("unknown flag --metrics for enroll");
  });

  test("preflight and enroll: a proxy URL is checked, never echoed", async () => {
    for (const command of ["preflight", "enroll"]) {
      const stderr = await usageError([command, "--proxy", "https://ops:s3cret@proxy.example:3128"]);
      expect(stderr).toContain("Invalid setting --proxy (value not shown");
      expect(stderr).not.toContain("s3cret");
    }
    expect(await usageError(["enroll", "--no-proxy"])).toContain("--no-proxy needs a value: --no-proxy LIST");
  });

  test("a provisioning key given without --key is not echoed", async () => {
    const stderr = await usageError(["enroll", "cnk1.S3cretKeyMaterial"]);
    expect(stderr).toContain("a provisioning key? give it with --key-file");
    expect(stderr).not.toContain("S3cret");
  });

  test("upgrade: --version is checked; the actions are exclusive", async () => {
    expect(await usageError(["upgrade", "--version", "latest"])).toContain(
      'invalid --version "latest": expected a version such as 1.4.2',
    );
    expect(await usageError(["upgrade", "--check", "--rollback"])).toContain("separate actions");
    expect(await usageError(["upgrade", "--rollback", "--version", "1.2.3"])).toContain(
      "--version goes with a plain `connector upgrade`",
    );
    expect(await usageError(["upgrade", "--channel", "Not A Channel"])).toContain("--channel");
  });
});

describe("connector", () => {
  test("an unknown command is named with the nearest one, or the list when none is near", async () => {
    expect(await usageError(["stauts"])).toContain('unknown command "stauts"; did you mean status?');
    expect(await usageError(["enrol", "--key-file", "/k"])).toContain("did you mean enroll?");
    expect(await usageError(["frobnicate"])).toContain(
      'unknown command "frobnicate"; the commands are preflight, enroll, run, status, upgrade',
    );
  });

  test("before the command: only settings' flags, the help and the version", async () => {
    expect(await usageError(["--state-dri", "/x", "status"])).toContain(
      "unknown flag --state-dri; did you mean --state-dir?",
    );
    expect(await usageError(["--json", "status"])).toContain("a command's own flags go after the command");
    expect(await usageError(["--tunnels", "3", "status"])).toContain("unknown flag --tunnels for status");
    expect(await usageError(["--state-dir", "/x"])).toContain("no command given");
    expect(await usageError(["--version", "status"])).toContain("--version goes alone");
  });

  test("no arguments: the help on stderr, exit 2", async () => {
    const result = await runCli([]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Usage: connector [global flags] COMMAND [flags]");
  });

  test("--version and -v print one line", async () => {
    for (const flag of ["--version", "-v"]) {
      const result = await runCli([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^connector \S+ \(commit .*, target .*\)\n$/);
    }
  });
});
