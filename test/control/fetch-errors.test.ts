import { describe, expect, test } from "bun:test";
import { classifyFetchError } from "../../src/control/fetch-errors.ts";
import { ExitCode } from "../../src/errors.ts";
import { isOneLine } from "../support/printable.ts";

const url = new URL("https://cloud.example:8443/v1/ca");
const base = { url, proxy: undefined, timeoutMs: 15_000, timedOut: false, strict: true };
const bunError = (code: string, message = code) => Object.assign(new TypeError(message), { code });

// [what Bun throws, proxy in use?, expected code, expected exit]
const TABLE: [string, unknown, string | undefined, string, number][] = [
  ["ENOTFOUND", bunError("ENOTFOUND"), undefined, "DNS_FAILURE", ExitCode.dnsFailure],
  ["EAI_AGAIN", bunError("EAI_AGAIN"), undefined, "DNS_FAILURE", ExitCode.dnsFailure],
  ["ECONNREFUSED", bunError("ECONNREFUSED"), undefined, "CONNECTION_REFUSED", ExitCode.connectionRefused],
  ["ECONNRESET", bunError("ECONNRESET"), undefined, "CONNECTION_RESET", ExitCode.connectionRefused],
  ["EPIPE", bunError("EPIPE"), undefined, "CONNECTION_RESET", ExitCode.connectionRefused],
  ["EHOSTUNREACH", bunError("EHOSTUNREACH"), undefined, "CONNECTION_REFUSED", ExitCode.connectionRefused],
  [
    "TimeoutError",
    Object.assign(new DOMException("The operation timed out.", "TimeoutError"), {}),
    undefined,
    "TIMEOUT",
    ExitCode.timeout,
  ],
  [
    "leaf not verified",
    bunError("UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
    undefined,
    "TLS_INSPECTION",
    ExitCode.caPinMismatch,
  ],
  ["self-signed", bunError("DEPTH_ZERO_SELF_SIGNED_CERT"), undefined, "TLS_INSPECTION", ExitCode.caPinMismatch],
  ["wrong name", bunError("ERR_TLS_CERT_ALTNAME_INVALID"), undefined, "TLS_HOSTNAME_MISMATCH", ExitCode.failure],
  ["wrong purpose (EKU)", bunError("INVALID_PURPOSE"), undefined, "TLS_WRONG_PURPOSE", ExitCode.failure],
  ["expired", bunError("CERT_HAS_EXPIRED"), undefined, "TLS_CERT_EXPIRED", ExitCode.failure],
  ["not yet valid", bunError("CERT_NOT_YET_VALID"), undefined, "TLS_CERT_NOT_YET_VALID", ExitCode.failure],
  ["EPROTO", bunError("EPROTO"), undefined, "TLS_HANDSHAKE_FAILED", ExitCode.failure],
  ["proxy reset at CONNECT", bunError("ECONNRESET"), "http://proxy.corp:3128", "PROXY_FAILURE", ExitCode.proxyFailure],
  [
    "proxy answered not HTTP",
    bunError("Malformed_HTTP_Response"),
    "http://proxy.corp:3128",
    "PROXY_FAILURE",
    ExitCode.proxyFailure,
  ],
  [
    "proxy 407",
    Object.assign(new Error("Proxy refused to open a tunnel: 407 Proxy Authentication Required"), {
      code: "ERR_PROXY_TUNNEL",
    }),
    "http://u:pw@proxy.corp:3128",
    "PROXY_FAILURE",
    ExitCode.proxyFailure,
  ],
  ["proxy refused", bunError("ECONNREFUSED"), "http://proxy.corp:3128", "PROXY_FAILURE", ExitCode.proxyFailure],
  ["proxy name unknown", bunError("ENOTFOUND"), "http://proxy.corp:3128", "PROXY_FAILURE", ExitCode.proxyFailure],
  ["timeout via proxy", new DOMException("t", "TimeoutError"), "http://proxy.corp:3128", "TIMEOUT", ExitCode.timeout],
  ["anything else", new Error("weird"), undefined, "REQUEST_FAILED", ExitCode.failure],
  ["a thrown string", "boom", undefined, "REQUEST_FAILED", ExitCode.failure],
];

describe("classifyFetchError", () => {
  for (const [name, err, proxy, code, exit] of TABLE) {
    test(`${name}${proxy ? " through a proxy" : ""} -> ${code} (exit ${exit})`, () => {
      const result = classifyFetchError(err, { ...base, proxy });
      expect(result.code).toBe(code);
      expect(result.exitCode).toBe(exit);
      expect(result.message).not.toContain("pw@");
    });
  }

  test("an aborted deadline is a timeout whatever the error looks like", () => {
    expect(classifyFetchError(bunError("ECONNRESET"), { ...base, timedOut: true }).code).toBe("TIMEOUT");
  });

  test("a 407 says the credentials are wrong and names the proxy without them", () => {
    const err = Object.assign(new Error("Proxy refused to open a tunnel: 407 Proxy Authentication Required"), {
      code: "ERR_PROXY_TUNNEL",
    });
    const result = classifyFetchError(err, { ...base, proxy: "http://alice:s3cret@proxy.corp:3128" });
    expect(result.message).toContain("http://proxy.corp:3128");
    expect(result.message).toContain("credentials");
    expect(result.message).not.toContain("s3cret");
    expect(result.message).not.toContain("alice");
  });

  test("a proxy's status line is shown without its control characters", () => {
    const err = Object.assign(new Error("Proxy refused to open a tunnel: 403 Forbidden\u001b]0;owned\u0007\u009b2J"), {
      code: "ERR_PROXY_TUNNEL",
    });
    const result = classifyFetchError(err, { ...base, proxy: "http://proxy.corp:3128" });
    expect(result.message).toContain("403 Forbidden\\x1b]0;owned");
    expect(isOneLine(result.message)).toBe(true);
  });

  test("each TLS check is named as such, not as an untrusted CA or a TLS version", () => {
    const now = new Date("2026-05-06T07:08:09.000Z");
    const say = (code: string) => classifyFetchError(bunError(code), { ...base, now }).message;
    expect(say("UNABLE_TO_VERIFY_LEAF_SIGNATURE")).toContain("the pinned cloud CA did not sign");
    expect(say("ERR_TLS_CERT_ALTNAME_INVALID")).toContain("signed by the cloud CA but not issued for cloud.example");
    expect(say("ERR_TLS_CERT_ALTNAME_INVALID")).not.toContain("TLS inspection");
    expect(say("INVALID_PURPOSE")).toContain("not meant for TLS servers (extended key usage");
    expect(say("INVALID_PURPOSE")).not.toContain("did not sign");
    expect(say("CERT_HAS_EXPIRED")).toContain("expired by this host's clock (now 2026-05-06T07:08:09.000Z");
    expect(say("CERT_NOT_YET_VALID")).toContain("not valid yet by this host's clock");
    expect(say("EPROTO")).toContain("offers only TLS older than 1.2");
  });

  test("a proxy that resets the connection at CONNECT is named, not the control plane", () => {
    const result = classifyFetchError(bunError("ECONNRESET"), { ...base, proxy: "http://u:pw@proxy.corp:3128" });
    expect(result.message).toContain(
      "The proxy http://proxy.corp:3128 failed: it closed the connection (ECONNRESET) while opening the tunnel to cloud.example:8443",
    );
    expect(result.message).not.toContain("Cannot connect to the control plane");
  });
});
