/**
 * install.sh is plain bash that shellcheck (Debian's package; CI installs it) finds nothing in, as
 * written and as `bun run release` bakes it (roots and units inside); and its shape is the one that
 * makes a cut download harmless: functions only, called by the last line `{ main "$@"; }`.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bakeInstallerCopy, INSTALL_SH } from "../support/installer.ts";
import { makeFakeKeys } from "../support/release-fixture.ts";

const work = mkdtempSync(join(tmpdir(), "install-shellcheck-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function shellcheck(path: string): { code: number; output: string } {
  const binary = Bun.which("shellcheck");
  if (binary === null)
    throw new Error("shellcheck is not installed: apt-get install shellcheck (CI installs it); this test needs it");
  const result = Bun.spawnSync([binary, "--shell=bash", "--severity=style", path], { stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, output: `${result.stdout.toString()}${result.stderr.toString()}` };
}

describe("install.sh", () => {
  test("shellcheck finds nothing in it", () => {
    const { code, output } = shellcheck(INSTALL_SH);
    expect(code, output).toBe(0);
  });

  test("shellcheck finds nothing in it once baked with roots, a release host and the units", () => {
    const keys = makeFakeKeys();
    const baked = bakeInstallerCopy(join(work, "install.sh"), {
      rootSpkis: keys.roots.map((r) => r.publicKey),
      baseUrl: "https://releases.example.com/connector",
      channel: "beta",
    });
    const { code, output } = shellcheck(baked);
    expect(code, output).toBe(0);
  });

  test('its last line is { main "$@"; } and nothing else runs at the top level but set and the baked values', () => {
    const lines = readFileSync(INSTALL_SH, "utf8").split("\n");
    expect(lines.at(-1)).toBe("");
    expect(lines.at(-2)).toBe('{ main "$@"; }');
    // Top-level lines: column 0, outside here-documents, not comments, function headers or closers.
    const topLevel: string[] = [];
    let heredoc: string | undefined;
    let depth = 0;
    for (const line of lines.slice(0, -2)) {
      if (heredoc !== undefined) {
        if (line === heredoc) heredoc = undefined;
        continue;
      }
      const opens = /<<-?'?([A-Z_]+)'?/.exec(line);
      if (opens) heredoc = opens[1];
      if (/^[a-z_]+\(\) \{/.test(line)) {
        if (!/\}\s*$/.test(line)) depth++;
        continue;
      }
      if (line === "}") {
        depth--;
        continue;
      }
      if (depth === 0 && line !== "" && !line.startsWith("#")) topLevel.push(line);
    }
    expect(topLevel).toEqual([
      "set -euo pipefail",
      'RELEASE_BASE_URL=""',
      'RELEASE_CHANNEL=""',
      "ROOT_PUBLIC_KEYS=$(cat <<'ROOTS'",
      ")",
    ]);
  });
});
