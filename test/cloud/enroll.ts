/**
 * Enrollment (docs/PROTOCOL.md §3.2): a provisioning key's secret and a CSR in, an identity out; and
 * renewal (PROTOCOL §3.4): an enrolled connector's CSR in, a new certificate out.
 *
 * Order of checks: the body's shape, then the key (so an anonymous caller gets no CSR parsing out of
 * the cloud), then the CSR while the certificate is issued. The key's use is counted only after the
 * certificate exists, and all of it runs synchronously, so two concurrent enrollments cannot both
 * take a key's last use.
 */
import * as v from "valibot";
import {
  EnrollRequestSchema,
  EnrollResponseSchema,
  RenewRequestSchema,
  RenewResponseSchema,
  type EnrollResponse,
  type Gateway,
  type RenewResponse,
} from "../../src/control/api.ts";
import type { CertificateAuthority } from "./ca.ts";
import { badRequest } from "./errors.ts";
import type { KeyStore } from "./keys.ts";
import type { ConnectorRecord } from "./gateway-api.ts";
import type { ConnectorRegistry } from "./registry.ts";

export interface EnrollDeps {
  readonly ca: CertificateAuthority;
  readonly keys: KeyStore;
  readonly registry: ConnectorRegistry;
  /** The gateways a new connector is told about. */
  readonly gateways: () => readonly Gateway[];
  /** Lifetime of issued client certificates. */
  readonly certTtlSeconds: number;
}

/** Enrolls a connector; throws CloudApiError with the PROTOCOL §3.2 status and code on refusal. */
export function enroll(deps: EnrollDeps, body: unknown): { response: EnrollResponse; connector: ConnectorRecord } {
  const parsed = v.safeParse(EnrollRequestSchema, body);
  if (!parsed.success) {
    // Name the fields only: valibot's messages quote the received values, and one of them is the secret.
    const fields = [...new Set(parsed.issues.map((issue) => v.getDotPath(issue) ?? "(body)"))];
    throw badRequest(`invalid enrollment request: check ${fields.join(", ")}`);
  }
  const request = parsed.output;
  const key = deps.keys.authorize(request.secret);
  const connectorId = deps.registry.newId();
  const cert = deps.ca.issueClientCert({
    csrPem: request.csr,
    connectorId,
    group: key.group,
    ttlSeconds: deps.certTtlSeconds,
  });
  deps.keys.recordUse(key.id);
  const connector = deps.registry.add(connectorId, {
    name: request.name,
    group: key.group,
    ...(request.machineId === undefined ? {} : { machineId: request.machineId }),
    version: request.version,
    certSerial: cert.serialNumber,
    certFingerprint256: cert.fingerprint256,
    certNotAfter: cert.notAfter.toISOString(),
  });
  const response: EnrollResponse = {
    connectorId,
    name: request.name,
    group: key.group,
    certificate: cert.certPem,
    chain: [],
    caCertificate: deps.ca.certPem,
    gateways: [...deps.gateways()],
  };
  // The response is checked against the same schema the connector applies, so the cloud cannot drift from it.
  return { response: v.parse(EnrollResponseSchema, response), connector };
}

/**
 * Renewal (docs/PROTOCOL.md §3.4) for a connector already authenticated by its current certificate: a
 * new certificate for the same id and group. Throws CloudApiError (400) for a bad body or CSR.
 */
export function renew(deps: EnrollDeps, connector: ConnectorRecord, body: unknown): RenewResponse {
  const parsed = v.safeParse(RenewRequestSchema, body);
  if (!parsed.success) {
    const fields = [...new Set(parsed.issues.map((issue) => v.getDotPath(issue) ?? "(body)"))];
    throw badRequest(`invalid renewal request: check ${fields.join(", ")}`);
  }
  const cert = deps.ca.issueClientCert({
    csrPem: parsed.output.csr,
    connectorId: connector.id,
    group: connector.group,
    ttlSeconds: deps.certTtlSeconds,
  });
  deps.registry.renewed(connector.id, {
    certSerial: cert.serialNumber,
    certFingerprint256: cert.fingerprint256,
    certNotAfter: cert.notAfter.toISOString(),
    version: parsed.output.version,
  });
  const response: RenewResponse = {
    certificate: cert.certPem,
    chain: [],
    caCertificate: deps.ca.certPem,
    gateways: [...deps.gateways()],
  };
  return v.parse(RenewResponseSchema, response);
}
