import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { UpgradeError, type UpgradeErrorCode } from "../../src/upgrade/errors.ts";
import { downloadBinary, fetchReleaseFiles, type RetrievalPolicy } from "../../src/upgrade/download.ts";
import { keysetSignatureFile, MAX_MANIFEST_BYTES } from "../../src/upgrade/format.ts";
import { verifyRelease } from "../../src/upgrade/verify.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { binaryOf, makeRelease, NOW, rootSpkis } from "../support/signed-release.ts";

const release = makeRelease();
const binary = binaryOf("x".repeat(100_000));
const target = { url: "connector-linux-x64", size: binary.bytes.byteLength, sha256: binary.sha256 };
const [rootA, rootB] = release.roots;

const encoder = new TextEncoder();
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A body that trickles `chunk` every `everyMs` until the client goes away. */
function trickle(chunk: Uint8Array, everyMs: number): ReadableStream<Uint8Array> {
  let stopped = false;
  return new ReadableStream({
    async pull(controller) {
      await wait(everyMs);
      if (!stopped) controller.enqueue(chunk);
    },
    cancel() {
      stopped = true;
    },
  });
}

function endless(): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(7);
  return new ReadableStream({ pull: (controller) => controller.enqueue(chunk) });
}

let server: ReturnType<typeof Bun.serve>;
let proxy: ReturnType<typeof Bun.serve>;
let cutter: TCPSocketListener;
let proxied = 0;
let stalledRequests = 0;
let dir: string;

