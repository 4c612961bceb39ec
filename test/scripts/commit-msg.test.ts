/**
 * The commit-msg hook (.githooks/commit-msg, see CONTRIBUTING.md) takes a short subject with a body and
 * refuses a long subject or a missing body; shellcheck finds nothing in it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const HOOK = resolve(import.meta.dir, "../../.githooks/commit-msg");
const work = mkdtempSync(join(tmpdir(), "commit-msg-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function check(message: string): { code: number; stderr: string } {
  const file = join(work, "MSG");
  writeFileSync(file, message);
  const r = Bun.spawnSync({ cmd: ["bash", HOOK, file], stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stderr: r.stderr.toString() };
}

describe(".githooks/commit-msg", () => {
  test("a short subject, a blank line and a body pass; git's comment lines do not count", () => {
    expect(check("Split the tunnel code\n\nIt did three jobs.\n# Please enter the commit message\n").code).toBe(0);
  });

  test("a subject over 72 characters is refused with its length", () => {
    const r = check(`${"x".repeat(73)}\n\nWhy.\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("73 characters");
  });

  test("a subject without a body is refused", () => {
    const r = check("Only a subject\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("body that says why");
  });

  test("merge commits pass as git writes them", () => {
    expect(check("Merge branch 'i11-daemon'\n").code).toBe(0);
  });

  test("shellcheck finds nothing in it", () => {
    const binary = Bun.which("shellcheck");
    if (!binary) throw new Error("shellcheck is not installed: apt-get install shellcheck (CI installs it)");
    const r = Bun.spawnSync({ cmd: [binary, HOOK], stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });
});
