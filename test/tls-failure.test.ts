import { describe, expect, test } from "bun:test";
import { describeTlsFailure, tlsFailureKind, type TlsFailureKind } from "../src/tls-failure.ts";

describe("tlsFailureKind", () => {
  // [code, message, kind]: the codes and messages Bun 1.4.5 was seen to report (see the module doc).
  const table: [string | undefined, string, TlsFailureKind | undefined][] = [
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate", "untrusted"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "self signed certificate", "untrusted"],
    ["SELF_SIGNED_CERT_IN_CHAIN", "", "untrusted"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames", "hostname"],
    ["INVALID_PURPOSE", "unsupported certificate purpose", "purpose"],
    ["CERT_HAS_EXPIRED", "certificate has expired", "expired"],
    ["CERT_NOT_YET_VALID", "certificate is not yet valid", "not-yet-valid"],
    ["EPROTO", "error:1000042e:SSL routines:OPENSSL_internal:TLSV1_ALERT_PROTOCOL_VERSION", "version"],
    ["EPROTO", "error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER", "not-tls"],
    ["ECONNRESET", "Client network socket disconnected before secure TLS connection was established", "closed"],
    ["EPROTO", "EPROTO: The TLS handshake failed. Does the server speak TLS on this port?", "other"],
    ["ECONNREFUSED", "connection refused", undefined],
    [undefined, "weird", undefined],
  ];
  for (const [code, message, kind] of table) {
    test(`${code ?? "(no code)"} ${message.slice(0, 40)} -> ${kind ?? "not TLS"}`, () => {
      expect(tlsFailureKind(code, message)).toBe(kind);
    });
  }
});

describe("describeTlsFailure", () => {
  const now = new Date("2026-05-06T07:08:09.000Z");
  test("each kind names its own check and no other", () => {
    const say = (kind: TlsFailureKind) => describeTlsFailure(kind, "gateway gw:443", "CODE", now, "gw.example");
    expect(say("untrusted")).toContain("the pinned cloud CA did not sign");
    expect(say("hostname")).toContain("signed by the cloud CA but not issued for gw.example");
    expect(say("purpose")).toContain("not meant for TLS servers (extended key usage");
    expect(say("expired")).toContain("expired by this host's clock (now 2026-05-06T07:08:09.000Z");
    expect(say("not-yet-valid")).toContain("not valid yet by this host's clock");
    expect(say("version")).toContain("only TLS versions older than 1.2");
    expect(say("not-tls")).toContain("does not speak TLS on this port");
    expect(say("closed")).toContain("closed the connection during the TLS handshake");
    for (const kind of ["hostname", "purpose", "expired", "not-yet-valid", "version", "not-tls", "closed"] as const) {
      expect(say(kind)).not.toContain("did not sign");
    }
  });
});
