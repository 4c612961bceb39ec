import { describe, expect, test } from "bun:test";
import type { Catalog } from "../../src/control/api.ts";
import { isOneLine } from "../support/printable.ts";
import { AllowList, parsePortRange } from "../../src/dataplane/allow-list.ts";

const catalog: Catalog = {
  version: "v7",
  apps: [
    {
      name: "wiki",
      destinations: [
        { host: "wiki.corp.example", ports: "443" },
        { host: "*.corp.example", ports: "8000-8100" },
      ],
      servers: ["wiki.corp.example:443"],
    },
    {
      name: "db",
      destinations: [
        { host: "10.0.0.0/8", ports: "5432" },
        { host: "192.0.2.7", ports: "1-65535" },
        { host: "2001:db8::/32", ports: "22" },
        { host: "[2001:db8:ffff::1]", ports: "0-80" },
      ],
      servers: [],
    },
    { name: "mapped", destinations: [{ host: "::ffff:172.16.0.0/108", ports: "443" }], servers: [] },
    { name: "empty", destinations: [], servers: [] },
  ],
};
const list = AllowList.compile(catalog);

describe("AllowList.allows", () => {
  const cases: [string, string, number, boolean, string?][] = [
    // exact name, case, trailing dot
    ["wiki", "wiki.corp.example", 443, true, "wiki.corp.example"],
    ["wiki", "WIKI.Corp.Example.", 443, true, "wiki.corp.example"],
    ["wiki", "wiki.corp.example..", 443, false],
    ["wiki", "wiki.corp.example", 444, false],
    // wildcard: strictly below, not the suffix itself, not look-alikes
    ["wiki", "a.corp.example", 8000, true, "a.corp.example"],
    ["wiki", "a.b.corp.example", 8100, true, "a.b.corp.example"],
    ["wiki", "corp.example", 8000, false],
    ["wiki", "xcorp.example", 8000, false],
    ["wiki", "corp.example.evil.com", 8000, false],
    ["wiki", "a.corp.example", 7999, false],
    ["wiki", "a.corp.example", 8101, false],
    // a name never matches an IP rule, an IP never matches a name rule
    ["db", "db.corp.example", 5432, false],
    ["wiki", "10.1.2.3", 443, false],
    // CIDR and single IP
    ["db", "10.1.2.3", 5432, true, "10.1.2.3"],
    ["db", "11.1.2.3", 5432, false],
    ["db", "10.1.2.3", 5433, false],
    ["db", "192.0.2.7", 1, true],
    ["db", "192.0.2.7", 65535, true],
    ["db", "192.0.2.8", 80, false],
    // IPv4-mapped IPv6 against IPv4 rules, and a mapped rule against IPv4
    ["db", "::ffff:10.1.2.3", 5432, true, "10.1.2.3"],
    ["db", "::ffff:a01:203", 5432, true, "10.1.2.3"],
    ["db", "[::ffff:10.1.2.3]", 5432, true, "10.1.2.3"],
    ["db", "::ffff:11.1.2.3", 5432, false],
    ["mapped", "172.16.9.9", 443, true, "172.16.9.9"],
    ["mapped", "172.32.0.1", 443, false],
    // IPv6 CIDR and single address (bracketed rule), range starting at 0
    ["db", "2001:db8:1::5", 22, true, "2001:db8:1::5"],
    ["db", "2001:DB8:0:0::5", 22, true, "2001:db8::5"],
    ["db", "2001:db9::5", 22, false],
    ["db", "2001:db8:ffff::1", 80, true],
    ["db", "2001:db8:ffff::1", 1, true],
    ["db", "::ffff:10.1.2.3", 22, false],
    // hosts that are neither a valid name nor an IP
    ["db", "010.0.0.1", 5432, false],
    ["db", "10.1", 5432, false],
    ["db", "fe80::1%eth0", 22, false],
    ["wiki", "*.corp.example", 8000, false],
    ["wiki", "", 443, false],
  ];
  for (const [app, host, port, allowed, dialHost] of cases) {
    test(`${app}: ${JSON.stringify(host)} port ${port} is ${allowed ? "allowed" : "refused"}`, () => {
      const decision = list.allows(app, host, port);
      expect(decision.allowed).toBe(allowed);
      if (decision.allowed && dialHost) expect(decision.host).toBe(dialHost);
    });
  }

  test("port 0 is never allowed, even inside a range that starts at 0", () => {
    const decision = list.allows("db", "2001:db8:ffff::1", 0);
    expect(decision).toEqual({ allowed: false, reason: "port 0 is not a valid destination port" });
  });

  test("ports outside 1-65535 or not whole numbers are refused", () => {
    for (const port of [-1, 65536, 80.5, Number.NaN]) expect(list.allows("db", "192.0.2.7", port).allowed).toBe(false);
  });

  test("an unknown app is refused with a reason naming it; an app without destinations refuses all", () => {
    expect(list.allows("nope", "wiki.corp.example", 443)).toEqual({ allowed: false, reason: 'unknown app "nope"' });
    expect(list.allows("empty", "wiki.corp.example", 443).allowed).toBe(false);
    expect(list.hasApp("empty")).toBe(true);
  });

  test("destinations belong to their app: one app's rule does not open another app's stream", () => {
    expect(list.allows("db", "wiki.corp.example", 443).allowed).toBe(false);
    expect(list.allows("wiki", "192.0.2.7", 443).allowed).toBe(false);
  });

  test("a refusal reason escapes and bounds peer-supplied text", () => {
    const decision = list.allows("wiki", `evil\n${"x".repeat(500)}`, 443);
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) {
      expect(decision.reason).not.toContain("\n");
      expect(decision.reason.length).toBeLessThan(200);
    }
  });

  test("a refusal reason shows no control character of any kind (C1, DEL, bidi overrides too)", () => {
    for (const [app, host] of [
      ["nope\u009b2J\u202e", "wiki.corp.example"],
      ["wiki", "evil\u001b]0;x\u0007\u007f\u0085.example"],
    ]) {
      const decision = list.allows(app!, host!, 443);
      expect(decision.allowed).toBe(false);
      if (!decision.allowed) expect(isOneLine(decision.reason)).toBe(true);
    }
  });
});

