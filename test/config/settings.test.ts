import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveSettings } from "../../src/config/settings.ts";
import { parseEnvFile } from "../../src/config/env-file.ts";
import { SettingsError } from "../../src/errors.ts";

const noFile = join(tmpdir(), "connector-settings-test-absent.env");

function envFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "connector-settings-"));
  const path = join(dir, "connector.env");
  writeFileSync(path, text);
  return path;
}

describe("settings resolution", () => {
  test("defaults apply when nothing is set; log format follows the TTY", () => {
    const tty = resolveSettings({ flags: {}, env: {}, envFile: noFile, isTTY: true });
    expect(tty.settings.stateDir).toBe("/var/lib/connector");
    expect(tty.settings.logLevel).toBe("info");
    expect(tty.settings.logFormat).toBe("pretty");
    expect(tty.settings.tunnels).toBe(2);
    expect(tty.settings.gracePeriod).toBe(30);
    expect(tty.settings.noProxy).toEqual([]);
    expect(tty.sources.stateDir).toBe("default");
    expect(resolveSettings({ flags: {}, env: {}, envFile: noFile, isTTY: false }).settings.logFormat).toBe("json");
  });

  test("the hand-over health timeout: 120 s by default, from flag or CONNECTOR_UPGRADE_HEALTH_TIMEOUT, 1 to 3600", () => {
    expect(resolveSettings({ flags: {}, env: {}, envFile: noFile, isTTY: false }).settings.upgradeHealthTimeout).toBe(
      120,
    );
    expect(
      resolveSettings({ flags: {}, env: { CONNECTOR_UPGRADE_HEALTH_TIMEOUT: "30" }, envFile: noFile, isTTY: false })
        .settings.upgradeHealthTimeout,
    ).toBe(30);
    expect(
      resolveSettings({
        flags: { "upgrade-health-timeout": "5" },
        env: { CONNECTOR_UPGRADE_HEALTH_TIMEOUT: "30" },
        envFile: noFile,
        isTTY: false,
      }).settings.upgradeHealthTimeout,
    ).toBe(5);
    expect(() =>
      resolveSettings({ flags: { "upgrade-health-timeout": "0" }, env: {}, envFile: noFile, isTTY: false }),
    ).toThrow(/upgrade-health-timeout/);
  });

  test("a flag beats the environment, which beats the env file", () => {
    const file = envFile("CONNECTOR_STATE_DIR=/from/file\nCONNECTOR_LOG_LEVEL=debug\nCONNECTOR_TUNNELS=4\n");
    const { settings, sources } = resolveSettings({
      flags: { "state-dir": "/from/flag" },
      env: { CONNECTOR_STATE_DIR: "/from/env", CONNECTOR_LOG_LEVEL: "warn" },
      envFile: file,
      isTTY: false,
    });
    expect(settings.stateDir).toBe("/from/flag");
    expect(sources.stateDir).toBe("flag");
    expect(settings.logLevel).toBe("warn");
    expect(sources.logLevel).toBe("env");
    expect(settings.tunnels).toBe(4);
    expect(sources.tunnels).toBe("env-file");
  });

  test("standard HTTPS_PROXY and NO_PROXY are read, CONNECTOR_ ones win", () => {
    const std = resolveSettings({
      flags: {},
      env: { HTTPS_PROXY: "http://proxy.example:3128", NO_PROXY: "10.0.0.0/8, *.corp.example ,localhost" },
      envFile: noFile,
      isTTY: false,
    }).settings;
    expect(std.proxy).toBe("http://proxy.example:3128");
    expect(std.noProxy).toEqual(["10.0.0.0/8", "*.corp.example", "localhost"]);
    const own = resolveSettings({
      flags: {},
      env: { HTTPS_PROXY: "http://a.example:1", CONNECTOR_PROXY: "http://b.example:2" },
      envFile: noFile,
      isTTY: false,
    }).settings;
    expect(own.proxy).toBe("http://b.example:2");
  });

  test("an invalid value names the setting and where it came from", () => {
    const file = envFile("CONNECTOR_TUNNELS=lots\n");
    const attempt = () => resolveSettings({ flags: {}, env: {}, envFile: file, isTTY: false });
    expect(attempt).toThrow(SettingsError);
    expect(attempt).toThrow(/tunnels = "lots" \(from CONNECTOR_TUNNELS in .*connector\.env\)/);
    expect(() => resolveSettings({ flags: { "log-level": "loud" }, env: {}, envFile: noFile, isTTY: false })).toThrow(
      /log-level = "loud" \(from flag --log-level\)/,
    );
    expect(() =>
      resolveSettings({ flags: {}, env: { HTTPS_PROXY: "socks5://x:1" }, envFile: noFile, isTTY: false }),
    ).toThrow(
      /proxy \(value not shown: it may hold a password\) \(from environment variable HTTPS_PROXY\): expected an http/,
    );
    expect(() => resolveSettings({ flags: { tunnels: "0" }, env: {}, envFile: noFile, isTTY: false })).toThrow(
      /from 1 to 16/,
    );
  });

  test("an invalid proxy value is never echoed, whatever its shape; the setting and its source are named", () => {
    // A password with "/" (or "@", "#") does not parse as userinfo, so no redaction pattern can be trusted.
    for (const value of [
      "socks5://ops:s3cret@proxy.example:1080",
      "http://ops:s3/cret@proxy.example:1080",
      "ftp://ops:s3cr#et@p:1",
      "ops:s3cret@proxy",
    ]) {
      let message = "";
      try {
        resolveSettings({ flags: {}, env: { HTTPS_PROXY: value }, envFile: noFile, isTTY: false });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain("Invalid setting --proxy");
      expect(message).toContain("environment variable HTTPS_PROXY");
      expect(message).not.toContain("s3");
      expect(message).not.toContain("ops");
    }
  });

  test("an invalid value is named by its flag whatever its source", () => {
    expect(() =>
      resolveSettings({ flags: {}, env: { CONNECTOR_TUNNELS: "0" }, envFile: noFile, isTTY: false }),
    ).toThrow('Invalid setting --tunnels = "0" (from environment variable CONNECTOR_TUNNELS): expected a whole number');
  });

  test("--metrics and --health: HOST:PORT with a host and a port from 1 to 65535, checked up front", () => {
    const resolve = (value: string) =>
      resolveSettings({ flags: { metrics: value, health: value }, env: {}, envFile: noFile, isTTY: false }).settings;
    for (const good of ["127.0.0.1:9300", "0.0.0.0:1", "[::1]:65535", "localhost:9100", "metrics.internal:8080"]) {
      expect(resolve(good).metrics).toBe(good);
      expect(resolve(good).health).toBe(good);
    }
    const bad: [string, RegExp][] = [
      ["127.0.0.1:99999", /--metrics = "127\.0\.0\.1:99999" \(from flag --metrics\): port 99999 is out of range/],
      ["127.0.0.1:65536", /port 65536 is out of range/],
      ["127.0.0.1:0", /port 0 would listen on a port chosen at random/],
      [":9300", /the host is missing/],
      ["9300", /expected HOST:PORT/],
      ["127.0.0.1:", /the port must be a number/],
      ["127.0.0.1:http", /the port must be a number/],
      ["::1:9300", /an IPv6 address goes in brackets/],
      ["[zz]:9300", /not an IPv6 address in brackets/],
      ["300.1.2.3:9300", /not an IP address or host name/],
      ["bad host:9300", /not an IP address or host name/],
    ];
    for (const [value, message] of bad) {
      expect(() => resolve(value), value).toThrow(message);
      expect(() =>
        resolveSettings({ flags: {}, env: { CONNECTOR_HEALTH: value }, envFile: noFile, isTTY: false }),
      ).toThrow(/Invalid setting --health .*\(from environment variable CONNECTOR_HEALTH\)/);
    }
  });

  test("usage errors exit with code 2", () => {
    try {
      resolveSettings({ flags: { "log-format": "xml" }, env: {}, envFile: noFile, isTTY: false });
      throw new Error("expected a SettingsError");
    } catch (err) {
      expect(err).toBeInstanceOf(SettingsError);
      expect((err as SettingsError).exitCode).toBe(2);
      expect((err as SettingsError).code).toBe("INVALID_SETTING");
    }
  });
});

describe("env file", () => {
  test("reads KEY=value lines with comments, export and quotes", () => {
    const values = parseEnvFile(
      "# proxy\nexport HTTPS_PROXY=\"http://p:1\"\n\nNO_PROXY='a,b'\nCONNECTOR_X = y \n",
      "f",
    );
    expect(values).toEqual({ HTTPS_PROXY: "http://p:1", NO_PROXY: "a,b", CONNECTOR_X: "y" });
  });

  test("a line that is not KEY=value is reported with its number", () => {
    expect(() => parseEnvFile("A=1\nthis is wrong\n", "/etc/connector/connector.env")).toThrow(
      "/etc/connector/connector.env line 2: expected KEY=value",
    );
  });
});