beforeAll(() => {
  const files = new Map<string, Uint8Array>([
    ["/r/manifest.json", release.files.manifest],
    ["/r/manifest.json.sig", release.files.manifestSignature!],
    ["/r/release-keys.json", release.files.keyset],
    [`/r/${keysetSignatureFile(rootA!.id)}`, release.files.keysetSignatures.get(rootA!.id)!],
    // rootB's signature is absent: a 404 is a missing signature
    ["/r/connector-linux-x64", binary.bytes],
    ["/big/release-keys.json", release.files.keyset],
    ["/short/connector-linux-x64", binary.bytes.subarray(0, 1000)],
  ]);
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const path = new URL(req.url).pathname;
      const file = files.get(path);
      if (file) return new Response(file);
      if (path === "/hop/connector-linux-x64") return Response.redirect("/r/connector-linux-x64", 302);
      if (path === "/loop/connector-linux-x64") return Response.redirect("/loop/connector-linux-x64", 307);
      if (path === "/local/connector-linux-x64") return Response.redirect("file:///etc/passwd", 302);
      if (path === "/big/manifest.json") return new Response(endless());
      if (path === "/endless/connector-linux-x64") return new Response(endless());
      if (path === "/slow/connector-linux-x64") return new Response(trickle(encoder.encode("xx"), 50));
      if (path === "/stalled/connector-linux-x64") stalledRequests++;
      if (path === "/stalled/connector-linux-x64") return new Response(trickle(encoder.encode("x"), 60_000));
      if (path === "/wrong/connector-linux-x64") return new Response(new Uint8Array(target.size).fill(0x79));
      if (path === "/error/connector-linux-x64") return new Response("no", { status: 500 });
      return new Response("not found", { status: 404 });
    },
  });
  // Answers any request with the full length declared, a part of the body, then closes the connection.
  cutter = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket) {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${target.size}\r\nconnection: close\r\n\r\n`);
        socket.write(binary.bytes.subarray(0, 5000));
        socket.end();
      },
    },
  });
  // A forward HTTP proxy (absolute-form requests) that counts what it relays.
  proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      proxied++;
      return fetch(req.url, { proxy: false });
    },
  });
});

afterAll(() => {
  server.stop(true);
  proxy.stop(true);
  cutter.stop(true);
});

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function tempDest(): string {
  dir = mkdtempSync(join(tmpdir(), "download-test-"));
  return join(dir, "connector");
}

const url = (path: string) => new URL(path, `http://127.0.0.1:${server.port}`);
const POLICY: RetrievalPolicy = { noProxy: [], deadlineMs: 20_000, minBytesPerSecond: 0, speedWindowMs: 1000 };

async function refusal(promise: Promise<unknown>): Promise<UpgradeErrorCode> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof UpgradeError) return err.code;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("fetchReleaseFiles", () => {
  test("fetches the manifest, its signature, the key set and each root's signature; a 404 signature is left out", async () => {
    const files = await fetchReleaseFiles(url("/r/manifest.json"), [rootA!.id, rootB!.id], POLICY);
    expect(files.manifest).toEqual(release.files.manifest);
    expect(files.manifestSignature).toEqual(release.files.manifestSignature!);
    expect(files.keyset).toEqual(release.files.keyset);
    expect([...files.keysetSignatures.keys()]).toEqual([rootA!.id]);
  });

  test("what it fetches verifies along the whole chain", async () => {
    const files = await fetchReleaseFiles(url("/r/manifest.json"), [rootA!.id, rootB!.id], POLICY);
    // Only rootA's signature is served: with a second signature the chain holds.
    const both = {
      ...files,
      keysetSignatures: new Map([
        ...files.keysetSignatures,
        [rootB!.id, release.files.keysetSignatures.get(rootB!.id)!],
      ]),
    };
    const rules = { channel: "stable", runningVersion: "1.4.0", target: "linux-x64", highestSequence: 0, skipped: [] };
    expect(verifyRelease(both, rootSpkis(release), rules, NOW).manifest.version).toBe("1.5.0");
  });

  test("a manifest that never ends is cut at its cap: MANIFEST_TOO_LARGE", async () => {
    expect(await refusal(fetchReleaseFiles(url("/big/manifest.json"), [rootA!.id], POLICY))).toBe("MANIFEST_TOO_LARGE");
    expect(MAX_MANIFEST_BYTES).toBe(64 * 1024);
  });

  test("no manifest: DOWNLOAD_FAILED naming the URL without credentials", async () => {
    const withCreds = url("/none/manifest.json");
    withCreds.username = "user";
    withCreds.password = "s3cret";
    withCreds.search = "?token=abc";
    const err = await fetchReleaseFiles(withCreds, [], POLICY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeError);
    expect((err as UpgradeError).code).toBe("DOWNLOAD_FAILED");
    expect((err as UpgradeError).message).toContain(`127.0.0.1:${server.port}/none/manifest.json`);
    expect((err as UpgradeError).message).not.toContain("s3cret");
    expect((err as UpgradeError).message).not.toContain("abc");
  });

  test("goes through the proxy unless the host is on the bypass list", async () => {
    const before = proxied;
    await fetchReleaseFiles(url("/r/manifest.json"), [rootA!.id], {
      ...POLICY,
      proxy: `http://127.0.0.1:${proxy.port}`,
    });
    expect(proxied - before).toBe(4);
    await fetchReleaseFiles(url("/r/manifest.json"), [rootA!.id], {
      ...POLICY,
      proxy: `http://127.0.0.1:${proxy.port}`,
      noProxy: ["127.0.0.1"],
    });
    expect(proxied - before).toBe(4);
  });
});

