import { describe, expect, test } from "bun:test";
import { ConnectorError } from "../../src/errors.ts";
import { HeartbeatTimeoutError, ProtocolError, TunnelClosedError } from "../../src/mux/errors.ts";
import {
  CONNECT_FAILURE_REASONS,
  connectFailureReason,
  DISCONNECT_REASONS,
  disconnectReason,
} from "../../src/supervisor/down-reason.ts";
import { TunnelDialError, WebSocketProtocolError } from "../../src/transport/websocket/errors.ts";

const dial = (code: ConstructorParameters<typeof TunnelDialError>[0], status?: number) =>
  new TunnelDialError(code, "x", status === undefined ? {} : { status });

describe("connectFailureReason", () => {
  test("a dial error keeps its code; a refused upgrade is told by its status", () => {
    expect(connectFailureReason(dial("TUNNEL_REFUSED"))).toBe("TUNNEL_REFUSED");
    expect(connectFailureReason(dial("TUNNEL_TLS_CLOCK"))).toBe("TUNNEL_TLS_CLOCK");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE", 401))).toBe("TUNNEL_UNAUTHORIZED");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE", 403))).toBe("TUNNEL_FORBIDDEN");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE", 426))).toBe("TUNNEL_VERSION");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE", 503))).toBe("TUNNEL_GATEWAY_BUSY");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE", 429))).toBe("TUNNEL_GATEWAY_BUSY");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE", 404))).toBe("TUNNEL_HANDSHAKE");
    expect(connectFailureReason(dial("TUNNEL_HANDSHAKE"))).toBe("TUNNEL_HANDSHAKE");
  });

  test("a known code on another error is kept; anything else is OTHER, never free text", () => {
    expect(connectFailureReason(new ConnectorError("NO_ACCESS_TOKEN", "none"))).toBe("NO_ACCESS_TOKEN");
    expect(connectFailureReason(new ConnectorError("SOMETHING_NEW", "?"))).toBe("OTHER");
    expect(connectFailureReason(new Error("boom"))).toBe("OTHER");
    expect(connectFailureReason("a string")).toBe("OTHER");
  });

  test("every reason has an explanation an operator can act on", () => {
    for (const text of [...Object.values(CONNECT_FAILURE_REASONS), ...Object.values(DISCONNECT_REASONS)])
      expect(text.length).toBeGreaterThan(15);
  });
});

describe("disconnectReason", () => {
  const remote = (code: number, transportError?: Error) => ({
    code,
    reason: "",
    initiator: "remote" as const,
    error: new TunnelClosedError("x"),
    ...(transportError ? { transportError } : {}),
  });

  test("how the session ended decides the reason", () => {
    expect(
      disconnectReason({ code: 1001, reason: "", initiator: "local", error: new HeartbeatTimeoutError(30_000) }),
    ).toBe("TUNNEL_DEAD");
    expect(
      disconnectReason({
        code: 1002,
        reason: "",
        initiator: "local",
        error: new ProtocolError("PROTOCOL_UNKNOWN_TYPE", "bad"),
      }),
    ).toBe("PROTOCOL_ERROR");
    expect(disconnectReason(remote(1002, new WebSocketProtocolError("WS_RSV_SET", "rsv", 1002)))).toBe(
      "PROTOCOL_ERROR",
    );
    expect(disconnectReason({ code: 1000, reason: "connector stopping", initiator: "local" })).toBe("CONNECTOR_CLOSED");
    expect(disconnectReason(remote(1008))).toBe("GATEWAY_POLICY");
    expect(disconnectReason(remote(1006))).toBe("TUNNEL_LOST");
    expect(disconnectReason(remote(1000, new Error("ECONNRESET")))).toBe("TUNNEL_LOST");
    expect(disconnectReason(remote(1000))).toBe("GATEWAY_CLOSED");
    expect(disconnectReason(remote(1011))).toBe("GATEWAY_CLOSED");
  });
});

test("docs/OPERATIONS.md 'Troubleshooting tunnels' explains every code", async () => {
  const doc = await Bun.file(new URL("../../docs/OPERATIONS.md", import.meta.url)).text();
  const section = doc.slice(doc.indexOf("## Troubleshooting tunnels"), doc.indexOf("## Troubleshooting by preflight"));
  for (const code of [...Object.keys(CONNECT_FAILURE_REASONS), ...Object.keys(DISCONNECT_REASONS)])
    expect(section).toContain(`\`${code}\``);
});
