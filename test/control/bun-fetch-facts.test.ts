/**
 * What Bun's `fetch` reports for each network failure, pinned so that a Bun upgrade that changes an
 * error code breaks here, next to the mapping in src/control/fetch-errors.ts, rather than silently
 * turning a distinct exit code into "request failed". (DNS failure, `ENOTFOUND`, was checked by hand:
 * a test must not query a non-loopback resolver.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createTestCa } from "../support/test-pki.ts";
import { startConnectProxy } from "../support/connect-proxy.ts";
import { closedPort, startSilentListener } from "./fake-control-plane.ts";

const ca = createTestCa("Facts CA");
const other = createTestCa("Other CA");
const leaf = ca.issueServer();
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: leaf.cert, key: leaf.key }, fetch: () => new Response("ok") });
const url = `https://127.0.0.1:${server.port}/`;
afterAll(() => server.stop(true));

async function thrown(promise: Promise<unknown>): Promise<{ name: string; code: unknown; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return { name: e.name, code: e.code, message: e.message };
  }
  throw new Error("expected fetch to fail");
}

describe("Bun fetch error facts", () => {
  test("connection refused: code ECONNREFUSED", async () => {
    expect((await thrown(fetch(`https://127.0.0.1:${closedPort()}/`))).code).toBe("ECONNREFUSED");
  });

  test("server certificate from another CA: code UNABLE_TO_VERIFY_LEAF_SIGNATURE", async () => {
    expect((await thrown(fetch(url, { tls: { ca: [other.cert] } }))).code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  test("the pinned CA alone verifies the server (no system store needed)", async () => {
    expect((await fetch(url, { tls: { ca: [ca.cert] } })).status).toBe(200);
  });

  test("an unverified connection is not reused for a strict request to the same origin", async () => {
    expect((await fetch(url, { tls: { rejectUnauthorized: false }, keepalive: true })).status).toBe(200);
    expect((await thrown(fetch(url, { tls: { ca: [other.cert] } }))).code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  test("a server that does not speak TLS: code EPROTO", async () => {
    const plain = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("plain") });
    try {
      expect((await thrown(fetch(`https://127.0.0.1:${plain.port}/`, { tls: { rejectUnauthorized: false } }))).code).toBe("EPROTO");
    } finally {
      plain.stop(true);
    }
  });

  test("an AbortSignal.timeout deadline: name TimeoutError", async () => {
    const silent = startSilentListener();
    try {
      expect((await thrown(fetch(`https://127.0.0.1:${silent.port}/`, { signal: AbortSignal.timeout(100) }))).name).toBe("TimeoutError");
    } finally {
      silent.stop();
    }
  });

  test("a proxy answering 407 to CONNECT: code ERR_PROXY_TUNNEL with the status in the message", async () => {
    const proxy = startConnectProxy({ auth: { username: "u", password: "p" } });
    try {
      const err = await thrown(fetch(url, { tls: { ca: [ca.cert] }, proxy: { url: proxy.url, respectNoProxy: false } }));
      expect(err.code).toBe("ERR_PROXY_TUNNEL");
      expect(err.message).toContain("407");
    } finally {
      proxy.stop();
    }
  });

  test("an unreachable proxy: code ECONNREFUSED (the same as a refused target)", async () => {
    expect((await thrown(fetch(url, { proxy: { url: `http://127.0.0.1:${closedPort()}`, respectNoProxy: false } }))).code).toBe("ECONNREFUSED");
  });

  test("proxy: false connects directly even with HTTPS_PROXY in the environment", async () => {
    const proxy = startConnectProxy();
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = proxy.url;
    try {
      expect((await fetch(url, { tls: { ca: [ca.cert] }, proxy: false })).status).toBe(200);
      expect(proxy.connects).toBe(0);
      // Without the option Bun does follow the environment, so the check above could fail.
      expect((await fetch(url, { tls: { ca: [ca.cert] } })).status).toBe(200);
      expect(proxy.connects).toBe(1);
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
      proxy.stop();
    }
  });
});
