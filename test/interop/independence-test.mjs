// @ts-check
/**
 * The premise of the suite: the interop gateway and harness are code we did not share with the
 * connector. They import only Node.js, the `ws` package (node-forge to make a foreign certificate), and
 * each other; never src/ or test/cloud/, whose misreadings of PROTOCOL.md they exist to catch.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
/** Static imports and re-exports, dynamic import, require and createRequire(…)(name), of a quoted name. */
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+(?:[\w\s{},*$]*?\sfrom\s+)?"([^"]+)"|\b(?:import|require|\))\(\s*"([^"]+)"\s*\)/g;
const PACKAGES = ["ws", "node-forge"];

/** @param {string} dir @returns {string[]} */
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".mjs") ? [join(dir, e.name)] : [],
  );

test("test/interop imports nothing of the connector or the reference cloud", () => {
  const files = walk(HERE);
  assert.ok(files.length >= 15, "the scan sees the suite");
  const bad = [];
  for (const file of files) {
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const specifier = /** @type {string} */ (m[1] ?? m[2]);
      const local = specifier.startsWith(".") && !relative(HERE, resolve(dirname(file), specifier)).startsWith("..");
      if (!(local || specifier.startsWith("node:") || PACKAGES.includes(specifier)))
        bad.push(`${relative(HERE, file)} imports ${specifier}`);
    }
  }
  assert.deepEqual(bad, []);
});
