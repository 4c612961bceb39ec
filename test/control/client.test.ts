import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { ControlClient, fetchPinnedCa, type FetchFn } from "../../src/control/client.ts";
import { REQUEST_TIMEOUT_MS } from "../../src/control/config.ts";
import { ExitCode } from "../../src/errors.ts";
import { isOneLine } from "../support/printable.ts";
import { createTestCa } from "../support/test-pki.ts";
import {
  misfitCertificate,
  startBrokenProxy,
  startLegacyTlsServer,
  type CertificateMisfit,
} from "../support/tls-misfits.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";
import {
  closedPort,
  SECRET,
  startFakeControlPlane,
  startSilentListener,
  type FakeControlPlane,
} from "./fake-control-plane.ts";
import { controlFailure } from "../support/control-failure.ts";

const cloud = startFakeControlPlane();
const otherCa = createTestCa("Someone Else");
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
afterAll(() => cloud.stop());

const failure = controlFailure;

function fresh(options: Parameters<typeof startFakeControlPlane>[0] = {}): FakeControlPlane {
  const cp = startFakeControlPlane({ ca: cloud.ca, ...options });
  cleanups.push(() => cp.stop());
  return cp;
}

describe("fetchPinnedCa", () => {
  test("returns the CA when its public key matches the pin", async () => {
    const pem = await fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin });
    expect(new X509Certificate(pem).subject).toContain("Fake Cloud CA");
  });

  test("a CA that does not match the pin is reported as TLS inspection with the bypass to add (exit 15)", async () => {
    const err = await failure(fetchPinnedCa({ controlUrl: cloud.url, caPin: otherCa.pin }));
    expect(err.code).toBe("CA_PIN_MISMATCH");
    expect(err.exitCode).toBe(ExitCode.caPinMismatch);
    expect(err.message).toContain("TLS inspection");
    expect(err.message).toContain("add 127.0.0.1 to your TLS-inspection bypass list");
  });

  test("only the first certificate of the body is kept, so nothing appended becomes trusted", async () => {
    const cp = fresh();
    cp.override("GET /v1/ca", () => new Response(cloud.ca.cert + otherCa.cert));
    const pem = await fetchPinnedCa({ controlUrl: cp.url, caPin: cloud.ca.pin });
    expect(pem.match(/BEGIN CERTIFICATE/g)?.length).toBe(1);
    expect(new X509Certificate(pem).subject).toContain("Fake Cloud CA");
  });

  test("a body that is not a certificate is a bad response, not a crash", async () => {
    const cp = fresh();
    cp.override("GET /v1/ca", () => new Response("<html>captive portal</html>"));
    const err = await failure(fetchPinnedCa({ controlUrl: cp.url, caPin: cloud.ca.pin }));
    expect(err.code).toBe("BAD_RESPONSE");
  });

  // The CA fetch is not verified: whatever answers it could be a middlebox, so no answer is believed.
  const unverifiedAnswers: [string, () => Response][] = [
    [
      "a proxy's 403 page",
      () => new Response("<html>Blocked by policy</html>", { status: 403, headers: { "content-type": "text/html" } }),
    ],
    [
      "a claimed KEY_REVOKED",
      () => Response.json({ error: { code: "KEY_REVOKED", message: "revoked" } }, { status: 403 }),
    ],
    [
      "an API error full of terminal escapes",
      () =>
        Response.json({ error: { code: "X\u001b[31m", message: "\u001b]0;owned\u0007\u001b[2J" } }, { status: 400 }),
    ],
    ["a 503", () => new Response("unavailable", { status: 503 })],
  ];
  for (const [name, answer] of unverifiedAnswers) {
    test(`${name} on the unverified CA fetch is reported as likely TLS inspection (exit 15), never parsed`, async () => {
      const cp = fresh();
      cp.override("GET /v1/ca", answer);
      const err = await failure(fetchPinnedCa({ controlUrl: cp.url, caPin: cloud.ca.pin }));
      expect(err.code).toBe("TLS_INSPECTION");
      expect(err.exitCode).toBe(ExitCode.caPinMismatch);
      expect(err.message).toContain("add 127.0.0.1 to your TLS-inspection bypass list");
      expect(err.message).not.toContain("revoked");
      expect(isOneLine(err.message)).toBe(true);
    });
  }

  test("a CA whose subject carries control characters is named printably when it does not match the pin", async () => {
    // node-forge takes the UTF-8 bytes of the name as a binary string.
    const odd = createTestCa(Buffer.from("Evil\u202eAC\u009b2J\u0085\u001b[1m", "utf8").toString("latin1"));
    const cp = fresh();
    cp.override("GET /v1/ca", () => new Response(odd.cert));
    const err = await failure(fetchPinnedCa({ controlUrl: cp.url, caPin: cloud.ca.pin }));
    expect(err.code).toBe("CA_PIN_MISMATCH");
    expect(err.message).toContain("Evil");
    expect(isOneLine(err.message)).toBe(true);
  });

  test("an endless body is cut at the size limit", async () => {
    const cp = fresh();
    cp.override(
      "GET /v1/ca",
      () => new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(64 * 1024)) })),
    );
    const err = await failure(fetchPinnedCa({ controlUrl: cp.url, caPin: cloud.ca.pin }));
    expect(err.code).toBe("BAD_RESPONSE");
    expect(err.message).toContain("limit");
  });
});

