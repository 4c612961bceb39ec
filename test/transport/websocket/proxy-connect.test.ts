import { describe, expect, test } from "bun:test";
import { TunnelDialError } from "../../../src/transport/websocket/errors.ts";
import { isOneLine } from "../../support/printable.ts";
import { parseResponseHead } from "../../../src/transport/websocket/http-head.ts";
import {
  buildConnectRequest,
  checkConnectResponse,
  parseProxyUrl,
} from "../../../src/transport/websocket/proxy-connect.ts";

describe("proxy URL", () => {
  test("credentials are percent-decoded and never part of the display form", () => {
    const p = parseProxyUrl("http://us%40er:p%3Ass@proxy.local:3128");
    expect(p).toEqual({
      host: "proxy.local",
      port: 3128,
      display: "http://proxy.local:3128",
      credentials: "us@er:p:ss",
    });
  });
  test("the port defaults to 80 and IPv6 brackets are removed from the host", () => {
    expect(parseProxyUrl("http://[::1]").host).toBe("::1");
    expect(parseProxyUrl("http://[::1]").port).toBe(80);
  });
  test("an https:// proxy is refused with TUNNEL_PROXY (TLS inside TLS is not supported)", () => {
    expect(() => parseProxyUrl("https://proxy:443")).toThrow(TunnelDialError);
  });
});

describe("CONNECT request", () => {
  test("names the target and sends Basic credentials", () => {
    const text = Buffer.from(buildConnectRequest("gw.example", 443, parseProxyUrl("http://u:p@proxy:3128"))).toString();
    expect(text).toBe(
      `CONNECT gw.example:443 HTTP/1.1\r\nHost: gw.example:443\r\nProxy-Authorization: Basic ${btoa("u:p")}\r\n\r\n`,
    );
  });
  test("brackets an IPv6 target and sends no credentials when none are configured", () => {
    const text = Buffer.from(buildConnectRequest("::1", 8443, parseProxyUrl("http://proxy:3128"))).toString();
    expect(text).toBe("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
  });
});

describe("proxy answer", () => {
  const proxy = parseProxyUrl("http://user:s3cret-pw@proxy:3128");
  const errorFor = (status: string): TunnelDialError => {
    try {
      checkConnectResponse(parseResponseHead(`HTTP/1.1 ${status}`), proxy, "gw:443");
    } catch (err) {
      return err as TunnelDialError;
    }
    throw new Error("accepted");
  };

  test("the proxy's reason phrase is shown without its control characters", () => {
    const err = errorFor("403 Denied\u001b]0;owned\u0007\u009b2J");
    expect(err.message).toContain("403 Denied\\x1b]0;owned");
    expect(isOneLine(err.message)).toBe(true);
  });
  test("any 2xx opens the tunnel", () => {
    expect(() =>
      checkConnectResponse(parseResponseHead("HTTP/1.1 200 Connection established"), proxy, "gw:443"),
    ).not.toThrow();
  });
  test("407 is TUNNEL_PROXY about credentials, without the password", () => {
    const err = errorFor("407 Proxy Authentication Required");
    expect([err.code, err.status]).toEqual(["TUNNEL_PROXY", 407]);
    expect(err.message).toContain("rejected the configured credentials");
    expect(err.message).not.toContain("s3cret-pw");
  });
  test("403 is TUNNEL_PROXY naming the target", () => {
    const err = errorFor("403 Forbidden");
    expect([err.code, err.status]).toEqual(["TUNNEL_PROXY", 403]);
    expect(err.message).toContain("gw:443");
  });
});
