/**
 * Control-plane HTTP API bodies (docs/PROTOCOL.md "Control-plane API"). These schemas are the
 * contract: the connector validates every response with them, and the reference cloud (test/cloud)
 * builds its responses from the same types.
 */
import * as v from "valibot";

export const API_VERSION_PREFIX = "/v1";

const Pem = v.pipe(v.string(), v.includes("-----BEGIN ", "expected a PEM block"), v.maxLength(64 * 1024));
/** Identifiers the connector prints (logs, status, errors) carry no control characters (src/peer-text.ts). */
const NO_CONTROLS = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/u;
const printable = (max: number) =>
  v.pipe(v.string(), v.minLength(1), v.maxLength(max), v.regex(NO_CONTROLS, "expected no control characters"));
const ConnectorName = printable(63);

export const GatewaySchema = v.object({
  /** Stable gateway identifier, used to spread tunnels over distinct gateways. */
  id: printable(128),
  /** wss:// URL of the tunnel endpoint. */
  url: v.pipe(v.string(), v.url(), v.startsWith("wss://")),
});
export type Gateway = v.InferOutput<typeof GatewaySchema>;

/** POST /v1/enroll request. */
export const EnrollRequestSchema = v.object({
  /** The provisioning key's secret (base64url); the control plane keeps only its hash. */
  secret: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{43}$/)),
  /** PKCS#10 CSR in PEM; the control plane checks its signature and key strength and ignores its subject. */
  csr: Pem,
  name: ConnectorName,
  /** /etc/machine-id or equivalent, so the cloud can tell a moved state dir from a clone. */
  machineId: v.optional(v.pipe(v.string(), v.maxLength(128))),
  version: v.pipe(v.string(), v.maxLength(64)),
});
export type EnrollRequest = v.InferOutput<typeof EnrollRequestSchema>;

/** POST /v1/enroll 201 response. */
export const EnrollResponseSchema = v.object({
  connectorId: printable(128),
  name: ConnectorName,
  group: printable(128),
  /** The connector's client certificate (PEM). */
  certificate: Pem,
  /** Intermediates between the certificate and the CA, nearest first (may be empty). */
  chain: v.array(Pem),
  /** The cloud CA certificate; its public key matches the provisioning key's pin. */
  caCertificate: Pem,
  gateways: v.pipe(v.array(GatewaySchema), v.minLength(1)),
});
export type EnrollResponse = v.InferOutput<typeof EnrollResponseSchema>;

/** POST /v1/renew request (mutual TLS with the current certificate). */
export const RenewRequestSchema = v.object({
  /** PKCS#10 CSR in PEM for a key pair generated for this renewal; checked like enrollment's. */
  csr: Pem,
  version: v.pipe(v.string(), v.maxLength(64)),
});
export type RenewRequest = v.InferOutput<typeof RenewRequestSchema>;

/** POST /v1/renew 200 response: the new certificate for the same connector, and the current gateways. */
export const RenewResponseSchema = v.object({
  certificate: Pem,
  chain: v.array(Pem),
  caCertificate: Pem,
  gateways: v.pipe(v.array(GatewaySchema), v.minLength(1)),
});
export type RenewResponse = v.InferOutput<typeof RenewResponseSchema>;

/**
 * POST /v1/token 200 response (mutual TLS): a short-lived access token bound to the client certificate
 * of the request (docs/PROTOCOL.md §3.5). The token is opaque to the connector. `expiresIn` (seconds
 * from the answer) drives the refresh schedule, so a host clock that is off does not shift it;
 * `expiresAt` (ISO 8601, the cloud's clock) is what status shows.
 */
/** An access token as the cloud sends it and the connector keeps it: 1..8 KiB of printable ASCII, so it
 * goes into a header or a frame as it is. Shared by the API and the token store (src/daemon/token-store.ts). */
export const AccessTokenValueSchema = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(8 * 1024),
  v.regex(/^[\x21-\x7e]+$/, "expected printable ASCII"),
);

