/**
 * The control-plane HTTPS client. Trust is bootstrapped once per enrollment (docs/PROTOCOL.md §3.1):
 * `fetchPinnedCa` reads `GET /v1/ca` over a connection it does not verify and keeps the CA only if
 * its key matches the provisioning key's pin (any other answer there is reported as likely TLS
 * inspection, never parsed); every other request goes through `ControlClient`,
 * which trusts that CA and nothing else (not the system store), optionally with a client certificate.
 *
 * Guarantees: every request has a deadline (connect, proxy, TLS, headers and body together), every
 * body read is bounded, redirects are not followed, responses are validated with the schemas of
 * `api.ts`, and every failure is a typed `ControlPlaneError`. The HTTP proxy (settings `proxy`) is
 * used unless the host is on the `NO_PROXY` list; Bun's own environment proxy handling is disabled
 * so that only the connector's settings decide.
 */
import * as v from "valibot";
import {
  API_VERSION_PREFIX,
  ApiErrorSchema,
  EnrollRequestSchema,
  EnrollResponseSchema,
  RenewResponseSchema,
  TokenResponseSchema,
  MAX_UPGRADE_REPORT_MESSAGE,
  UpgradeReportSchema,
  type EnrollRequest,
  type EnrollResponse,
  type RenewRequest,
  type RenewResponse,
  type TokenResponse,
  type UpgradeReport,
} from "./api.ts";
import { MAX_CA_PEM_BYTES, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT_MS } from "./config.ts";
import { apiRejection, BadResponseError, RequestFailedError, TlsInspectionError } from "./errors.ts";
import { classifyFetchError } from "./fetch-errors.ts";
import { proxyFor } from "./no-proxy.ts";
import { pinnedCaCertificate } from "./pin.ts";
import type { Secret } from "../secret.ts";

/** The `fetch` the client uses; Bun's global one in production, a fake in tests. */
export type FetchFn = (url: string, init: BunFetchRequestInit) => Promise<Response>;

export interface ControlPlaneOptions {
  /** Base URL from the provisioning key or identity, `https://host[:port][/path]`. */
  readonly controlUrl: string;
  readonly proxy?: string | undefined;
  readonly noProxy?: readonly string[] | undefined;
  /** Deadline per request; default `REQUEST_TIMEOUT_MS`. */
  readonly timeoutMs?: number | undefined;
  readonly fetch?: FetchFn | undefined;
}

export interface ControlResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

interface Exchange {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly tls: BunFetchRequestInitTLS;
  readonly strict: boolean;
  readonly maxBytes: number;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  readonly reuseConnection: boolean;
}

