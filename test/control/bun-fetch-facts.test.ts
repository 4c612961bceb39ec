/**
 * What Bun's `fetch` reports for each network failure, pinned so that a Bun upgrade that changes an
 * error code breaks here, next to the mapping in src/control/fetch-errors.ts, rather than silently
 * turning a distinct exit code into "request failed". (DNS failure, `ENOTFOUND`, was checked by hand:
 * a test must not query a non-loopback resolver.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createTestCa } from "../support/test-pki.ts";
import { startConnectProxy } from "../support/connect-proxy.ts";
import {
  misfitCertificate,
  startBrokenProxy,
  startLegacyTlsServer,
  type CertificateMisfit,
} from "../support/tls-misfits.ts";
import { closedPort, startSilentListener } from "./fake-control-plane.ts";

const ca = createTestCa("Facts CA");
const other = createTestCa("Other CA");
const leaf = ca.issueServer();
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  tls: { cert: leaf.cert, key: leaf.key },
  fetch: () => new Response("ok"),
});
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
      expect(
        (await thrown(fetch(`https://127.0.0.1:${plain.port}/`, { tls: { rejectUnauthorized: false } }))).code,
      ).toBe("EPROTO");
    } finally {
      plain.stop(true);
    }
  });

  test("an AbortSignal.timeout deadline: name TimeoutError", async () => {
    const silent = startSilentListener();
    try {
      expect(
        (await thrown(fetch(`https://127.0.0.1:${silent.port}/`, { signal: AbortSignal.timeout(100) }))).name,
      ).toBe("TimeoutError");
    } finally {
      silent.stop();
    }
  });

  test("a proxy answering 407 to CONNECT: code ERR_PROXY_TUNNEL with the status in the message", async () => {
    const proxy = startConnectProxy({ auth: { username: "u", password: "p" } });
    try {
      const err = await thrown(
        fetch(url, { tls: { ca: [ca.cert] }, proxy: { url: proxy.url, respectNoProxy: false } }),
      );
      expect(err.code).toBe("ERR_PROXY_TUNNEL");
      expect(err.message).toContain("407");
    } finally {
      proxy.stop();
    }
  });

  // Which check failed, as src/tls-failure.ts reads it. The chain is checked before the name and
  // the purpose, so those two only show for a certificate the trusted CA signed; dates come first.
  const certificateFacts: [CertificateMisfit, string][] = [
    ["wrong-name", "ERR_TLS_CERT_ALTNAME_INVALID"],
    ["wrong-purpose", "INVALID_PURPOSE"],
    ["expired", "CERT_HAS_EXPIRED"],
    ["not-yet-valid", "CERT_NOT_YET_VALID"],
    ["other-ca", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
  ];
  for (const [misfit, code] of certificateFacts) {
    test(`a server certificate that is ${misfit}: code ${code}`, async () => {
      const cert = misfitCertificate(ca, misfit);
      const bad = Bun.serve({
        hostname: "127.0.0.1",
        port: 0,
        tls: { cert: cert.cert, key: cert.key },
        fetch: () => new Response("ok"),
      });
      try {
        expect((await thrown(fetch(`https://127.0.0.1:${bad.port}/`, { tls: { ca: [ca.cert] } }))).code).toBe(code);
      } finally {
        bad.stop(true);
      }
    });
  }

  test("a foreign CA's certificate for another name or purpose: UNABLE_TO_VERIFY (the chain is checked first); expired: CERT_HAS_EXPIRED", async () => {
    for (const [misfit, code] of [
      ["wrong-name", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
      ["wrong-purpose", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
      ["expired", "CERT_HAS_EXPIRED"],
    ] as const) {
      const cert = misfitCertificate(other, misfit);
      const bad = Bun.serve({
        hostname: "127.0.0.1",
        port: 0,
        tls: { cert: cert.cert, key: cert.key },
        fetch: () => new Response("ok"),
      });
      try {
        expect([
          misfit,
          (await thrown(fetch(`https://127.0.0.1:${bad.port}/`, { tls: { ca: [ca.cert] } }))).code,
        ]).toEqual([misfit, code]);
      } finally {
        bad.stop(true);
      }
    }
  });

  test("a TLS 1.1-only server: code EPROTO, as for a server that is not TLS at all", async () => {
    const legacy = await startLegacyTlsServer(leaf);
    try {
      expect((await thrown(fetch(`https://127.0.0.1:${legacy.port}/`, { tls: { ca: [ca.cert] } }))).code).toBe(
        "EPROTO",
      );
    } finally {
      legacy.stop();
    }
  });

  for (const [mode, code] of [
    ["close", "ECONNRESET"],
    ["reset", "ECONNRESET"],
    ["close-after-200", "ECONNRESET"],
    ["garbage", "Malformed_HTTP_Response"],
  ] as const) {
    test(`a proxy that ${mode === "garbage" ? "answers CONNECT with something not HTTP" : `does "${mode}" at CONNECT`}: code ${code}`, async () => {
      const proxy = startBrokenProxy(mode);
      try {
        expect(
          (await thrown(fetch(url, { tls: { ca: [ca.cert] }, proxy: { url: proxy.url, respectNoProxy: false } }))).code,
        ).toBe(code);
      } finally {
        proxy.stop();
      }
    });
  }

  test("an unreachable proxy: code ECONNREFUSED (the same as a refused target)", async () => {
    expect(
      (await thrown(fetch(url, { proxy: { url: `http://127.0.0.1:${closedPort()}`, respectNoProxy: false } }))).code,
    ).toBe("ECONNREFUSED");
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