export const TokenResponseSchema = v.object({
  token: AccessTokenValueSchema,
  expiresAt: v.pipe(
    v.string(),
    v.maxLength(64),
    v.check((s) => !Number.isNaN(Date.parse(s)), "expected a date"),
  ),
  expiresIn: v.pipe(v.number(), v.minValue(0), v.maxValue(366 * 86_400)),
});
export type TokenResponse = v.InferOutput<typeof TokenResponseSchema>;

/** Error codes of the control plane; each maps to a distinct connector error and exit code. */
export const ApiErrorCode = v.picklist([
  "KEY_UNKNOWN",
  "KEY_EXPIRED",
  "KEY_REVOKED",
  "KEY_EXHAUSTED",
  "CSR_INVALID",
  "CSR_WEAK_KEY",
  "BAD_REQUEST",
  "UNAUTHENTICATED",
  "CONNECTOR_REVOKED",
  "NOT_FOUND",
  "INTERNAL",
]);
export type ApiErrorCode = v.InferOutput<typeof ApiErrorCode>;

/** Every non-2xx response body. */
export const ApiErrorSchema = v.object({
  error: v.object({ code: v.string(), message: v.pipe(v.string(), v.maxLength(1024)) }),
});
export type ApiError = v.InferOutput<typeof ApiErrorSchema>;

/**
 * One allowed destination of an app: `host` is an exact name (`wiki.corp.example`), a wildcard
 * (`*.corp.example`: any name below it, not the name itself), an IP address, or a CIDR
 * (`10.0.0.0/8`, `2001:db8::/32`); `ports` is one port (`443`) or an inclusive range (`8000-8100`).
 */
export const DestinationSchema = v.object({
  host: v.pipe(v.string(), v.minLength(1), v.maxLength(253)),
  ports: v.pipe(v.string(), v.regex(/^\d{1,5}(-\d{1,5})?$/, "expected PORT or FROM-TO")),
});
export type Destination = v.InferOutput<typeof DestinationSchema>;

export const AppSchema = v.object({
  name: printable(128),
  /** What streams for this app may reach. */
  destinations: v.pipe(v.array(DestinationSchema), v.maxLength(1024)),
  /** Concrete host:port servers to health-check (names are resolved, each address checked). */
  servers: v.pipe(v.array(v.pipe(v.string(), v.maxLength(300))), v.maxLength(1024)),
});
export type App = v.InferOutput<typeof AppSchema>;

/** GET /v1/catalog (mutual TLS) 200 response; the ETag header equals `version`. */
export const CatalogSchema = v.object({
  version: printable(128),
  apps: v.pipe(v.array(AppSchema), v.maxLength(10_000)),
});
export type Catalog = v.InferOutput<typeof CatalogSchema>;

/** What became of an upgrade attempt, as the connector reports it (docs/PROTOCOL.md §3.6). */
export const UPGRADE_RESULTS = ["installed", "rolled-back", "refused", "failed"] as const;
export type UpgradeResult = (typeof UPGRADE_RESULTS)[number];
/** Longest `message` of a report; the client clips longer text rather than lose the report. */
export const MAX_UPGRADE_REPORT_MESSAGE = 512;
const ReportVersion = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(64),
  v.regex(/^[0-9A-Za-z.+-]+$/, "expected a version"),
);

/**
 * POST /v1/upgrade-report request (mutual TLS), answered 204: one outcome of an upgrade attempt of the
 * calling connector. `from` is the version that ran when it started, `to` the version it tried (absent
 * when there was none, e.g. no release source), `code` the stable refusal code (src/upgrade/errors.ts),
 * `at` when it happened (ISO 8601, the connector's clock).
 */
export const UpgradeReportSchema = v.object({
  from: ReportVersion,
  to: v.optional(ReportVersion),
  result: v.picklist(UPGRADE_RESULTS),
  code: v.optional(v.pipe(v.string(), v.regex(/^[A-Z][A-Z0-9_]{0,63}$/, "expected an upper-case code"))),
  message: v.optional(
    v.pipe(v.string(), v.maxLength(MAX_UPGRADE_REPORT_MESSAGE), v.regex(NO_CONTROLS, "expected no control characters")),
  ),
  at: v.pipe(v.string(), v.maxLength(64), v.isoTimestamp("expected an ISO 8601 timestamp")),
});
export type UpgradeReport = v.InferOutput<typeof UpgradeReportSchema>;
