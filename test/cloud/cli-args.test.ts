import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { parseAppArg, parseCloudArgs } from "./cli-args.ts";

describe("parseCloudArgs", () => {
  test("--dir alone gives one gateway, no apps and default key and certificate lifetimes", () => {
    expect(parseCloudArgs(["--dir", "/tmp/c"])).toEqual({ dir: "/tmp/c", help: false, apps: [], gateways: 1 });
  });

  test("all flags, --app repeated", () => {
    const cli = parseCloudArgs([
      "--dir",
      "/tmp/c",
      "--gateways",
      "3",
      "--app",
      "wiki=127.0.0.1:8080",
      "--app",
      "db=db.corp:5432,[::1]:5433",
      "--key-uses",
      "5",
      "--cert-ttl",
      "120",
      "--key-expires-in",
      "0",
      "--token-ttl",
      "6",
    ]);
    expect(cli).toMatchObject({
      gateways: 3,
      keyUses: 5,
      certTtlSeconds: 120,
      keyExpiresInSeconds: 0,
      tokenTtlSeconds: 6,
    });
    expect(cli.apps?.map((a) => a.name)).toEqual(["wiki", "db"]);
  });

  test("usage errors: missing --dir, unknown flag, bad numbers, duplicate app", () => {
    expect(() => parseCloudArgs([])).toThrow(UsageError);
    expect(() => parseCloudArgs(["--dir", "d", "--bogus"])).toThrow(UsageError);
    expect(() => parseCloudArgs(["--dir", "d", "--gateways", "0"])).toThrow(UsageError);
    expect(() => parseCloudArgs(["--dir", "d", "--cert-ttl", "1.5"])).toThrow(UsageError);
    expect(() => parseCloudArgs(["--dir", "d", "--token-ttl", "0"])).toThrow(UsageError);
    expect(() => parseCloudArgs(["--dir", "d", "--app", "a=h:1", "--app", "a=h:2"])).toThrow(UsageError);
    expect(() => parseCloudArgs(["--dir", "d", "--release-signing-keys", "k"])).toThrow(
      "only meaningful with --releases",
    );
  });

  test("--extra-gateway is repeatable, wss:// with a port, and lets --gateways be 0", () => {
    const urls = ["wss://127.0.0.1:4443/v1/tunnel", "wss://localhost:4444/v1/tunnel"];
    expect(
      parseCloudArgs(["--dir", "d", "--gateways", "0", "--extra-gateway", urls[0]!, "--extra-gateway", urls[1]!]),
    ).toMatchObject({ gateways: 0, extraGateways: urls });
    expect(parseCloudArgs(["--dir", "d", "--extra-gateway", urls[0]!])).toMatchObject({ gateways: 1 });
    for (const bad of ["https://127.0.0.1:1/v1/tunnel", "wss://127.0.0.1/v1/tunnel", "wss://u:p@h:1/", "nonsense"]) {
      expect(() => parseCloudArgs(["--dir", "d", "--extra-gateway", bad])).toThrow(UsageError);
    }
  });

  test("--releases and --release-signing-keys", () => {
    expect(parseCloudArgs(["--dir", "d", "--releases", "/r", "--release-signing-keys", "/k"])).toMatchObject({
      releases: "/r",
      releaseSigningKeys: "/k",
    });
    expect(parseCloudArgs(["--dir", "d", "--releases", "/r"])).not.toHaveProperty("releaseSigningKeys");
  });
});

describe("parseAppArg", () => {
  test("servers are the given host:ports and destinations exactly those host and port pairs", () => {
    expect(parseAppArg("wiki=127.0.0.1:8080,wiki.corp:443,[::1]:9000")).toEqual({
      name: "wiki",
      group: "default",
      destinations: [
        { host: "127.0.0.1", ports: "8080" },
        { host: "wiki.corp", ports: "443" },
        { host: "::1", ports: "9000" },
      ],
      servers: ["127.0.0.1:8080", "wiki.corp:443", "[::1]:9000"],
    });
  });

  test("malformed values are usage errors", () => {
    for (const bad of ["wiki", "=h:1", "wiki=h", "wiki=h:0", "wiki=h:70000", "wiki=::1:80", "wiki=h:1,", "w i=h:1"]) {
      expect(() => parseAppArg(bad)).toThrow(UsageError);
    }
  });
});