describe("AllowList.compile", () => {
  test("invalid destinations are skipped and reported; the valid ones still apply", () => {
    const compiled = AllowList.compile({
      version: "v8",
      apps: [
        {
          name: "a",
          destinations: [
            { host: "a.*.example", ports: "443" },
            { host: "10.0.0.0/33", ports: "443" },
            { host: "ok.example", ports: "9-8" },
            { host: "ok.example", ports: "70000" },
            { host: "ok.example", ports: "0" },
            { host: "ok.example", ports: "443" },
          ],
          servers: [],
        },
      ],
    });
    expect(compiled.version).toBe("v8");
    expect(compiled.issues).toHaveLength(5);
    expect(compiled.issues[0]).toBe('app "a": destination skipped, invalid host "a.*.example"');
    expect(compiled.allows("a", "ok.example", 443).allowed).toBe(true);
    expect(compiled.allows("a", "ok.example", 9).allowed).toBe(false);
  });

  test("an app listed twice gets the union of its destinations and an issue", () => {
    const compiled = AllowList.compile({
      version: "v9",
      apps: [
        { name: "a", destinations: [{ host: "one.example", ports: "1" }], servers: [] },
        { name: "a", destinations: [{ host: "two.example", ports: "2" }], servers: [] },
      ],
    });
    expect(compiled.allows("a", "one.example", 1).allowed).toBe(true);
    expect(compiled.allows("a", "two.example", 2).allowed).toBe(true);
    expect(compiled.issues).toEqual(['app "a" appears more than once; destinations merged']);
  });

  test("the empty list refuses everything", () => {
    expect(AllowList.empty().allows("wiki", "wiki.corp.example", 443).allowed).toBe(false);
  });
});

describe("parsePortRange", () => {
  const cases: [string, { from: number; to: number } | undefined][] = [
    ["443", { from: 443, to: 443 }],
    ["1-65535", { from: 1, to: 65535 }],
    ["0-65535", { from: 0, to: 65535 }],
    ["8000-8000", { from: 8000, to: 8000 }],
    ["65535", { from: 65535, to: 65535 }],
    ["0", undefined],
    ["65536", undefined],
    ["100-99", undefined],
    ["1-", undefined],
    ["-1", undefined],
    [" 80", undefined],
  ];
  for (const [text, out] of cases) {
    test(`${JSON.stringify(text)} is ${JSON.stringify(out)}`, () => expect(parsePortRange(text)).toEqual(out));
  }
});
