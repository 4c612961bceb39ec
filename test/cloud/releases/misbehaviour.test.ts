/**
 * Every misbehaviour mode of the release server, checked on the bytes it serves: each is exactly the
 * one attack it names, and /r/ keeps serving the genuine release.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash, verify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { ed25519PublicKey, KeysetSchema, ManifestSchema } from "../../../src/upgrade/format.ts";
import { CloudApiError } from "../errors.ts";
import { silentLog } from "../test-client.ts";
import { makeFakeKeys, writeFakeRelease, writeKeyDir, type FakeKeys } from "../../support/release-fixture.ts";
import { nextPatch } from "./misbehaviour.ts";
import { startReleaseServer, type ReleaseServer } from "./server.ts";

let dir: string;
let keys: FakeKeys;
let server: ReleaseServer;
/** A binary big enough that half of it and a flipped middle byte are unambiguous. */
const BINARY = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "misbehave-"));
  keys = makeFakeKeys();
  writeFakeRelease({
    dir: join(dir, "releases", "s4"),
    keys,
    version: "1.4.0",
    channel: "stable",
    sequence: 4,
    binary: () => BINARY,
  });
  writeFakeRelease({
    dir: join(dir, "releases", "b1"),
    keys,
    version: "1.5.0-rc.1",
    channel: "beta",
    sequence: 1,
    binary: () => BINARY,
  });
  server = await startReleaseServer({
    dir: join(dir, "releases"),
    signingKeysDir: writeKeyDir(join(dir, "keys"), keys),
    log: silentLog,
  });
});
afterEach(() => server.misbehave("none"));
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string) => fetch(`${server.baseUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
const bytes = async (path: string) => Buffer.from(await (await get(path)).arrayBuffer());
const genuine = (file: string) => readFileSync(join(dir, "releases", "s4", file));
const manifestOf = (text: Buffer | string) => v.parse(ManifestSchema, JSON.parse(text.toString()));
const signedBy = (publicKeyBase64: string, data: Buffer, sig: Buffer) =>
  verify(null, data, ed25519PublicKey(publicKeyBase64)!, sig);

/** The body of one request read off the socket as sent, and the declared Content-Length. */
function rawBody(path: string): Promise<{ contentLength: number | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(new URL(server.baseUrl).port), "127.0.0.1", () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error("no end within 10 s")));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)/i.exec(all.subarray(0, split).toString("latin1"))?.[1];
      resolve({ contentLength: length === undefined ? undefined : Number(length), body: all.subarray(split + 4) });
    });
  });
}

describe("body modes (the binary only)", () => {
  test("endless-body: random bytes past 10 MiB with no Content-Length", async () => {
    server.misbehave("endless-body");
    const response = await get("/stable/connector-linux-x64");
    expect(response.headers.get("content-length")).toBeNull();
    const reader = response.body!.getReader();
    let total = 0;
    const head: Buffer[] = [];
    while (total <= 10 * 1024 * 1024) {
      const { done, value } = await reader.read();
      expect(done).toBe(false);
      if (head.length < 2) head.push(Buffer.from(value!));
      total += value!.byteLength;
    }
    await reader.cancel();
    expect(total).toBeGreaterThan(10 * 1024 * 1024);
    expect(Buffer.concat(head).subarray(0, 64)).not.toEqual(BINARY.subarray(0, 64));
    // The manifest is untouched.
    expect(await bytes("/stable/manifest.json")).toEqual(genuine("manifest.json"));
  });

  test("truncated-body: the full Content-Length declared, half the bytes, then the connection closes", async () => {
    server.misbehave("truncated-body");
    const { contentLength, body } = await rawBody("/stable/connector-linux-x64");
    expect(contentLength).toBe(BINARY.length);
    expect(body).toEqual(BINARY.subarray(0, BINARY.length / 2));
    await expect(get("/stable/connector-linux-x64").then((r) => r.arrayBuffer())).rejects.toThrow();
  });

  test("wrong-hash: the same size, one byte flipped, so the SHA-256 differs", async () => {
    server.misbehave("wrong-hash");
    const response = await get("/stable/connector-linux-x64");
    expect(response.headers.get("content-length")).toBe(String(BINARY.length));
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(BINARY.length);
    const differing = [...body].flatMap((b, i) => (b === BINARY[i] ? [] : [i]));
    expect(differing).toEqual([BINARY.length / 2]);
    const manifest = manifestOf(await bytes("/stable/manifest.json"));
    expect(createHash("sha256").update(body).digest("hex")).not.toBe(manifest.targets["linux-x64"]!.sha256);
  });

  test("slow-body: the true Content-Length, the bytes in small pieces over time, complete in the end", async () => {
    server.misbehave("slow-body");
    const response = await get("/stable/connector-linux-x64");
    expect(response.headers.get("content-length")).toBe(String(BINARY.length));
    const reader = response.body!.getReader();
    const pieces: number[] = [];
    const got: Buffer[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pieces.push(value.byteLength);
      got.push(Buffer.from(value));
    }
    expect(Buffer.concat(got)).toEqual(BINARY);
    expect(pieces.length).toBeGreaterThanOrEqual(BINARY.length / 256);
    expect(Math.max(...pieces)).toBeLessThanOrEqual(256);
  }, 60_000);

  test("a mode set for one channel leaves the others alone; /r/ is always genuine", async () => {
    server.misbehave("wrong-hash", "beta");
    expect(await bytes("/stable/connector-linux-x64")).toEqual(BINARY);
    expect(await bytes("/beta/connector-linux-x64")).not.toEqual(BINARY);
    expect(await bytes("/r/b1/connector-linux-x64")).toEqual(BINARY);
    expect(server.describe().misbehaviour).toEqual({ beta: "wrong-hash" });
  });
});

describe("signed modes", () => {
  test("expired-manifest: re-signed by the release key, expires in the past, nothing else changed", async () => {
    server.misbehave("expired-manifest");
    const text = await bytes("/stable/manifest.json");
    const sig = await bytes("/stable/manifest.json.sig");
    expect(signedBy(keys.release.publicKey, text, sig)).toBe(true);
    const served = manifestOf(text);
    const original = manifestOf(genuine("manifest.json"));
    expect(Date.parse(served.expires)).toBeLessThan(Date.now());
    expect(Date.parse(served.released)).toBeLessThan(Date.parse(served.expires));
    expect({ ...served, expires: "", released: "" }).toEqual({ ...original, expires: "", released: "" });
    expect(await bytes("/r/s4/manifest.json")).toEqual(genuine("manifest.json"));
  });

  test("older-sequence: sequence N-1 with a higher version, validly signed", async () => {
    server.misbehave("older-sequence");
    const text = await bytes("/stable/manifest.json");
    expect(signedBy(keys.release.publicKey, text, await bytes("/stable/manifest.json.sig"))).toBe(true);
    const served = manifestOf(text);
    expect(served.sequence).toBe(3);
    expect(served.version).toBe("1.4.1");
    expect(nextPatch("1.5.0-rc.1")).toBe("1.5.1");
    // The manifest and its signature agree however many times they are fetched.
    expect(await bytes("/stable/manifest.json")).toEqual(text);
  });

  test("unknown-key: signed by a key the key set does not list, named by its id", async () => {
    server.misbehave("unknown-key");
    const text = await bytes("/stable/manifest.json");
    const served = manifestOf(text);
    const keyset = v.parse(KeysetSchema, JSON.parse((await bytes("/stable/release-keys.json")).toString()));
    expect(keyset.keys.map((k) => k.id)).toEqual([keys.release.id]);
    expect(served.keyId).not.toBe(keys.release.id);
    expect(signedBy(keys.release.publicKey, text, await bytes("/stable/manifest.json.sig"))).toBe(false);
    expect(await bytes("/stable/release-keys.json")).toEqual(genuine("release-keys.json"));
  });

  test("unvouched-key: a key set listing a fresh key, 'signed' by non-roots under the roots' file names", async () => {
    server.misbehave("unvouched-key");
    const text = await bytes("/stable/manifest.json");
    const keysetText = await bytes("/stable/release-keys.json");
    const keyset = v.parse(KeysetSchema, JSON.parse(keysetText.toString()));
    const served = manifestOf(text);
    const fresh = keyset.keys.find((k) => k.id === served.keyId)!;
    expect(keyset.keys.map((k) => k.id)).toEqual([keys.release.id, served.keyId]);
    expect(signedBy(fresh.publicKey, text, await bytes("/stable/manifest.json.sig"))).toBe(true);
    for (const root of keys.roots) {
      const sig = await get(`/stable/release-keys.json.${root.id}.sig`);
      expect(sig.status).toBe(200);
      const sigBytes = Buffer.from(await sig.arrayBuffer());
      expect(sigBytes.length).toBe(64);
      expect(signedBy(root.publicKey, keysetText, sigBytes)).toBe(false);
    }
    expect(await bytes(`/r/s4/release-keys.json.${keys.roots[0]!.id}.sig`)).toEqual(
      genuine(`release-keys.json.${keys.roots[0]!.id}.sig`),
    );
  });

  test("without --release-signing-keys the modes that need the release key are refused with 409", async () => {
    const bare = await startReleaseServer({ dir: join(dir, "releases"), log: silentLog });
    try {
      for (const mode of ["expired-manifest", "older-sequence"] as const) {
        let error: unknown;
        try {
          bare.misbehave(mode);
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(CloudApiError);
        expect((error as CloudApiError).status).toBe(409);
        expect((error as CloudApiError).message).toContain("--release-signing-keys");
      }
      bare.misbehave("unknown-key"); // fresh keys only: no release key needed
      expect(bare.describe().misbehaviour).toEqual({ "*": "unknown-key" });
    } finally {
      await bare.stop();
    }
  });
});