async function readBounded(response: Response, maxBytes: number, what: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes)
    throw new BadResponseError(what, `body of ${declared} bytes exceeds the ${maxBytes}-byte limit`);
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new BadResponseError(what, `body exceeds the ${maxBytes}-byte limit`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** One HTTP exchange with deadline, proxy choice, bounded body and typed errors. */
async function exchange(options: ControlPlaneOptions, x: Exchange): Promise<ControlResponse> {
  const url = new URL(`${options.controlUrl.replace(/\/$/, "")}${x.path}`);
  const proxy = proxyFor(url, options.proxy, options.noProxy ?? []);
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  const doFetch = options.fetch ?? fetch;
  try {
    const response = await doFetch(url.toString(), {
      method: x.method,
      headers: {
        accept: "application/json",
        ...(x.body === undefined ? {} : { "content-type": "application/json" }),
        ...x.headers,
      },
      ...(x.body === undefined ? {} : { body: x.body }),
      tls: x.tls,
      // `false` keeps Bun from applying HTTPS_PROXY/NO_PROXY from the environment on its own.
      proxy: proxy === undefined ? false : { url: proxy, respectNoProxy: false },
      redirect: "manual",
      keepalive: x.reuseConnection,
      signal,
    });
    const text = await readBounded(response, x.maxBytes, `response to ${x.method} ${x.path}`);
    return { status: response.status, headers: response.headers, text };
  } catch (err) {
    if (err instanceof BadResponseError) throw err;
    throw classifyFetchError(err, { url, proxy, timeoutMs, timedOut: signal.aborted, strict: x.strict });
  }
}

/** `text` as JSON, or a `BadResponseError` naming `what`. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadResponseError(what, "the body is not JSON");
  }
}

/** Validates `value`, reporting where it fails without echoing values (they may be large or odd). */
export function validate<S extends v.GenericSchema>(schema: S, value: unknown, what: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const where = issue?.path?.map((p) => String(p.key)).join(".") || "(root)";
  throw new BadResponseError(what, `field ${where} does not match the protocol (${issue?.expected ?? "invalid"})`);
}

/** Throws the typed rejection for a non-2xx response. */
function rejectionOf(response: ControlResponse): never {
  let body: unknown;
  try {
    body = JSON.parse(response.text);
  } catch {
    body = undefined;
  }
  const parsed = v.safeParse(ApiErrorSchema, body);
  if (parsed.success) throw apiRejection(response.status, parsed.output.error.code, parsed.output.error.message);
  throw apiRejection(response.status, `HTTP_${response.status}`, "");
}

/**
 * A non-200 answer to the CA fetch. Nothing authenticates it (the connection is not verified yet), so
 * neither its status nor its body is believed: a TLS-inspecting proxy answers 403 here, and anyone on
 * the path could claim KEY_REVOKED. The real control plane serves its CA to anyone, so the likely
 * cause is interception; an outage is named as the other possibility.
 */
function unverifiedAnswer(status: number, url: URL): TlsInspectionError {
  return new TlsInspectionError(
    "TLS_INSPECTION",
    url.hostname,
    `GET ${API_VERSION_PREFIX}/ca on ${url.host} was answered with HTTP ${status} over a connection that cannot be verified yet, ` +
      `so the answer is not trusted (if ${url.host} is reachable without inspection, the control plane may be failing: try again later)`,
  );
}

/**
 * Fetches the CA over an unverified connection and returns its PEM only if it matches `caPin`
 * (a mismatch throws `TlsInspectionError`, exit 15). The connection is not reused for anything else.
 */
export async function fetchPinnedCa(options: ControlPlaneOptions & { readonly caPin: string }): Promise<string> {
  const response = await exchange(options, {
    method: "GET",
    path: `${API_VERSION_PREFIX}/ca`,
    // The pin, not the chain, is what authenticates this answer; nothing else is sent on it.
    tls: { rejectUnauthorized: false },
    strict: false,
    maxBytes: MAX_CA_PEM_BYTES,
    headers: { accept: "application/x-pem-file" },
    reuseConnection: false,
  });
  if (response.status !== 200) throw unverifiedAnswer(response.status, new URL(options.controlUrl));
  return pinnedCaCertificate(response.text, options.caPin, new URL(options.controlUrl).hostname);
}

export interface ClientCertificate {
  readonly certificate: string;
  readonly chain: readonly string[];
  readonly privateKeyPem: Secret<string>;
}

/** At most `max` UTF-16 units of `text`, never splitting a character. */
function clip(text: string, max: number): string {
  let out = "";
  for (const ch of text) {
    if (out.length + ch.length > max) break;
    out += ch;
  }
  return out;
}

/** Requests verified against the pinned CA only, optionally authenticated with a client certificate. */
export class ControlClient {
  readonly #options: ControlPlaneOptions;
  readonly #tls: BunFetchRequestInitTLS;

  constructor(
    options: ControlPlaneOptions & { readonly caCertificate: string; readonly clientCertificate?: ClientCertificate },
  ) {
    this.#options = options;
    const client = options.clientCertificate;
    this.#tls = {
      ca: [options.caCertificate],
      rejectUnauthorized: true,
      ...(client ? { cert: [client.certificate, ...client.chain].join("\n"), key: client.privateKeyPem.reveal() } : {}),
    };
  }

  /** Sends one request; non-2xx answers (other than 304) throw their typed rejection. */
  async request(
    method: "GET" | "POST",
    path: string,
    init: { json?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ControlResponse> {
    const response = await exchange(this.#options, {
      method,
      path,
      tls: this.#tls,
      strict: true,
      maxBytes: MAX_RESPONSE_BYTES,
      reuseConnection: true,
      ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
      ...(init.headers ? { headers: init.headers } : {}),
    });
    if ((response.status < 200 || response.status > 299) && response.status !== 304) rejectionOf(response);
    return response;
  }

  /** `POST /v1/enroll`: exchanges the key's secret and a CSR for an identity (docs/PROTOCOL.md §3.2). */
  async enroll(request: EnrollRequest): Promise<EnrollResponse> {
    const checked = v.safeParse(EnrollRequestSchema, request);
    if (!checked.success) {
      // Never echo the request: it carries the key's secret.
      const where = checked.issues[0]?.path?.map((p) => String(p.key)).join(".") ?? "(root)";
      throw new RequestFailedError("BAD_ENROLL_REQUEST", `The enrollment request is invalid (field ${where}).`);
    }
    const response = await this.request("POST", `${API_VERSION_PREFIX}/enroll`, { json: checked.output });
    if (response.status !== 201 && response.status !== 200) {
      throw new BadResponseError("enrollment response", `unexpected HTTP status ${response.status}`);
    }
    return validate(EnrollResponseSchema, parseJson(response.text, "enrollment response"), "enrollment response");
  }

  /** `POST /v1/renew` (mutual TLS): a CSR for a new key pair in, a new certificate out (docs/PROTOCOL.md §3.4). */
  async renew(request: RenewRequest): Promise<RenewResponse> {
    const response = await this.request("POST", `${API_VERSION_PREFIX}/renew`, { json: request });
    if (response.status !== 200)
      throw new BadResponseError("renewal response", `unexpected HTTP status ${response.status}`);
    return validate(RenewResponseSchema, parseJson(response.text, "renewal response"), "renewal response");
  }

  /** `POST /v1/token` (mutual TLS): a short-lived access token bound to our certificate (docs/PROTOCOL.md §3.5). */
  async token(): Promise<TokenResponse> {
    const response = await this.request("POST", `${API_VERSION_PREFIX}/token`);
    if (response.status !== 200)
      throw new BadResponseError("token response", `unexpected HTTP status ${response.status}`);
    return validate(TokenResponseSchema, parseJson(response.text, "token response"), "token response");
  }

  /**
   * `POST /v1/upgrade-report` (mutual TLS): one upgrade outcome (docs/PROTOCOL.md §3.6). The free-text
   * message is made to fit (control characters become spaces, clipped to 512 characters) so a long
   * error never costs the report; anything else invalid throws `BAD_UPGRADE_REPORT` without sending.
   */
  async reportUpgrade(report: UpgradeReport): Promise<void> {
    const message = report.message?.replace(
      /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu,
      " ",
    );
    const fitted = {
      ...report,
      ...(message === undefined ? {} : { message: clip(message, MAX_UPGRADE_REPORT_MESSAGE) }),
    };
    const checked = v.safeParse(UpgradeReportSchema, fitted);
    if (!checked.success) {
      const where = checked.issues[0]?.path?.map((p) => String(p.key)).join(".") ?? "(root)";
      throw new RequestFailedError("BAD_UPGRADE_REPORT", `The upgrade report is invalid (field ${where}).`);
    }
    const response = await this.request("POST", `${API_VERSION_PREFIX}/upgrade-report`, { json: checked.output });
    if (response.status !== 204 && response.status !== 200) {
      throw new BadResponseError("upgrade-report response", `unexpected HTTP status ${response.status}`);
    }
  }
}
