/** Small executable shell scripts that stand in for connector binaries in upgrade tests. */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";

/** The text of a "binary" that prints what a connector prints for `--version`. Padding makes two versions differ in size. */
export function fakeBinaryText(version: string, target = "linux-x64", padding = 0): string {
  return `#!/bin/sh\necho "connector ${version} (bun test, target ${target})"\n# ${"x".repeat(padding)}\n`;
}

export function writeFakeBinary(path: string, version: string, target = "linux-x64", padding = 0): Buffer {
  writeFileSync(path, fakeBinaryText(version, target, padding));
  chmodSync(path, 0o755);
  return readFileSync(path);
}

/** What `path --version` prints (trimmed), run with an empty environment; throws when it does not exit 0. */
export function runVersion(path: string): string {
  const child = Bun.spawnSync([path, "--version"], { env: {} });
  if (child.exitCode !== 0) throw new Error(`${path} --version exited ${child.exitCode}: ${child.stderr.toString()}`);
  return child.stdout.toString().trim();
}
