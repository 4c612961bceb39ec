/**
 * The reference release server in-process: newest release per channel, exact releases under /r/,
 * publishing by writing a directory, allow-listed names only, Content-Length, and no way out of DIR.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLog } from "../test-client.ts";
import { makeFakeKeys, writeFakeRelease, type FakeKeys } from "../../support/release-fixture.ts";
import { startReleaseServer, type ReleaseServer } from "./server.ts";

let dir: string;
let keys: FakeKeys;
let server: ReleaseServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "releases-"));
  keys = makeFakeKeys();
  writeFakeRelease({ dir: join(dir, "a"), keys, version: "1.0.0", channel: "stable", sequence: 1 });
  writeFakeRelease({ dir: join(dir, "b"), keys, version: "1.2.0", channel: "stable", sequence: 3 });
  writeFakeRelease({ dir: join(dir, "c"), keys, version: "1.3.0-rc.1", channel: "beta", sequence: 2 });
  writeFakeRelease({ dir, keys, version: "1.1.0", channel: "stable", sequence: 2 }); // DIR itself is a release too
  writeFileSync(join(dir, "b", "secret.txt"), "not a release file");
  server = await startReleaseServer({ dir, log: silentLog });
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string) => fetch(`${server.baseUrl}${path}`, { signal: AbortSignal.timeout(5_000) });

/** One request written as given (no URL normalisation), read until the server closes. */
export function rawRequest(port: number, path: string): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, "127.0.0.1", () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    socket.setTimeout(20_000, () => socket.destroy(new Error(`no end of the answer to ${path} within 20 s`)));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      resolve({ head: all.subarray(0, split).toString("latin1"), body: all.subarray(split + 4) });
    });
  });
}

const portOf = (s: ReleaseServer) => Number(new URL(s.baseUrl).port);

describe("/<channel>/<file>", () => {
  test("serves the highest sequence of each channel, among DIR and its subdirectories", async () => {
    expect(server.channelsAtStart).toEqual(["beta", "stable"]);
    expect(server.manifestUrl("stable")).toBe(`${server.baseUrl}/stable/manifest.json`);
    const stable = await get("/stable/manifest.json");
    expect(stable.status).toBe(200);
    expect(await stable.text()).toBe(readFileSync(join(dir, "b", "manifest.json"), "utf8"));
    expect(await (await get("/beta/manifest.json")).text()).toBe(readFileSync(join(dir, "c", "manifest.json"), "utf8"));
    const sig = await get("/stable/manifest.json.sig");
    expect(Buffer.from(await sig.arrayBuffer())).toEqual(readFileSync(join(dir, "b", "manifest.json.sig")));
  });

  test("streams a binary with its Content-Length and exact bytes", async () => {
    const response = await get("/stable/connector-linux-x64");
    const expected = readFileSync(join(dir, "b", "connector-linux-x64"));
    expect(response.headers.get("content-length")).toBe(String(expected.length));
    expect(Buffer.from(await response.arrayBuffer())).toEqual(expected);
    const keySig = `release-keys.json.${keys.roots[1]!.id}.sig`;
    expect(Buffer.from(await (await get(`/stable/${keySig}`)).arrayBuffer())).toEqual(
      readFileSync(join(dir, "b", keySig)),
    );
  });

  test("sees a release published after start (a new directory) on the next request", async () => {
    expect((await get("/edge/manifest.json")).status).toBe(404);
    writeFakeRelease({ dir: join(dir, "d"), keys, version: "2.0.0", channel: "stable", sequence: 7 });
    writeFakeRelease({ dir: join(dir, "e"), keys, version: "2.1.0", channel: "edge", sequence: 1 });
    expect(JSON.parse(await (await get("/stable/manifest.json")).text()).version).toBe("2.0.0");
    expect(JSON.parse(await (await get("/edge/manifest.json")).text()).version).toBe("2.1.0");
  });

  test("answers 404 for an unknown channel, a missing file and a name outside the release format", async () => {
    expect((await get("/nightly/manifest.json")).status).toBe(404);
    expect((await get("/beta/connector-linux-arm64")).status).toBe(404); // allowed name, not in this release
    expect((await get("/r/b/secret.txt")).status).toBe(404); // in the directory, but not a release file
    expect((await get("/stable/cloud.json")).status).toBe(404);
  });
});

