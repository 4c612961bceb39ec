/**
 * Which TLS check failed, from what Bun reports (an OpenSSL/BoringSSL verify code, or an SSL reason in
 * the message), so that the control-plane client and the gateway dial name the same check the same
 * way. Verified in Bun 1.4.5 with real sockets (test/control/bun-fetch-facts.test.ts, the dial tests):
 *   - a server certificate from another CA: `UNABLE_TO_VERIFY_LEAF_SIGNATURE` (also when its name,
 *     purpose or dates are wrong too: the chain is checked first), so `untrusted` is what TLS
 *     inspection looks like;
 *   - `ERR_TLS_CERT_ALTNAME_INVALID` and `INVALID_PURPOSE` only once the chain verified: the pinned
 *     cloud CA signed the certificate, but for another name / not for TLS servers;
 *   - `CERT_HAS_EXPIRED` / `CERT_NOT_YET_VALID` come before the issuer check (also for a foreign
 *     CA), so they say "this host's clock, or the server's certificate", not who signed it;
 *   - a TLS 1.1-only server: `EPROTO` with `TLSV1_ALERT_PROTOCOL_VERSION` (Bun.connect; fetch says
 *     only EPROTO); a server that is not TLS: `EPROTO` with `WRONG_VERSION_NUMBER`;
 *   - the peer (or a proxy in between) closing during the handshake: `ECONNRESET`, "Client network
 *     socket disconnected before secure TLS connection was established".
 */

export type TlsFailureKind =
  | "untrusted"
  | "hostname"
  | "purpose"
  | "expired"
  | "not-yet-valid"
  | "version"
  | "not-tls"
  | "closed"
  | "other";

const UNTRUSTED = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

/** The kind of TLS failure a Bun error `code` (and message) reports; undefined when it is not a TLS failure. */
export function tlsFailureKind(code: string | undefined, message = ""): TlsFailureKind | undefined {
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH") return "hostname";
  if (code === "INVALID_PURPOSE") return "purpose";
  if (code === "CERT_HAS_EXPIRED") return "expired";
  if (code === "CERT_NOT_YET_VALID") return "not-yet-valid";
  if (code !== undefined && UNTRUSTED.has(code)) return "untrusted";
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE/.test(message)) return "version";
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|PACKET_LENGTH_TOO_LONG/.test(message)) return "not-tls";
  if (code === "ECONNRESET" || code === "EPIPE" || /disconnected before secure TLS/i.test(message)) return "closed";
  if (code === "EPROTO" || /SSL routines|TLS|certificate/i.test(message)) return "other";
  return undefined;
}

/**
 * One sentence naming the check that failed, for `who` ("the control plane cloud.example:443",
 * "gateway gw:443"), with what to do. `now` is this host's time (shown for clock failures).
 */
export function describeTlsFailure(
  kind: TlsFailureKind,
  who: string,
  reason: string,
  now: Date,
  name?: string,
): string {
  switch (kind) {
    case "untrusted":
      return `${who} presented a certificate that the pinned cloud CA did not sign (${reason})`;
    case "hostname":
      return (
        `${who} presented a certificate signed by the cloud CA but not issued for ${name ?? "this name"} (${reason}): ` +
        "the URL does not match the server's certificate, or DNS sends the name to another server"
      );
    case "purpose":
      return (
        `${who} presented a certificate signed by the cloud CA that is not meant for TLS servers ` +
        `(extended key usage, ${reason}): the cloud side is misconfigured`
      );
    case "expired":
    case "not-yet-valid":
      return (
        `${who} presented a certificate that is ${kind === "expired" ? "expired" : "not valid yet"} by this host's clock ` +
        `(now ${now.toISOString()}, ${reason}): check this host's clock (NTP); if it is right, the server's certificate is wrong`
      );
    case "version":
      return `${who} offers only TLS versions older than 1.2 (${reason}); TLS 1.2 or newer is required`;
    case "not-tls":
      return `${who} does not speak TLS on this port, or something in between answered instead (${reason})`;
    case "closed":
      return `${who} closed the connection during the TLS handshake (${reason})`;
    case "other":
      return `the TLS handshake with ${who} failed (${reason})`;
  }
}
