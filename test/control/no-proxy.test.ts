import { describe, expect, test } from "bun:test";
import { bypassesProxy, describeProxy, proxyFor } from "../../src/control/no-proxy.ts";
import { ProxyBypass } from "../../src/netaddr/proxy-bypass.ts";

// [entries, host, port, expected bypass]
const TABLE: [string[], string, number | undefined, boolean][] = [
  [[], "example.com", 443, false],
  [["*"], "anything.example", 443, true],
  [["*"], "10.1.2.3", 443, true],
  [["example.com"], "example.com", 443, true],
  [["example.com"], "EXAMPLE.com.", 443, true],
  [["Example.COM"], "example.com", 443, true],
  [["example.com"], "api.example.com", 443, false],
  [["example.com"], "badexample.com", 443, false],
  [["*.example.com"], "api.example.com", 443, true],
  [["*.example.com"], "a.b.example.com", 443, true],
  [["*.example.com"], "example.com", 443, false],
  [["*.example.com"], "badexample.com", 443, false],
  [[".example.com"], "api.example.com", 443, true],
  [[".example.com"], "example.com", 443, false],
  [["10.1.2.3"], "10.1.2.3", 443, true],
  [["10.1.2.3"], "10.1.2.4", 443, false],
  [["10.1.2.3"], "10.1.2.30", 443, false],
  [["10.0.0.0/8"], "10.255.0.1", 443, true],
  [["10.0.0.0/8"], "11.0.0.1", 443, false],
  [["10.0.0.0/8"], "10.example.com", 443, false],
  [["192.168.1.0/24"], "192.168.1.200", 443, true],
  [["192.168.1.0/24"], "192.168.2.1", 443, false],
  [["::1"], "::1", 443, true],
  [["::1"], "[::1]", 443, true],
  [["[::1]"], "::1", 443, true],
  [["::1"], "0:0:0:0:0:0:0:1", 443, true],
  [["fd00::/8"], "fd12:3456::1", 443, true],
  [["fd00::/8"], "fe80::1", 443, false],
  [["fd00::/8"], "10.0.0.1", 443, false],
  [["10.1.2.3"], "::ffff:10.1.2.3", 443, true],
  [["127.0.0.1"], "localhost", 443, false],
  [["example.com:8443"], "example.com", 8443, true],
  [["example.com:8443"], "example.com", 443, false],
  [["127.0.0.1:8443"], "127.0.0.1", 8443, true],
  [["127.0.0.1:8443"], "127.0.0.1", 443, false],
  [["[::1]:8443"], "::1", 8443, true],
  [["[::1]:8443"], "::1", 443, false],
  [["other.com", " example.com "], "example.com", 443, true],
  // Malformed entries are ignored, not fatal, and never match everything.
  [["10.0.0.0/99"], "10.0.0.1", 443, false],
  [["10.0.0.0/x"], "10.0.0.1", 443, false],
  [["a:b:c"], "a", 443, false],
  [["*.*.com"], "a.b.com", 443, false],
  [["exa*mple.com"], "example.com", 443, false],
  [[""], "example.com", 443, false],
  [["."], "example.com", 443, false],
];

describe("bypassesProxy (NO_PROXY rules shared with the tunnels)", () => {
  for (const [entries, host, port, expected] of TABLE) {
    test(`${JSON.stringify(entries)} ${expected ? "bypasses" : "does not bypass"} ${host}:${port}`, () => {
      expect(bypassesProxy(host, port, entries)).toBe(expected);
    });
  }
});

describe("proxyFor", () => {
  const proxy = "http://u:p@127.0.0.1:3128";
  test("no proxy configured means a direct connection", () => {
    expect(proxyFor(new URL("https://cloud.example"), undefined, [])).toBeUndefined();
  });
  test("a destination outside the bypass list goes through the proxy", () => {
    expect(proxyFor(new URL("https://cloud.example"), proxy, ["other.example"])).toBe(proxy);
  });
  test("a bypassed destination connects directly, matching the default https port", () => {
    expect(proxyFor(new URL("https://cloud.example"), proxy, ["cloud.example:443"])).toBeUndefined();
  });
  test("bracketed IPv6 URL hosts match IPv6 entries", () => {
    expect(proxyFor(new URL("https://[::1]:9443/x"), proxy, ["::1"])).toBeUndefined();
  });
  test("a precompiled list gives the same answer", () => {
    expect(proxyFor(new URL("https://a.cloud.example"), proxy, ProxyBypass.parse(["*.cloud.example"]))).toBeUndefined();
  });
});

describe("describeProxy", () => {
  test("never shows the credentials", () => {
    const text = describeProxy("http://alice:hunter2@proxy.corp:3128");
    expect(text).toBe("http://proxy.corp:3128");
    expect(text).not.toContain("hunter2");
  });
  test("an unparsable proxy is described without echoing it", () => {
    expect(describeProxy("::not a url hunter2")).not.toContain("hunter2");
  });
});
