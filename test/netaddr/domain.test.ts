import { describe, expect, test } from "bun:test";
import { domainMatches, formatDomainPattern, normaliseDomain, parseDomainPattern } from "../../src/netaddr/domain.ts";

describe("normaliseDomain", () => {
  const accepted: [string, string][] = [
    ["wiki.corp.example", "wiki.corp.example"],
    ["WIKI.Corp.Example", "wiki.corp.example"],
    ["wiki.corp.example.", "wiki.corp.example"],
    ["localhost", "localhost"],
    ["_sip._tcp.corp.example", "_sip._tcp.corp.example"],
    ["a-b.c-d.example", "a-b.c-d.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["1.2.3.example", "1.2.3.example"],
    ["host.0xzz", "host.0xzz"],
    [`${"a".repeat(63)}.example`, `${"a".repeat(63)}.example`],
  ];
  for (const [input, out] of accepted) {
    test(`accepts ${input.slice(0, 40)} as ${out.slice(0, 40)}`, () => expect(normaliseDomain(input)).toBe(out));
  }

  test("253 characters is the longest name, with or without its trailing dot", () => {
    const name = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    expect(name.length).toBe(253);
    expect(normaliseDomain(name)).toBe(name);
    expect(normaliseDomain(`${name}.`)).toBe(name);
    expect(normaliseDomain(`${name.slice(0, -1)}.dd`)).toBeUndefined(); // 254 characters, labels all short enough
  });

  const refused = [
    "",
    ".",
    "..",
    "a..b",
    ".a",
    "a.b..",
    `${"a".repeat(64)}.example`,
    "a b.example",
    "a/b.example",
    "a:b",
    "wiki.corp.example ",
    "*.corp.example",
    "bücher.example",
    "\u212Aorp.example",
    "127.1",
    "010.0.0.1",
    "10.0.0.1",
    "0x7f000001",
    "host.123",
    "host.0x1f",
  ];
  for (const input of refused) {
    test(`refuses ${JSON.stringify(input)}`, () => expect(normaliseDomain(input)).toBeUndefined());
  }
});

describe("wildcard patterns", () => {
  const wildcard = parseDomainPattern("*.corp.example")!;
  const cases: [string, boolean][] = [
    ["a.corp.example", true],
    ["a.b.corp.example", true],
    ["corp.example", false],
    ["xcorp.example", false],
    ["a.xcorp.example", false],
    ["corp.example.evil.com", false],
    ["a.corp.example.evil.com", false],
    ["example", false],
  ];
  for (const [name, expected] of cases) {
    test(`*.corp.example ${expected ? "matches" : "does not match"} ${name}`, () =>
      expect(domainMatches(wildcard, normaliseDomain(name)!)).toBe(expected));
  }

  test("an exact pattern matches only its own name", () => {
    const exact = parseDomainPattern("Corp.Example.")!;
    expect(formatDomainPattern(exact)).toBe("corp.example");
    expect(domainMatches(exact, "corp.example")).toBe(true);
    expect(domainMatches(exact, "a.corp.example")).toBe(false);
  });

  test("a leading dot means the same as *. only when asked for (NO_PROXY style)", () => {
    expect(parseDomainPattern(".corp.example")).toBeUndefined();
    expect(parseDomainPattern(".corp.example", true)).toEqual(wildcard);
  });

  for (const bad of [
    "*",
    "*.",
    "**.corp.example",
    "a.*.example",
    "*corp.example",
    "corp.*",
    "*.*.example",
    "*.127.1",
  ]) {
    test(`refuses pattern ${bad}`, () => expect(parseDomainPattern(bad)).toBeUndefined());
  }
});