describe("downloadBinary", () => {
  test("streams the binary to a new 0700 file with the right hash", async () => {
    const dest = tempDest();
    await downloadBinary(url("/r/connector-linux-x64"), target, dest, POLICY);
    expect(readFileSync(dest).equals(Buffer.from(binary.bytes))).toBe(true);
    expect(statSync(dest).mode & 0o777).toBe(0o700);
  });

  test("follows a redirect (a CDN)", async () => {
    const dest = tempDest();
    await downloadBinary(url("/hop/connector-linux-x64"), target, dest, POLICY);
    expect(readFileSync(dest).equals(Buffer.from(binary.bytes))).toBe(true);
  });

  const cases: [string, string, UpgradeErrorCode, Partial<RetrievalPolicy>][] = [
    ["a redirect loop", "/loop/", "DOWNLOAD_FAILED", {}],
    ["a redirect off HTTP", "/local/", "DOWNLOAD_FAILED", {}],
    ["an endless body", "/endless/", "BODY_TOO_LONG", {}],
    ["a body shorter than the manifest says", "/short/", "BODY_TOO_SHORT", {}],
    ["the wrong bytes", "/wrong/", "HASH_MISMATCH", {}],
    ["a missing binary", "/missing/", "DOWNLOAD_FAILED", {}],
    ["a server error", "/error/", "DOWNLOAD_FAILED", {}],
    ["a trickle below the speed floor", "/slow/", "DOWNLOAD_TOO_SLOW", { minBytesPerSecond: 1000, speedWindowMs: 300 }],
    ["a body that stalls past the deadline", "/stalled/", "DOWNLOAD_TIMEOUT", { deadlineMs: 300 }],
  ];
  for (const [name, prefix, code, policy] of cases) {
    test(`${name}: ${code}, and no file is left`, async () => {
      const dest = tempDest();
      expect(
        await refusal(downloadBinary(url(`${prefix}connector-linux-x64`), target, dest, { ...POLICY, ...policy })),
      ).toBe(code);
      expect(existsSync(dest)).toBe(false);
    });
  }

  test("a transfer cut mid-body: BODY_TOO_SHORT, and no file is left", async () => {
    const dest = tempDest();
    expect(
      await refusal(
        downloadBinary(new URL(`http://127.0.0.1:${cutter.port}/connector-linux-x64`), target, dest, POLICY),
      ),
    ).toBe("BODY_TOO_SHORT");
    expect(existsSync(dest)).toBe(false);
  });

  test("the speed floor and deadline run on the injected clock", async () => {
    const clock = new FakeClock();
    const dest = tempDest();
    const before = stalledRequests;
    // refusal() takes each outcome before time moves: advancing the fake clock also turns the event loop,
    // where a rejection nobody has taken yet would be reported as unhandled.
    const stalled = (limits: Partial<typeof POLICY>) =>
      refusal(downloadBinary(url("/stalled/connector-linux-x64"), target, dest, { ...POLICY, clock, ...limits }));
    const slow = stalled({ deadlineMs: 3_600_000, minBytesPerSecond: 1, speedWindowMs: 30_000 });
    // Time moves only once the request is at the server.
    for (let i = 0; i < 500 && stalledRequests === before; i++) await wait(10);
    await clock.advance(29_000);
    await clock.advance(1_000);
    expect(await slow).toBe("DOWNLOAD_TOO_SLOW");
    expect(existsSync(dest)).toBe(false);
    const late = stalled({ deadlineMs: 60_000, minBytesPerSecond: 0 });
    await clock.advance(60_000);
    expect(await late).toBe("DOWNLOAD_TIMEOUT");
  });

  test("a refused connection: DOWNLOAD_FAILED", async () => {
    const closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
    const port = closed.port;
    closed.stop(true);
    const dest = tempDest();
    expect(
      await refusal(downloadBinary(new URL(`http://127.0.0.1:${port}/connector-linux-x64`), target, dest, POLICY)),
    ).toBe("DOWNLOAD_FAILED");
    expect(existsSync(dest)).toBe(false);
  });

  test("a cancelled upgrade stops the transfer: DOWNLOAD_FAILED, no file left", async () => {
    const dest = tempDest();
    const controller = new AbortController();
    const running = downloadBinary(url("/stalled/connector-linux-x64"), target, dest, {
      ...POLICY,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    expect(await refusal(running)).toBe("DOWNLOAD_FAILED");
    expect(existsSync(dest)).toBe(false);
  });

  test("never overwrites an existing file: DOWNLOAD_FAILED and the file is kept", async () => {
    const dest = tempDest();
    writeFileSync(dest, "someone else's");
    expect(await refusal(downloadBinary(url("/r/connector-linux-x64"), target, dest, POLICY))).toBe("DOWNLOAD_FAILED");
    expect(readFileSync(dest, "utf8")).toBe("someone else's");
  });
});