describe("ControlClient (strict, pinned)", () => {
  const request = (csr = "-----BEGIN CERTIFICATE REQUEST-----\nx\n-----END CERTIFICATE REQUEST-----") => ({
    secret: SECRET,
    csr,
    name: "host-1",
    version: "1.0.0",
  });

  test("a server certificate not signed by the pinned CA is reported as TLS inspection (exit 15)", async () => {
    // The middlebox passes /v1/ca through (pin matches) but terminates TLS with its own CA.
    const mitm = fresh({ serverCa: otherCa });
    const ca = await fetchPinnedCa({ controlUrl: mitm.url, caPin: cloud.ca.pin });
    const err = await failure(
      new ControlClient({ controlUrl: mitm.url, caCertificate: ca }).request("GET", "/v1/ping"),
    );
    expect(err.code).toBe("TLS_INSPECTION");
    expect(err.exitCode).toBe(ExitCode.caPinMismatch);
    expect(err.message).toContain("add 127.0.0.1 to your TLS-inspection bypass list");
  });

  test("the system trust store is not used: only the pinned CA is trusted", async () => {
    const err = await failure(
      new ControlClient({ controlUrl: cloud.url, caCertificate: otherCa.cert }).request("GET", "/v1/ca"),
    );
    expect(err.exitCode).toBe(ExitCode.caPinMismatch);
  });

  const rejections: [string, number, number, string][] = [
    ["KEY_EXPIRED", 403, ExitCode.keyExpired, "expired"],
    ["KEY_REVOKED", 403, ExitCode.keyRevoked, "revoked"],
    ["KEY_EXHAUSTED", 403, ExitCode.keyExhausted, "maximum number of times"],
    ["KEY_UNKNOWN", 401, ExitCode.keyUnknown, "does not know this provisioning key"],
    ["CSR_WEAK_KEY", 400, ExitCode.enrollRejected, "CSR_WEAK_KEY: too small"],
    ["BAD_REQUEST", 400, ExitCode.enrollRejected, "BAD_REQUEST"],
    ["INTERNAL", 500, ExitCode.failure, "try again later"],
  ];
  for (const [code, status, exit, text] of rejections) {
    test(`API error ${code} (${status}) exits ${exit} with its own message`, async () => {
      const cp = fresh();
      cp.override("POST /v1/enroll", () => Response.json({ error: { code, message: "too small" } }, { status }));
      const err = await failure(
        new ControlClient({ controlUrl: cp.url, caCertificate: cloud.ca.cert }).enroll(request()),
      );
      expect(err.exitCode).toBe(exit);
      expect(err.message).toContain(text);
      if (code.startsWith("KEY_")) expect(err.code).toBe(code);
    });
  }

  test("an API error's code and message are shown without their control characters", async () => {
    const cp = fresh();
    cp.override("POST /v1/enroll", () =>
      Response.json(
        { error: { code: "CSR_\u001b[2J", message: "bad\u001b]0;owned\u0007\nline\u009b" } },
        { status: 400 },
      ),
    );
    const err = await failure(
      new ControlClient({ controlUrl: cp.url, caCertificate: cloud.ca.cert }).enroll(request()),
    );
    expect(err.exitCode).toBe(ExitCode.enrollRejected);
    expect(err.message).toContain("\\x1b]0;owned");
    expect(isOneLine(err.message)).toBe(true);
  });

  test("a 4xx without an error body still exits 21", async () => {
    const cp = fresh();
    cp.override("POST /v1/enroll", () => new Response("nope", { status: 418 }));
    const err = await failure(
      new ControlClient({ controlUrl: cp.url, caCertificate: cloud.ca.cert }).enroll(request()),
    );
    expect(err.exitCode).toBe(ExitCode.enrollRejected);
  });

  test("a 201 whose body does not match the schema is a bad response naming the field", async () => {
    const cp = fresh();
    cp.override("POST /v1/enroll", () =>
      Response.json({ connectorId: "c", name: "n", group: "g", certificate: "x" }, { status: 201 }),
    );
    const err = await failure(
      new ControlClient({ controlUrl: cp.url, caCertificate: cloud.ca.cert }).enroll(request()),
    );
    expect(err.code).toBe("BAD_RESPONSE");
    expect(err.message).toContain("certificate");
  });

  test("identifiers the connector prints (connector id, group, gateway id) may not carry control characters", async () => {
    const cp = fresh();
    const good = {
      connectorId: "c",
      name: "host-1",
      group: "g",
      certificate: cloud.ca.cert,
      chain: [],
      caCertificate: cloud.ca.cert,
      gateways: [{ id: "gw-1", url: "wss://127.0.0.1:1/" }],
    };
    for (const bad of [
      { connectorId: "c\u001b[2J" },
      { group: "g\u009b" },
      { gateways: [{ id: "gw\u202e", url: "wss://127.0.0.1:1/" }] },
    ]) {
      cp.override("POST /v1/enroll", () => Response.json({ ...good, ...bad }, { status: 201 }));
      const err = await failure(
        new ControlClient({ controlUrl: cp.url, caCertificate: cloud.ca.cert }).enroll(request()),
      );
      expect(err.code).toBe("BAD_RESPONSE");
    }
  });

  test("a redirect is not followed", async () => {
    const cp = fresh();
    cp.override(
      "POST /v1/enroll",
      () => new Response(null, { status: 302, headers: { location: "https://127.0.0.1:1/" } }),
    );
    const err = await failure(
      new ControlClient({ controlUrl: cp.url, caCertificate: cloud.ca.cert }).enroll(request()),
    );
    expect(err.exitCode).toBe(ExitCode.failure);
  });

  test("an invalid request is refused locally without echoing the secret", async () => {
    const err = await failure(
      new ControlClient({ controlUrl: cloud.url, caCertificate: cloud.ca.cert }).enroll({
        ...request(),
        name: "x".repeat(64),
      }),
    );
    expect(err.code).toBe("BAD_ENROLL_REQUEST");
    expect(err.message).toContain("name");
    expect(err.message).not.toContain(SECRET);
  });
});

