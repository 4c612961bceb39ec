import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { cidrContains, formatCidr, parseCidr, parseIpOrCidr } from "../../src/netaddr/cidr.ts";
import { parseIp } from "../../src/netaddr/ip.ts";

const contains = (cidr: string, ip: string) => cidrContains(parseIpOrCidr(cidr)!, parseIp(ip)!);

describe("parseCidr", () => {
  const canonical: [string, string][] = [
    ["10.0.0.0/8", "10.0.0.0/8"],
    ["10.1.2.3/8", "10.0.0.0/8"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["192.0.2.7/32", "192.0.2.7/32"],
    ["172.16.0.0/12", "172.16.0.0/12"],
    ["2001:db8::/32", "2001:db8::/32"],
    ["2001:db8:ffff::1/33", "2001:db8:8000::/33"],
    ["::/0", "::/0"],
    ["::ffff:10.0.0.0/104", "10.0.0.0/8"],
    ["::ffff:0:0/96", "0.0.0.0/0"],
  ];
  for (const [input, out] of canonical) {
    test(`${input} is ${out}`, () => expect(formatCidr(parseCidr(input)!)).toBe(out));
  }
  for (const input of [
    "10.0.0.0",
    "10.0.0.0/33",
    "::/129",
    "10.0.0.0/",
    "10.0.0.0/08",
    "10.0.0.0/-1",
    "10.0.0.0/8/8",
    "10.0/8",
    "fe80::%1/64",
    "[::1]/128",
  ]) {
    test(`refuses ${input}`, () => expect(parseCidr(input)).toBeUndefined());
  }
  test("parseIpOrCidr takes a bare address as a single-address block", () => {
    expect(formatCidr(parseIpOrCidr("10.1.2.3")!)).toBe("10.1.2.3/32");
    expect(formatCidr(parseIpOrCidr("::1")!)).toBe("::1/128");
    expect(formatCidr(parseIpOrCidr("::ffff:10.1.2.3")!)).toBe("10.1.2.3/32");
  });
});

describe("cidrContains", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["10.0.0.0/8", "9.255.255.255", false],
    ["172.16.0.0/12", "172.31.255.255", true],
    ["172.16.0.0/12", "172.32.0.0", false],
    ["192.0.2.7/32", "192.0.2.7", true],
    ["192.0.2.7/32", "192.0.2.8", false],
    ["0.0.0.0/0", "203.0.113.9", true],
    ["10.0.0.0/8", "::ffff:10.9.8.7", true],
    ["10.0.0.0/8", "::ffff:11.9.8.7", false],
    ["::ffff:10.0.0.0/104", "10.9.8.7", true],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::1", false],
    ["2001:db8::/33", "2001:db8:7fff::1", true],
    ["2001:db8::/33", "2001:db8:8000::1", false],
    ["::1", "::1", true],
    ["::1", "0:0::1", true],
    ["::/0", "10.0.0.1", false],
    ["::/0", "::ffff:10.0.0.1", false],
    ["0.0.0.0/0", "::1", false],
    ["::/96", "10.0.0.1", false],
  ];
  for (const [cidr, ip, expected] of cases) {
    test(`${cidr} ${expected ? "contains" : "does not contain"} ${ip}`, () =>
      expect(contains(cidr, ip)).toBe(expected));
  }

  test("a block contains exactly the addresses that share its first bits (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 32 }),
        (a, b, bits) => {
          const block = parseCidr(`${Array.from(a).join(".")}/${bits}`)!;
          const toInt = (x: Uint8Array) => ((x[0]! << 24) | (x[1]! << 16) | (x[2]! << 8) | x[3]!) >>> 0;
          const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
          const expected = (toInt(a) & mask) >>> 0 === (toInt(b) & mask) >>> 0;
          expect(cidrContains(block, { family: 4, bytes: b })).toBe(expected);
        },
      ),
    );
  });
});
