import { describe, expect, test } from "bun:test";
import { Secret } from "../../../src/secret.ts";
import {
  buildRefusalResponse,
  buildSwitchingResponse,
  buildUpgradeRequest,
  checkUpgradeRequest,
  checkUpgradeResponse,
  computeAcceptKey,
  formatAuthority,
  generateWebSocketKey,
  isUpgradeRefusal,
  negotiateProtocol,
  UpgradeResponseError,
  type UpgradeRefusal,
  type UpgradeRequest,
} from "../../../src/transport/websocket/handshake.ts";
import { HeadCollector, parseRequestHead, parseResponseHead } from "../../../src/transport/websocket/http-head.ts";

const headOf = (b: Uint8Array) => new HeadCollector(16384).push(b)?.head ?? "";

function request(overrides: Record<string, string | null> = {}, line = "GET /v1/tunnel HTTP/1.1"): string {
  const headers: Record<string, string | null> = {
    Host: "gw:443",
    Upgrade: "websocket",
    Connection: "keep-alive, Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Protocol": "connector.v1",
    ...overrides,
  };
  return [
    line,
    ...Object.entries(headers)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}: ${v}`),
  ].join("\r\n");
}

const check = (head: string) => checkUpgradeRequest(parseRequestHead(head), "/v1/tunnel");

describe("accept key", () => {
  test("RFC 6455 §1.3: dGhlIHNhbXBsZSBub25jZQ== gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", () => {
    expect(computeAcceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });
  test("generated keys are 16 random bytes in base64", () => {
    const a = generateWebSocketKey();
    expect(Buffer.from(a, "base64")).toHaveLength(16);
    expect(a).not.toBe(generateWebSocketKey());
  });
});

describe("client request", () => {
  test("has the PROTOCOL.md §4 headers and is accepted by the server-side check", () => {
    const bytes = buildUpgradeRequest({
      authority: "gw.example:8443",
      path: "/v1/tunnel",
      key: "dGhlIHNhbXBsZSBub25jZQ==",
      protocols: ["connector.v2", "connector.v1"],
      accessToken: new Secret("tok-123"),
      connectorVersion: "1.2.3",
    });
    const text = Buffer.from(bytes).toString();
    expect(text.startsWith("GET /v1/tunnel HTTP/1.1\r\nHost: gw.example:8443\r\n")).toBe(true);
    expect(text).toContain("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    expect(text).toContain("\r\nSec-WebSocket-Version: 13\r\n");
    expect(text).toContain("\r\nSec-WebSocket-Protocol: connector.v2, connector.v1\r\n");
    expect(text).toContain("\r\nAuthorization: Bearer tok-123\r\n");
    expect(text.endsWith("X-Connector-Version: 1.2.3\r\n\r\n")).toBe(true);
    const req = check(headOf(bytes)) as UpgradeRequest;
    expect(isUpgradeRefusal(req)).toBe(false);
    expect(req.protocols).toEqual(["connector.v2", "connector.v1"]);
    expect(req.accessToken?.reveal()).toBe("tok-123");
    expect(String(req.accessToken)).toBe("[redacted]");
    expect(req.connectorVersion).toBe("1.2.3");
  });

  test("without a token there is no Authorization header", () => {
    const bytes = buildUpgradeRequest({
      authority: "a:1",
      path: "/v1/tunnel",
      key: "k",
      protocols: ["connector.v1"],
      connectorVersion: "1",
    });
    expect(Buffer.from(bytes).toString()).not.toContain("Authorization");
  });

  test("IPv6 authorities are bracketed", () => {
    expect(formatAuthority("::1", 443)).toBe("[::1]:443");
    expect(formatAuthority("127.0.0.1", 443)).toBe("127.0.0.1:443");
  });
});

describe("server-side request check", () => {
  test.each([
    ["a POST", request({}, "POST /v1/tunnel HTTP/1.1"), 405],
    ["another path", request({}, "GET /other HTTP/1.1"), 404],
    ["HTTP/1.0", request({}, "GET /v1/tunnel HTTP/1.0"), 400],
    ["no Host", request({ Host: null }), 400],
    ["no Upgrade", request({ Upgrade: null }), 400],
    ["no Connection: Upgrade", request({ Connection: "keep-alive" }), 400],
    ["WebSocket version 8", request({ "Sec-WebSocket-Version": "8" }), 426],
    ["a short key", request({ "Sec-WebSocket-Key": "abc" }), 400],
    ["a Basic Authorization", request({ Authorization: "Basic dXNlcjpwYXNz" }), 401],
  ])("%s is refused with the right status", (_name, head, status) => {
    const result = check(head);
    expect(isUpgradeRefusal(result)).toBe(true);
    expect((result as UpgradeRefusal).status).toBe(status);
  });

  test("a version refusal lists version 13", () => {
    const result = check(request({ "Sec-WebSocket-Version": "8" })) as UpgradeRefusal;
    expect(result.headers).toEqual([["Sec-WebSocket-Version", "13"]]);
  });

  test("the query string is ignored when matching the path", () => {
    expect(isUpgradeRefusal(check(request({}, "GET /v1/tunnel?x=1 HTTP/1.1")))).toBe(false);
  });
});

describe("negotiation", () => {
  test("the gateway picks its most preferred protocol that the client offered", () => {
    expect(negotiateProtocol(["connector.v2", "connector.v1"], ["connector.v1"])).toBe("connector.v1");
    expect(negotiateProtocol(["connector.v1", "connector.v2"], ["connector.v2", "connector.v1"])).toBe("connector.v2");
    expect(negotiateProtocol(["connector.v9"], ["connector.v1"])).toBeUndefined();
  });
});

describe("server response and its check by the client", () => {
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const response = (overrides: Record<string, string | null> = {}) => {
    const headers: Record<string, string | null> = {
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      "Sec-WebSocket-Protocol": "connector.v1",
      ...overrides,
    };
    const lines = Object.entries(headers)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}: ${v}`);
    return parseResponseHead(["HTTP/1.1 101 Switching Protocols", ...lines].join("\r\n"));
  };

  test("a 101 built by the server passes the client's check and names the protocol", () => {
    const res = parseResponseHead(headOf(buildSwitchingResponse(key, "connector.v1")));
    expect(res.headers.get("sec-websocket-accept")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    expect(checkUpgradeResponse(res, key, ["connector.v1"])).toBe("connector.v1");
  });

  test.each([
    ["a wrong accept key", { "Sec-WebSocket-Accept": "AAAA" }],
    ["no Upgrade header", { Upgrade: null }],
    ["no Connection header", { Connection: null }],
    ["no subprotocol", { "Sec-WebSocket-Protocol": null }],
    ["a subprotocol we did not offer", { "Sec-WebSocket-Protocol": "connector.v7" }],
    ["an extension we did not offer", { "Sec-WebSocket-Extensions": "permessage-deflate" }],
  ])("%s is rejected", (_name, overrides) => {
    expect(() => checkUpgradeResponse(response(overrides), key, ["connector.v1"])).toThrow(UpgradeResponseError);
  });

  test("a refusal has a status line, a body with its length, and Connection: close", () => {
    const bytes = buildRefusalResponse(426, "no common version", [["Sec-WebSocket-Protocol", "connector.v1"]]);
    const done = new HeadCollector(16384).push(bytes);
    const res = parseResponseHead(done?.head ?? "");
    expect(res.status).toBe(426);
    expect(res.reason).toBe("Upgrade Required");
    expect(res.headers.get("sec-websocket-protocol")).toBe("connector.v1");
    expect(res.headers.get("connection")).toBe("close");
    expect(Number(res.headers.get("content-length"))).toBe(done?.rest.length ?? -1);
  });
});
