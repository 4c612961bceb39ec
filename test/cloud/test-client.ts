/**
 * HTTP clients the reference-cloud tests use: the control plane over real HTTPS (trusting only the
 * cloud CA, optionally with a client certificate) and the admin API over loopback HTTP.
 */
import { decodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { createLogger } from "../../src/log.ts";
import type { CloudHandle } from "./cloud.ts";

/**
 * Every request in the tests gives up after 30 s rather than hanging the suite: a safety deadline, since
 * on a loaded machine the in-process cloud answers late, not wrong.
 */
const REQUEST_DEADLINE_MS = 30_000;

export const silentLog = createLogger({ level: "silent", format: "json" });

export interface ClientCert {
  readonly cert: string;
  readonly key: string;
}

export function controlFetch(
  cloud: Pick<CloudHandle, "controlUrl" | "caCertPem">,
  path: string,
  init: { method?: string; body?: string; headers?: Record<string, string>; clientCert?: ClientCert } = {},
): Promise<Response> {
  const { clientCert, ...rest } = init;
  return fetch(`${cloud.controlUrl}${path}`, {
    ...rest,
    tls: { ca: cloud.caCertPem, ...(clientCert ?? {}) },
    signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
  });
}

export function adminFetch(
  cloud: Pick<CloudHandle, "adminUrl">,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${cloud.adminUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
  });
}

export function enrollBody(key: string, csr: string, name = "test-connector") {
  return { secret: decodeProvisioningKey(key).secret.reveal(), csr, name, version: "0.0.0-test" };
}

export function postEnroll(cloud: Pick<CloudHandle, "controlUrl" | "caCertPem">, body: unknown): Promise<Response> {
  return controlFetch(cloud, "/v1/enroll", {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
}

/** Creates a provisioning key through the admin API. */
export async function adminKey(
  cloud: Pick<CloudHandle, "adminUrl">,
  options: { maxUses?: number; expiresAt?: string; group?: string } = {},
) {
  const response = await adminFetch(cloud, "POST", "/admin/keys", options);
  if (response.status !== 201)
    throw new Error(`admin key creation answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { id: string; key: string };
}

/** The status and PROTOCOL §3 error code of a refusal. */
export async function refusal(response: Response): Promise<string> {
  const body = (await response.json()) as { error?: { code?: string } };
  return `${response.status} ${body.error?.code}`;
}
