import { describe, expect, test } from "bun:test";
import { formatHost, parseHost, parsePort, splitHostPort } from "../../src/netaddr/host.ts";

describe("parseHost", () => {
  const cases: [string, string | undefined, "ip" | "name" | undefined][] = [
    ["10.1.2.3", "10.1.2.3", "ip"],
    ["::1", "::1", "ip"],
    ["[::1]", "::1", "ip"],
    ["[2001:DB8::1]", "2001:db8::1", "ip"],
    ["::ffff:10.1.2.3", "10.1.2.3", "ip"],
    ["Wiki.Corp.Example.", "wiki.corp.example", "name"],
    ["[10.1.2.3]", undefined, undefined],
    ["[wiki.corp.example]", undefined, undefined],
    ["[::1", undefined, undefined],
    ["fe80::1%eth0", undefined, undefined],
    ["010.0.0.1", undefined, undefined],
    ["", undefined, undefined],
  ];
  for (const [input, out, kind] of cases) {
    test(`${JSON.stringify(input)} is ${kind ?? "refused"}${out ? ` ${out}` : ""}`, () => {
      const host = parseHost(input);
      expect(host?.kind).toBe(kind);
      expect(host ? formatHost(host) : undefined).toBe(out);
    });
  }
});

describe("splitHostPort", () => {
  const cases: [string, { host: string; port: number | undefined } | undefined][] = [
    ["gw.example", { host: "gw.example", port: undefined }],
    ["gw.example:8443", { host: "gw.example", port: 8443 }],
    ["10.0.0.1:443", { host: "10.0.0.1", port: 443 }],
    ["[::1]:443", { host: "::1", port: 443 }],
    ["[::1]", { host: "::1", port: undefined }],
    ["::1", { host: "::1", port: undefined }],
    ["2001:db8::1", { host: "2001:db8::1", port: undefined }],
    ["gw.example:65535", { host: "gw.example", port: 65535 }],
    ["gw.example:65536", undefined],
    ["gw.example:", undefined],
    ["gw.example:http", undefined],
    ["[::1]443", undefined],
    ["[::1", undefined],
  ];
  for (const [input, out] of cases) {
    test(`${input} splits as ${JSON.stringify(out)}`, () => expect(splitHostPort(input)).toEqual(out));
  }
  test("parsePort accepts 0-65535 in decimal only", () => {
    expect([
      parsePort("0"),
      parsePort("65535"),
      parsePort("65536"),
      parsePort("-1"),
      parsePort("1e3"),
      parsePort(""),
    ]).toEqual([0, 65535, undefined, undefined, undefined, undefined]);
  });
});