describe("network failures", () => {
  test("connection refused exits 17", async () => {
    const err = await failure(fetchPinnedCa({ controlUrl: `https://127.0.0.1:${closedPort()}`, caPin: cloud.ca.pin }));
    expect(err.code).toBe("CONNECTION_REFUSED");
    expect(err.exitCode).toBe(ExitCode.connectionRefused);
  });

  test("a control plane that accepts and never answers times out (exit 18) at the injected deadline", async () => {
    const silent = startSilentListener();
    cleanups.push(() => silent.stop());
    const started = performance.now();
    const err = await failure(
      fetchPinnedCa({ controlUrl: `https://127.0.0.1:${silent.port}`, caPin: cloud.ca.pin, timeoutMs: 150 }),
    );
    expect(err.code).toBe("TIMEOUT");
    expect(err.exitCode).toBe(ExitCode.timeout);
    // The injected 150 ms deadline, not the default one (REQUEST_TIMEOUT_MS, 15 s), ended it: the bound
    // only tells the two apart, with room for a busy machine.
    expect(performance.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS - 1_000);
  });

  test("a DNS failure (as Bun reports it) exits 16 and names the host", async () => {
    const fakeFetch: FetchFn = () =>
      Promise.reject(Object.assign(new TypeError("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));
    const err = await failure(
      fetchPinnedCa({ controlUrl: "https://cloud.invalid", caPin: cloud.ca.pin, fetch: fakeFetch }),
    );
    expect(err.exitCode).toBe(ExitCode.dnsFailure);
    expect(err.message).toContain("cloud.invalid");
  });
});

describe("through an HTTP CONNECT proxy", () => {
  function proxy(options: Parameters<typeof startConnectProxy>[0] = {}): ConnectProxy {
    const p = startConnectProxy(options);
    cleanups.push(() => p.stop());
    return p;
  }

  test("both the CA fetch and strict requests go through the proxy", async () => {
    const p = proxy();
    const ca = await fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin, proxy: p.url });
    await new ControlClient({ controlUrl: cloud.url, caCertificate: ca, proxy: p.url }).request("GET", "/v1/ca");
    expect(p.connects).toBe(2);
    expect(p.targets.every((t) => t === `127.0.0.1:${cloud.port}`)).toBe(true);
  });

  test("basic auth credentials from the proxy URL are sent", async () => {
    const p = proxy({ auth: { username: "connector", password: "pa:ss@word" } });
    await fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin, proxy: p.urlWithAuth() });
    expect(p.tunnels).toBe(1);
  });

  test("wrong credentials (407) exit 19, name the proxy and never its password", async () => {
    const p = proxy({ auth: { username: "connector", password: "right" } });
    const err = await failure(
      fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin, proxy: p.urlWithAuth("connector", "hunter2") }),
    );
    expect(err.code).toBe("PROXY_FAILURE");
    expect(err.exitCode).toBe(ExitCode.proxyFailure);
    expect(err.message).toContain(`127.0.0.1:${p.port}`);
    expect(err.message).toContain("407");
    expect(err.message).not.toContain("hunter2");
  });

  test("a proxy that refuses the CONNECT (403) exits 19", async () => {
    const p = proxy({ refuseConnect: true });
    const err = await failure(fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin, proxy: p.url }));
    expect(err.exitCode).toBe(ExitCode.proxyFailure);
    expect(err.message).toContain("403");
  });

  test("an unreachable proxy exits 19, not 17", async () => {
    const err = await failure(
      fetchPinnedCa({
        controlUrl: cloud.url,
        caPin: cloud.ca.pin,
        proxy: `http://u:secretpw@127.0.0.1:${closedPort()}`,
      }),
    );
    expect(err.exitCode).toBe(ExitCode.proxyFailure);
    expect(err.message).not.toContain("secretpw");
  });

  test("a host on the NO_PROXY list connects directly", async () => {
    const p = proxy();
    await fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin, proxy: p.url, noProxy: ["127.0.0.0/8"] });
    expect(p.connects).toBe(0);
  });
});

