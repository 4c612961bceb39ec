import { expect, test } from "bun:test";
import { isHostOnlyAddress, nameRuleResolver } from "../../src/dataplane/name-answers.ts";

test("loopback, link-local and unspecified addresses are host-only; others are not", () => {
  for (const a of ["127.0.0.1", "127.1.2.3", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::", "::ffff:127.0.0.1"]) expect(isHostOnlyAddress(a)).toBe(true);
  for (const a of ["10.0.0.1", "192.168.1.1", "2001:db8::1", "8.8.8.8", "::ffff:10.0.0.1"]) expect(isHostOnlyAddress(a)).toBe(false);
});

test("a name that resolves to this host's loopback or to cloud metadata is not dialled through a name rule", async () => {
  const resolve = nameRuleResolver(async (name) =>
    name === "evil.corp.example"
      ? [{ address: "169.254.169.254", family: 4 }, { address: "127.0.0.1", family: 4 }]
      : [{ address: "127.0.0.1", family: 4 }, { address: "10.1.2.3", family: 4 }],
  );
  await expect(resolve("evil.corp.example")).rejects.toThrow(/only to loopback or link-local/);
  expect(await resolve("mixed.corp.example")).toEqual([{ address: "10.1.2.3", family: 4 }]);
});
