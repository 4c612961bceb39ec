/**
 * Certificate renewal (§3: new key pair and CSR at two thirds of the certificate's life) is not in this
 * release. Until it is, the daemon says so loudly and early — at start and every few hours once two
 * thirds have passed — instead of letting tunnels fail with TLS errors on the day it expires.
 */
import { X509Certificate } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { Identity } from "../identity/identity.ts";
import type { Logger } from "../log.ts";

/** How often the warning is repeated: a few times a day is visible without flooding journald. */
export const CERTIFICATE_CHECK_MS = 6 * 60 * 60_000;

/** Checks once now; returns the check for the daemon to repeat. */
export function certificateWatch(identity: Identity, clock: Clock, log: Logger): () => void {
  const cert = new X509Certificate(identity.certificate);
  const from = cert.validFromDate.getTime();
  const to = cert.validToDate.getTime();
  const check = () => {
    const now = clock.wallNow().getTime();
    if (now < from + ((to - from) * 2) / 3) return;
    const expired = now >= to;
    log.warn(
      expired
        ? "the client certificate has expired: tunnels will fail; re-enroll this connector (connector enroll --force)"
        : "the client certificate is past two thirds of its life and this version does not renew it: re-enroll (connector enroll --force) before it expires",
      { notAfter: cert.validToDate.toISOString() },
    );
  };
  check();
  return check;
}
