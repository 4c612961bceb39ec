/**
 * The repository stands alone: someone who clones it has only what is in it. Its documents never send a
 * reader to a file outside the repository (the product specification the project was built from is not
 * part of it), never cite a "§N" of a document they do not have, and their relative links resolve.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");
const DOCS = [
  "README.md",
  "CONTRIBUTING.md",
  "BENCHMARKS.md",
  "test/cloud/README.md",
  "src/upgrade/README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** Every "§N" that is not preceded by the name of a document in the repository (or an RFC). */
export function strayCitations(text: string, isProtocolDoc: boolean): string[] {
  const stray: string[] = [];
  for (const m of text.matchAll(/§\s?\d+(?:\.\d+)*/g)) {
    const before = text.slice(Math.max(0, m.index - 24), m.index);
    // "PROTOCOL §5", "docs/PROTOCOL.md §3.2", "RFC 6455 §5.3", a range "§4–§5" that began with one of those.
    if (/(PROTOCOL(\.md)?|RFC \d+|§\d+(\.\d+)*[–-]|§\d+(\.\d+)*(, |\/| and | or ))\s?$/.test(before)) continue;
    if (isProtocolDoc) continue; // its own sections
    stray.push(`${before.replace(/\s+/g, " ")}${m[0]}`);
  }
  return stray;
}

describe("documents of the repository", () => {
  for (const doc of DOCS) {
    test(`${doc}: no reference outside the repository, links resolve`, () => {
      const text = readFileSync(join(ROOT, doc), "utf8");
      expect(text).not.toMatch(/\.\.\/shared|PRODUCT\.md|seeds\//);
      expect(strayCitations(text, doc === "docs/PROTOCOL.md")).toEqual([]);
      for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
        const path = resolve(dirname(join(ROOT, doc)), target);
        expect(relative(ROOT, path).startsWith(".."), `${doc} links outside the repository: ${target}`).toBe(false);
        expect(existsSync(path), `${doc} links to a missing file: ${target}`).toBe(true);
      }
    });
  }

  test("the citation rule itself: a bare section number is caught, a PROTOCOL or RFC one is not", () => {
    expect(strayCitations("see §3 for details", false)).toEqual(["see §3"]);
    expect(strayCitations("docs/PROTOCOL.md §3.2 and PROTOCOL §5.1, RFC 6455 §5.3, PROTOCOL §4–§5", false)).toEqual([]);
  });
});
