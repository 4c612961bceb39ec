/** Parsers of the host files preflight reads. */
import { describe, expect, test } from "bun:test";
import {
  mountOf,
  parseCpuinfo,
  parseMountinfo,
  parseNameservers,
  parseNoFileLimit,
  parseOsRelease,
} from "../../src/preflight/proc-files.ts";

describe("host file parsers", () => {
  test("os-release: quotes and escapes removed, comments ignored", () => {
    expect(parseOsRelease('# c\nID=alpine\nPRETTY_NAME="Alpine \\"Edge\\""\nID_LIKE=\'rhel fedora\'\n')).toEqual({
      ID: "alpine",
      PRETTY_NAME: 'Alpine "Edge"',
      ID_LIKE: "rhel fedora",
    });
  });
  test("cpuinfo counts processors and reads the first flags line", () => {
    expect(parseCpuinfo("processor\t: 0\nflags\t: a aes\n\nprocessor\t: 1\nflags\t: b\n")).toEqual({
      count: 2,
      flags: ["a", "aes"],
    });
  });
  test("limits: unlimited is Infinity; a garbled line is unknown", () => {
    expect(parseNoFileLimit("Max open files            unlimited            unlimited            files\n")).toEqual({
      soft: Infinity,
      hard: Infinity,
    });
    expect(parseNoFileLimit("Max open files  lots  more  files\n")).toBeUndefined();
  });
  test("resolv.conf nameservers in order, comments skipped", () => {
    expect(parseNameservers("# nameserver 9.9.9.9\nnameserver 10.0.0.1\n  nameserver ::1\noptions x\n")).toEqual([
      "10.0.0.1",
      "::1",
    ]);
  });
  test("mountinfo: escaped mount points, optional fields, super block options; the longest mount wins", () => {
    const entries = parseMountinfo(
      "26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
        "40 26 0:50 / /var/lib rw,noexec shared:2 master:1 - tmpfs tmpfs rw\n" +
        "41 40 8:2 / /var/lib/my\\040state rw,relatime - xfs /dev/sdb ro\n",
    );
    expect(entries.map((e) => e.mountPoint)).toEqual(["/", "/var/lib", "/var/lib/my state"]);
    expect(mountOf(entries, "/var/lib/connector")?.options).toContain("noexec");
    expect(mountOf(entries, "/var/lib/my state/x")?.options).toContain("ro");
    expect(mountOf(entries, "/var/library")?.mountPoint).toBe("/");
  });
});
