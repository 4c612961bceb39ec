/**
 * `curl … | sudo bash` runs whatever arrived: install.sh must do nothing when the download is cut.
 * The baked script, cut at every offset of its last 300 bytes, at every line boundary and at ~100
 * random offsets, is piped to `bash -s -- --root R --base-url U`: no request may reach U and R must
 * stay empty. The whole script, piped the same way, does reach U (the check can fail).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bakeInstallerCopy,
  describeRun,
  runInstaller,
  snapshot,
  startCountingServer,
  type CountingServer,
} from "../support/installer.ts";
import { makeFakeKeys } from "../support/release-fixture.ts";

const work = mkdtempSync(join(tmpdir(), "install-truncation-"));
const root = join(work, "root");
let counter: CountingServer;
let text: Buffer;

beforeAll(() => {
  counter = startCountingServer();
  mkdirSync(root);
  const keys = makeFakeKeys();
  text = readFileSync(
    bakeInstallerCopy(join(work, "install.sh"), {
      rootSpkis: keys.roots.map((r) => r.publicKey),
      baseUrl: counter.url,
    }),
  );
});

afterAll(() => {
  counter?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A small deterministic generator (mulberry32): the same "random" offsets on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Lengths to cut the script to. The last one that is not the whole script leaves out only the final
 * newline: `{ main "$@"; }` is then complete (the whole program is there), so it is not a cut.
 */
function offsets(): number[] {
  const whole = text.length - 1;
  const set = new Set<number>();
  for (let at = Math.max(0, text.length - 300); at < whole; at++) set.add(at);
  for (let at = 0; at < whole; at++) if (text[at] === 0x0a) set.add(at + 1);
  const next = random(10);
  for (let i = 0; i < 100; i++) set.add(Math.floor(next() * whole));
  return [...set].filter((at) => at < whole).sort((x, y) => x - y);
}

describe("install.sh cut short", () => {
  test("the whole script, piped to bash, does reach the release host", async () => {
    const run = await runInstaller("-", ["--root", root, "--base-url", counter.url], { stdin: text });
    expect(run.code, describeRun(run)).toBe(5);
    expect(counter.requests).toBeGreaterThan(0);
  });

  test("cut at any of ~1,000 offsets, it sends no request and writes nothing", async () => {
    const before = counter.requests;
    const cuts = offsets();
    expect(cuts.length).toBeGreaterThan(900);
    const bad: string[] = [];
    for (const at of cuts) {
      const run = await runInstaller("-", ["--root", root, "--base-url", counter.url], {
        stdin: text.subarray(0, at),
        timeoutMs: 20_000,
      });
      if (counter.requests !== before || snapshot(root).size !== 0) {
        bad.push(
          `cut at ${at} (${JSON.stringify(text.subarray(Math.max(0, at - 40), at).toString())}): ${describeRun(run)}`,
        );
        break;
      }
    }
    expect(bad).toEqual([]);
  }, 600_000);
});