describe("each failed TLS or proxy check is named as such (real sockets)", () => {
  const expected: [CertificateMisfit, string, number, string][] = [
    ["wrong-name", "TLS_HOSTNAME_MISMATCH", ExitCode.failure, "not issued for 127.0.0.1"],
    ["wrong-purpose", "TLS_WRONG_PURPOSE", ExitCode.failure, "extended key usage"],
    ["expired", "TLS_CERT_EXPIRED", ExitCode.failure, "this host's clock"],
    ["not-yet-valid", "TLS_CERT_NOT_YET_VALID", ExitCode.failure, "this host's clock"],
    ["other-ca", "TLS_INSPECTION", ExitCode.caPinMismatch, "TLS inspection"],
  ];
  for (const [misfit, code, exit, text] of expected) {
    test(`a control plane whose certificate is ${misfit}: ${code} (exit ${exit})`, async () => {
      const cert = misfitCertificate(cloud.ca, misfit);
      const server = Bun.serve({
        hostname: "127.0.0.1",
        port: 0,
        tls: { cert: cert.cert, key: cert.key },
        fetch: () => new Response("ok"),
      });
      cleanups.push(() => server.stop(true));
      const err = await failure(
        new ControlClient({ controlUrl: `https://127.0.0.1:${server.port}`, caCertificate: cloud.ca.cert }).request(
          "GET",
          "/v1/ping",
        ),
      );
      expect([err.code, err.exitCode]).toEqual([code, exit]);
      expect(err.message).toContain(text);
    });
  }

  test("a control plane that offers only TLS 1.1: the handshake failure names the TLS version among its causes", async () => {
    const legacy = await startLegacyTlsServer(cloud.ca.issueServer());
    cleanups.push(() => legacy.stop());
    const err = await failure(
      new ControlClient({ controlUrl: `https://127.0.0.1:${legacy.port}`, caCertificate: cloud.ca.cert }).request(
        "GET",
        "/v1/ping",
      ),
    );
    expect(err.code).toBe("TLS_HANDSHAKE_FAILED");
    expect(err.message).toContain("TLS older than 1.2");
  });

  for (const mode of ["close", "reset", "close-after-200", "garbage"] as const) {
    test(`a proxy that does "${mode}" at CONNECT is a proxy failure naming it (exit 19), not the control plane refusing`, async () => {
      const proxy = startBrokenProxy(mode);
      cleanups.push(() => proxy.stop());
      const err = await failure(fetchPinnedCa({ controlUrl: cloud.url, caPin: cloud.ca.pin, proxy: proxy.url }));
      expect([err.code, err.exitCode]).toEqual(["PROXY_FAILURE", ExitCode.proxyFailure]);
      expect(err.message).toContain(`The proxy ${proxy.url} failed`);
    });
  }
});
