import { describe, expect, test } from "bun:test";
import { HttpHeadError } from "../../../src/transport/websocket/errors.ts";
import {
  HeadCollector,
  headerHasToken,
  headerList,
  parseRequestHead,
  parseResponseHead,
  serializeHead,
} from "../../../src/transport/websocket/http-head.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

describe("HeadCollector", () => {
  test("finds the end of a head split inside the blank line and returns the bytes after it", () => {
    const c = new HeadCollector(1024);
    expect(c.push(bytes("HTTP/1.1 101 OK\r\nA: b\r"))).toBeNull();
    expect(c.push(bytes("\n\r"))).toBeNull();
    const done = c.push(bytes("\nFRAME"));
    expect(done?.head).toBe("HTTP/1.1 101 OK\r\nA: b");
    expect(Buffer.from(done?.rest ?? []).toString()).toBe("FRAME");
  });

  test("a head that grows past the limit without ending is an error", () => {
    const c = new HeadCollector(64);
    expect(c.push(bytes("GET / HTTP/1.1\r\n"))).toBeNull();
    expect(() => c.push(bytes(`X: ${"a".repeat(100)}`))).toThrow(HttpHeadError);
  });

  test("a complete head longer than the limit is an error", () => {
    const c = new HeadCollector(16);
    expect(() => c.push(bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(40)}\r\n\r\n`))).toThrow(HttpHeadError);
  });
});

describe("parsing", () => {
  test("a request line and headers; names are case-insensitive, repeats are joined", () => {
    const req = parseRequestHead("GET /v1/tunnel HTTP/1.1\r\nHost: a:1\r\nX-A: 1\r\nx-a: 2");
    expect([req.method, req.target, req.version]).toEqual(["GET", "/v1/tunnel", "HTTP/1.1"]);
    expect(req.headers.get("host")).toBe("a:1");
    expect(req.headers.get("x-a")).toBe("1, 2");
  });

  test("a status line with and without a reason", () => {
    expect(parseResponseHead("HTTP/1.1 407 Proxy Authentication Required").status).toBe(407);
    expect(parseResponseHead("HTTP/1.0 200").reason).toBe("");
  });

  test.each([
    "GET /\r\nHost: x",
    "HTTP/2 200 OK",
    "HTTP/1.1 20 OK",
    "GET / HTTP/1.1\r\nno colon",
    "GET / HTTP/1.1\r\nBad Name: x",
  ])("malformed head %p is an HttpHeadError", (head) => {
    expect(() => (head.startsWith("HTTP") ? parseResponseHead(head) : parseRequestHead(head))).toThrow(HttpHeadError);
  });

  test("token lists", () => {
    expect(headerList(" a, b ,,c")).toEqual(["a", "b", "c"]);
    expect(headerHasToken("keep-alive, Upgrade", "upgrade")).toBe(true);
    expect(headerHasToken("keep-alive", "upgrade")).toBe(false);
  });
});

describe("serializeHead", () => {
  test("writes CRLF-terminated lines and a blank line", () => {
    expect(Buffer.from(serializeHead("GET / HTTP/1.1", [["Host", "x"]])).toString()).toBe(
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
  });
  test("refuses CR or LF in a value (header injection)", () => {
    expect(() => serializeHead("GET / HTTP/1.1", [["X", "a\r\nEvil: 1"]])).toThrow(HttpHeadError);
  });
});