describe("/r/<release>/<file>", () => {
  test("serves one release exactly, whatever is newest", async () => {
    expect(JSON.parse(await (await get("/r/a/manifest.json")).text()).sequence).toBe(1);
    expect(Buffer.from(await (await get("/r/a/connector-linux-x64")).arrayBuffer())).toEqual(
      readFileSync(join(dir, "a", "connector-linux-x64")),
    );
    expect((await get("/r/zzz/manifest.json")).status).toBe(404);
  });
});

describe("paths", () => {
  test.each([
    "/stable/../../../../etc/passwd",
    "/r/../b/secret.txt",
    "/r/b/..%2fsecret.txt",
    "/stable/%2e%2e/b/secret.txt",
    "/r/b\\secret.txt",
  ])("%s is refused with 400 before any lookup", async (path) => {
    const { head, body } = await rawRequest(portOf(server), path);
    expect(head).toStartWith("HTTP/1.1 400");
    expect(body.toString()).not.toContain("not a release file");
  });

  test("a deeper path or a write is refused", async () => {
    expect((await rawRequest(portOf(server), "/r/b/sub/manifest.json")).head).toStartWith("HTTP/1.1 404");
    expect(
      (
        await fetch(`${server.baseUrl}/stable/manifest.json`, {
          method: "PUT",
          body: "x",
          signal: AbortSignal.timeout(5_000),
        })
      ).status,
    ).toBe(405);
  });
});

describe("/install.sh", () => {
  let own: string;
  let installers: ReleaseServer;
  const installerOf = (release: string) => `#!/bin/bash\n# the installer of release ${release}\n{ main "$@"; }\n`;
  const getOwn = (path: string, method = "GET") =>
    fetch(`${installers.baseUrl}${path}`, { method, signal: AbortSignal.timeout(5_000) });

  beforeAll(async () => {
    own = mkdtempSync(join(tmpdir(), "releases-installer-"));
    writeFakeRelease({ dir: join(own, "beta"), keys, version: "3.0.0-rc.1", channel: "beta", sequence: 5 });
    writeFileSync(join(own, "beta", "install.sh"), installerOf("beta"));
    installers = await startReleaseServer({ dir: own, log: silentLog });
  });

  afterAll(async () => {
    await installers?.stop();
    rmSync(own, { recursive: true, force: true });
  });

  test("is 404 while channel stable has no release, whatever other channels hold", async () => {
    expect((await getOwn("/install.sh")).status).toBe(404);
    expect(await (await getOwn("/beta/install.sh")).text()).toBe(installerOf("beta"));
  });

  test("serves the installer of the newest stable release, GET and HEAD, and follows a publication", async () => {
    writeFakeRelease({ dir: join(own, "s1"), keys, version: "3.0.0", channel: "stable", sequence: 1 });
    writeFileSync(join(own, "s1", "install.sh"), installerOf("s1"));
    const first = await getOwn("/install.sh");
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/x-shellscript");
    expect(first.headers.get("content-length")).toBe(String(installerOf("s1").length));
    expect(await first.text()).toBe(installerOf("s1"));

    writeFakeRelease({ dir: join(own, "s2"), keys, version: "3.1.0", channel: "stable", sequence: 2 });
    writeFileSync(join(own, "s2", "install.sh"), installerOf("s2"));
    expect(await (await getOwn("/install.sh?x=1")).text()).toBe(installerOf("s2"));
    const head = await getOwn("/install.sh", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(installerOf("s2").length));
    expect(await head.text()).toBe("");
  });

  test("is the genuine file while the channel misbehaves, and 404 when the newest stable release has none", async () => {
    installers.misbehave("unknown-key");
    expect(await (await getOwn("/install.sh")).text()).toBe(installerOf("s2"));
    installers.misbehave("none");
    writeFakeRelease({ dir: join(own, "s3"), keys, version: "3.2.0", channel: "stable", sequence: 3 }); // no install.sh
    expect((await getOwn("/install.sh")).status).toBe(404);
    expect((await getOwn("/install.sh/x")).status).toBe(404);
  });
});
