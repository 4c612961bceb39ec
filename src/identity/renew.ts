/**
 * Certificate renewal (docs/PROTOCOL.md §3.4): a key pair generated here, its CSR sent with the
 * current certificate (mutual TLS, pinned CA), the answer checked like enrollment's (our key, the
 * pinned CA) and for the same connector id, then the identity replaced atomically. Until the new
 * identity is durable the old one stays on disk and in use, so a failed renewal changes nothing.
 */
import type { X509Certificate } from "node:crypto";
import { ControlClient } from "../control/client.ts";
import { BadResponseError } from "../control/errors.ts";
import { buildInfo } from "../version.ts";
import { type EnrollDeps, type EnrollOptions, stateDirOp } from "./enroll.ts";
import { certificateNotAfter, type Identity } from "./identity.ts";
import { answeredCaCertificate, checkIssued } from "./issued.ts";
import { IdentityStore } from "./store.ts";

export type RenewOptions = Pick<EnrollOptions, "stateDir" | "proxy" | "noProxy" | "log">;

/** Seams for tests, as for enrollment; production defaults otherwise. */
export type RenewDeps = Pick<EnrollDeps, "fetch" | "generateKeyPair" | "now" | "timeoutMs">;

function commonName(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
}

/** Renews `current`'s certificate and stores the result; returns the new identity. */
export async function renewIdentity(current: Identity, options: RenewOptions, deps: RenewDeps = {}): Promise<Identity> {
  const what = "renewal response";
  // node-forge (the CSR) is loaded only when needed, as for enrollment.
  const { buildCsr, generateKeyPair } = await import("./keypair.ts");
  const keys = await (deps.generateKeyPair ?? generateKeyPair)();
  const client = new ControlClient({
    controlUrl: current.controlUrl,
    proxy: options.proxy,
    noProxy: options.noProxy,
    timeoutMs: deps.timeoutMs,
    fetch: deps.fetch,
    caCertificate: current.caCertificate,
    clientCertificate: { certificate: current.certificate, chain: current.chain, privateKeyPem: current.privateKeyPem },
  });
  const response = await client.renew({ csr: buildCsr(keys, current.name), version: buildInfo.version });
  const caCertificate = answeredCaCertificate(what, response.caCertificate, current.caPin);
  const leaf = checkIssued(what, response.certificate, response.chain, caCertificate, keys.publicKeyPem);
  if (commonName(leaf) !== current.connectorId)
    throw new BadResponseError(what, "the new certificate names another connector");
  const renewed: Identity = {
    ...current,
    caCertificate,
    certificate: response.certificate,
    chain: response.chain,
    gateways: response.gateways,
    renewedAt: (deps.now ?? (() => new Date()))().toISOString(),
    privateKeyPem: keys.privateKeyPem,
  };
  const store = new IdentityStore(options.stateDir);
  stateDirOp(options.stateDir, () => store.save(renewed, { replace: true }));
  options.log.info("certificate renewed", {
    connectorId: renewed.connectorId,
    notAfter: certificateNotAfter(renewed).toISOString(),
    gateways: renewed.gateways.length,
  });
  return renewed;
}
