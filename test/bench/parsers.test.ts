/** The harness's small parsers of outside formats: iperf3 JSON, /proc fields, cloud.json listeners, CLI flags, sshd_config. */
import { describe, expect, test } from "bun:test";
import { parseIperf } from "./iperf.ts";
import { parseOptions } from "./main.ts";
import { connectorMissing, connectorSetup, loopbackPort } from "./paths/connector.ts";
import { sshdConfig } from "./paths/ssh.ts";
import { procFieldKiB } from "./rss.ts";

describe("parseIperf", () => {
  test("takes the receiver's total rate", () => {
    const json = JSON.stringify({
      end: { sum_sent: { bits_per_second: 9e9 }, sum_received: { bits_per_second: 8.5e9 } },
    });
    expect(parseIperf(json)).toBe(8.5e9);
  });

  test("surfaces iperf3's own error", () => {
    expect(() => parseIperf(JSON.stringify({ error: "unable to connect to server" }))).toThrow(
      "iperf3: unable to connect to server",
    );
  });

  test("refuses output with no received total", () => {
    expect(() => parseIperf(JSON.stringify({ end: {} }))).toThrow("no received total");
  });
});

test("procFieldKiB reads a kB field of /proc/<pid>/status and nothing else", () => {
  const status = "Name:\tbun\nVmHWM:\t  50000 kB\nVmRSS:\t   32768 kB\nRssAnon:\t 1 kB\n";
  expect(procFieldKiB(status, "VmRSS")).toBe(32768);
  expect(procFieldKiB(status, "Pss")).toBeUndefined();
  expect(procFieldKiB("", "VmRSS")).toBeUndefined();
});

describe("loopbackPort", () => {
  test("accepts the contract's 127.0.0.1:PORT", () => {
    expect(loopbackPort("127.0.0.1:4000")).toBe(4000);
    expect(loopbackPort("127.0.0.1:65535")).toBe(65535);
  });

  test("refuses any other address (the load generator dials only 127.0.0.1), and out-of-range ports", () => {
    for (const bad of [
      "10.0.0.1:80",
      "0.0.0.0:80",
      "example.com:80",
      "localhost:80",
      "[::1]:80",
      "127.0.0.1:0",
      "127.0.0.1:70000",
      "127.0.0.1",
    ]) {
      expect(() => loopbackPort(bad)).toThrow("is not 127.0.0.1:PORT");
    }
  });
});

test("connectorMissing names the missing piece, and a .ts stand-in runs with Bun", () => {
  const setup = connectorSetup("/nonexistent-root");
  expect(connectorMissing(setup)).toBe("reference cloud not present (/nonexistent-root/test/cloud/main.ts missing)");
  const stub = connectorSetup("/x", import.meta.path, "/x/stub.ts");
  expect(stub.command).toEqual([process.execPath, "/x/stub.ts"]);
  expect(stub.real).toBe(false);
  expect(connectorMissing(stub)).toBe("/x/stub.ts not built (bun build.ts --host)");
});

test("sshdConfig keeps sshd on loopback with its keys and authorized_keys in the scratch dir", () => {
  const config = sshdConfig("/tmp/d", 2222);
  expect(config).toContain("Port 2222\nListenAddress 127.0.0.1\n");
  expect(config).toContain("AuthorizedKeysFile /tmp/d/authorized_keys");
  expect(config).toContain("HostKey /tmp/d/host_ed25519");
  expect(config).toContain("StrictModes no");
  expect(config).toContain("PasswordAuthentication no");
});

describe("parseOptions", () => {
  test("defaults: full run, table output, connector built, iperf3 when present", () => {
    expect(parseOptions([])).toMatchObject({
      json: false,
      quick: false,
      only: undefined,
      build: true,
      iperf: true,
      keep: false,
    });
  });

  test("--only takes a comma-separated list of known scenario ids", () => {
    expect(parseOptions(["--quick", "--json", "--only", "bulk-up, latency-1"])).toMatchObject({
      quick: true,
      json: true,
      only: ["bulk-up", "latency-1"],
    });
  });

  test("an unknown scenario id or flag is refused", () => {
    expect(() => parseOptions(["--only", "bulk-sideways"])).toThrow("unknown scenario bulk-sideways");
    expect(() => parseOptions(["--fast"])).toThrow();
  });
});
