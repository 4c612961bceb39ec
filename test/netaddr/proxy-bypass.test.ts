import { describe, expect, test } from "bun:test";
import { ignoredBypassWarning, ProxyBypass } from "../../src/netaddr/proxy-bypass.ts";

describe("ProxyBypass.bypasses", () => {
  const cases: [string, string, number | undefined, boolean][] = [
    // exact names: only that name, any case, trailing dot
    ["gw.example.com", "gw.example.com", 443, true],
    ["gw.example.com", "GW.Example.COM.", 443, true],
    ["GW.EXAMPLE.COM", "gw.example.com", undefined, true],
    ["gw.example.com", "a.gw.example.com", 443, false],
    ["gw.example.com", "example.com", 443, false],
    // wildcards, *. and leading dot: strictly below
    ["*.example.com", "a.example.com", 443, true],
    ["*.example.com", "a.b.example.com", 443, true],
    ["*.example.com", "example.com", 443, false],
    ["*.example.com", "xexample.com", 443, false],
    ["*.example.com", "example.com.evil.net", 443, false],
    [".example.com", "a.example.com", 443, true],
    [".example.com", "example.com", 443, false],
    // everything
    ["*", "anything.example", 443, true],
    ["*", "10.0.0.1", undefined, true],
    ["*", "not a host", 1, true],
    // addresses and blocks
    ["10.1.2.3", "10.1.2.3", 443, true],
    ["10.1.2.3", "10.1.2.4", 443, false],
    ["10.0.0.0/8", "10.200.0.1", 443, true],
    ["10.0.0.0/8", "11.0.0.1", 443, false],
    ["10.0.0.0/8", "::ffff:10.0.0.1", 443, true],
    ["10.0.0.0/8", "[::ffff:10.0.0.1]", 443, true],
    ["::1", "[::1]", 443, true],
    ["::1", "0:0::1", 443, true],
    ["[::1]", "::1", 443, true],
    ["fd00::/8", "fd12:3456::1", 443, true],
    ["fd00::/8", "fe80::1", 443, false],
    ["::/0", "10.0.0.1", 443, false],
    // names are never resolved: an address entry does not match a name, nor a name entry an address
    ["127.0.0.1", "localhost", 443, false],
    ["localhost", "127.0.0.1", 443, false],
    // host:port entries
    ["gw.example.com:8443", "gw.example.com", 8443, true],
    ["gw.example.com:8443", "gw.example.com", 443, false],
    ["gw.example.com:8443", "gw.example.com", undefined, false],
    ["*.example.com:8443", "a.example.com", 8443, true],
    ["10.1.2.3:443", "10.1.2.3", 443, true],
    ["10.1.2.3:443", "10.1.2.3", 80, false],
    ["[::1]:443", "::1", 443, true],
    ["[::1]:443", "::1", 8443, false],
    // hosts that are not hosts never match a specific rule
    ["gw.example.com", "gw.example.com:443", 443, false],
    ["10.0.0.0/8", "010.0.0.1", 443, false],
  ];
  for (const [entry, host, port, expected] of cases) {
    test(`entry ${entry} ${expected ? "bypasses" : "does not bypass"} ${host}${port === undefined ? "" : ` port ${port}`}`, () => {
      expect(ProxyBypass.parse(entry).bypasses(host, port)).toBe(expected);
    });
  }
});

describe("ProxyBypass.parse", () => {
  test("splits the raw setting on commas and whitespace, and takes already-split lists", () => {
    const raw = ProxyBypass.parse(" a.example , 10.0.0.0/8\t.b.example  [::1]:443,,");
    expect(raw.rules).toHaveLength(4);
    expect(raw.ignored).toEqual([]);
    const split = ProxyBypass.parse(["a.example", "10.0.0.0/8"]);
    expect(split.bypasses("10.9.9.9", 1)).toBe(true);
  });

  test("entries it cannot understand are ignored and listed, the rest still apply", () => {
    const list = ProxyBypass.parse(
      "http://proxy.example, a.*.example, 10.0.0.0/33, host:99999, [gw.example], *foo, gw.example:0, ok.example",
    );
    expect(list.ignored).toEqual([
      "http://proxy.example",
      "a.*.example",
      "10.0.0.0/33",
      "host:99999",
      "[gw.example]",
      "*foo",
      "gw.example:0",
    ]);
    expect(list.bypasses("ok.example", 443)).toBe(true);
  });

  test("an empty list bypasses nothing", () => {
    expect(ProxyBypass.parse("").bypasses("localhost", 80)).toBe(false);
    expect(ProxyBypass.parse([]).bypasses("127.0.0.1")).toBe(false);
  });
});

describe("ProxyBypass.bypassesUrl", () => {
  const list = ProxyBypass.parse("gw.example.com:443, [::1]:8443, cp.example.com:80");
  test("uses the URL's port, or the scheme's default", () => {
    expect(list.bypassesUrl(new URL("wss://gw.example.com/v1/tunnel"))).toBe(true);
    expect(list.bypassesUrl(new URL("wss://gw.example.com:8443/v1/tunnel"))).toBe(false);
    expect(list.bypassesUrl(new URL("wss://[::1]:8443/v1/tunnel"))).toBe(true);
    expect(list.bypassesUrl(new URL("http://cp.example.com/"))).toBe(true);
    expect(list.bypassesUrl(new URL("https://cp.example.com/"))).toBe(false);
  });
});

describe("ignoredBypassWarning", () => {
  test("names the entries that mean nothing, and nothing when all are understood", () => {
    expect(ignoredBypassWarning(["gw.example.com", "*.corp", "10.0.0.0/8", "[::1]:443", "*"])).toBeUndefined();
    const warning = ignoredBypassWarning(["gw.example.com", "https://gw.example.com", "10.0.0.0/33", "a..b"]);
    expect(warning?.ignored).toEqual(["https://gw.example.com", "10.0.0.0/33", "a..b"]);
    expect(warning?.message).toContain("ignored");
  });

  test("a hostile or mistaken list cannot make the log line unbounded", () => {
    const warning = ignoredBypassWarning(Array.from({ length: 500 }, (_, i) => `bad//${"x".repeat(300)}${i}`));
    expect(warning?.ignored.length).toBe(20);
    expect(warning?.ignored.every((e) => e.length <= 100)).toBe(true);
  });
});
