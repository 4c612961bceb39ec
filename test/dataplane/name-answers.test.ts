import { expect, test } from "bun:test";
import { DialError } from "../../src/dataplane/errors.ts";
import { isHostOnlyAddress, nameRuleResolver } from "../../src/dataplane/name-answers.ts";

test("loopback, link-local, unspecified and cloud metadata addresses are host-only; others are not", () => {
  for (const a of ["127.0.0.1", "127.1.2.3", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::", "::ffff:127.0.0.1"])
    expect(isHostOnlyAddress(a)).toBe(true);
  // AWS IPv6 metadata, Alibaba metadata, Azure wire server (also as IPv4-mapped IPv6).
  for (const a of ["fd00:ec2::254", "100.100.100.200", "168.63.129.16", "::ffff:168.63.129.16", "FD00:EC2:0::254"])
    expect(isHostOnlyAddress(a)).toBe(true);
  for (const a of [
    "10.0.0.1",
    "192.168.1.1",
    "2001:db8::1",
    "8.8.8.8",
    "::ffff:10.0.0.1",
    "fd00:ec2::253",
    "100.100.100.201",
    "168.63.129.17",
  ]) {
    expect(isHostOnlyAddress(a)).toBe(false);
  }
});

test("this host's own interface addresses are host-only (IPv6 zone ids ignored)", () => {
  const own = ["10.0.0.5", "2001:db8::5", "fe80::1%eth0"];
  expect(isHostOnlyAddress("10.0.0.5", own)).toBe(true);
  expect(isHostOnlyAddress("::ffff:10.0.0.5", own)).toBe(true);
  expect(isHostOnlyAddress("2001:db8::5", own)).toBe(true);
  expect(isHostOnlyAddress("10.0.0.6", own)).toBe(false);
});

test("a name that resolves only to this host or to cloud metadata is refused NOT_ALLOWED; mixed answers keep the others", async () => {
  const resolve = nameRuleResolver(
    async (name) =>
      name === "evil.corp.example"
        ? [
            { address: "169.254.169.254", family: 4 },
            { address: "127.0.0.1", family: 4 },
            { address: "100.100.100.200", family: 4 },
          ]
        : name === "self.corp.example"
          ? [{ address: "10.0.0.5", family: 4 }]
          : [
              { address: "127.0.0.1", family: 4 },
              { address: "168.63.129.16", family: 4 },
              { address: "10.1.2.3", family: 4 },
            ],
    () => ["10.0.0.5"],
  );
  for (const name of ["evil.corp.example", "self.corp.example"]) {
    const err = await resolve(name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DialError);
    expect((err as DialError).failure).toBe("NOT_ALLOWED");
    expect((err as DialError).message).toContain("use an IP rule");
  }
  expect(await resolve("mixed.corp.example")).toEqual([{ address: "10.1.2.3", family: 4 }]);
});
