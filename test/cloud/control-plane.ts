/**
 * The control-plane HTTPS API (docs/PROTOCOL.md §3) on 127.0.0.1, with a server certificate from the
 * cloud CA:
 *   GET  /v1/ca       the CA certificate (PEM), unauthenticated
 *   POST /v1/enroll   provisioning key + CSR -> identity, unauthenticated (the key is the credential)
 *   GET  /v1/catalog  the app catalog of the caller's group, mutual TLS, ETag / If-None-Match
 *   POST /v1/renew    a new certificate for the caller (CSR in), mutual TLS
 *   POST /v1/token    a short-lived access token bound to the caller's certificate, mutual TLS
 *   POST /v1/upgrade-report  one upgrade outcome of the caller, mutual TLS, stored for the admin API
 * Every request is bounded in size (MAX_BODY_BYTES) and time (REQUEST_TIMEOUT_MS).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import * as v from "valibot";
import { UpgradeReportSchema, type TokenResponse } from "../../src/control/api.ts";
import type { Logger } from "../../src/log.ts";
import type { TokenIssuer } from "./access-token.ts";
import type { CatalogView, ConnectorRecord } from "./gateway-api.ts";
import { MAX_UPGRADE_REPORT_BYTES, REQUEST_TIMEOUT_MS } from "./config.ts";
import { enroll, type EnrollDeps, renew } from "./enroll.ts";
import { badRequest, CloudApiError, notFound } from "./errors.ts";
import { readJson, sendError, sendJson } from "./http-io.ts";
import { listenMtls, tlsSocketOf } from "./mtls-server.ts";
import type { UpgradeReports } from "./upgrade-reports.ts";

export interface ControlPlaneDeps extends EnrollDeps {
  readonly catalog: CatalogView;
  readonly log: Logger;
  /** Signs access tokens (POST /v1/token). */
  readonly tokens: TokenIssuer;
  /** Where POST /v1/upgrade-report puts what connectors report. */
  readonly upgradeReports: UpgradeReports;
  /** Default REQUEST_TIMEOUT_MS; tests shorten it. */
  readonly requestTimeoutMs?: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT (no trailing slash): the URL inside provisioning keys. */
  readonly url: string;
  stop(): Promise<void>;
}

const ROUTES: Record<string, string[]> = {
  "/v1/ca": ["GET"],
  "/v1/enroll": ["POST"],
  "/v1/catalog": ["GET"],
  "/v1/renew": ["POST"],
  "/v1/token": ["POST"],
  "/v1/upgrade-report": ["POST"],
};

export async function startControlPlane(deps: ControlPlaneDeps): Promise<ControlPlane> {
  const serverCert = deps.ca.issueServerCert();
  const server = await listenMtls(
    { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPem: deps.ca.certPem },
    (req, res) => void handle(deps, req, res),
  );
  return { url: `https://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

async function handle(deps: ControlPlaneDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const timeoutMs = deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const timer = setTimeout(
    () => sendError(res, new CloudApiError(408, "BAD_REQUEST", `no complete request within ${timeoutMs} ms`)),
    timeoutMs,
  );
  res.on("close", () => clearTimeout(timer));
  try {
    await route(deps, req, res);
  } catch (err) {
    if (err instanceof CloudApiError) deps.log.warn(`${req.method} ${req.url} refused: ${err.code} ${err.message}`);
    else deps.log.error(`${req.method} ${req.url} failed`, err);
    sendError(res, err);
  } finally {
    clearTimeout(timer);
  }
}

async function route(deps: ControlPlaneDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "https://control-plane").pathname;
  const key = `${req.method} ${path}`;
  if (key === "GET /v1/ca") {
    res.writeHead(200, {
      "content-type": "application/x-pem-file",
      "content-length": Buffer.byteLength(deps.ca.certPem),
    });
    res.end(deps.ca.certPem);
  } else if (key === "POST /v1/enroll") {
    const { response, connector } = enroll(deps, await readJson(req));
    deps.log.info(`enrolled connector ${connector.id} "${connector.name}" in group ${connector.group}`);
    sendJson(res, 201, response);
  } else if (key === "GET /v1/catalog") {
    serveCatalog(deps, authenticate(deps, req), req, res);
  } else if (key === "POST /v1/renew") {
    const connector = authenticate(deps, req);
    const response = renew(deps, connector, await readJson(req));
    deps.log.info(`renewed the certificate of connector ${connector.id} "${connector.name}"`);
    sendJson(res, 200, response);
  } else if (key === "POST /v1/token") {
    sendJson(res, 200, issueToken(deps, authenticate(deps, req), req), { "cache-control": "no-store" });
  } else if (key === "POST /v1/upgrade-report") {
    const connector = authenticate(deps, req);
    const checked = v.safeParse(UpgradeReportSchema, await readJson(req, MAX_UPGRADE_REPORT_BYTES));
    if (!checked.success) {
      // Name the fields, never echo the values.
      const fields = [...new Set(checked.issues.map((i) => i.path?.map((p) => String(p.key)).join(".") || "(root)"))];
      throw badRequest(`the upgrade report does not match the protocol (fields: ${fields.join(", ")})`);
    }
    const report = checked.output;
    deps.upgradeReports.add(connector.id, report);
    deps.log.info(
      `upgrade report from ${connector.id}: ${report.result} ${report.from} -> ${report.to ?? "-"}${report.code ? ` ${report.code}` : ""}`,
    );
    res.writeHead(204);
    res.end();
  } else if (ROUTES[path]) {
    throw new CloudApiError(
      405,
      "BAD_REQUEST",
      `${req.method} is not allowed on ${path}; use ${ROUTES[path].join(", ")}`,
    );
  } else {
    throw notFound(`no such endpoint: ${path}`);
  }
}

/** The connector behind a mutual-TLS request: a certificate from our CA naming an enrolled, unrevoked connector. */
function authenticate(deps: ControlPlaneDeps, req: IncomingMessage): ConnectorRecord {
  const socket = tlsSocketOf(req);
  if (!socket.authorized) {
    throw new CloudApiError(401, "UNAUTHENTICATED", "a valid client certificate issued by the cloud CA is required");
  }
  // The CA writes the CN itself (never from the CSR), so a verified CN is the connector's identity.
  const commonName = socket.getPeerCertificate().subject?.CN;
  const connector = typeof commonName === "string" ? deps.registry.get(commonName) : undefined;
  if (!connector)
    throw new CloudApiError(401, "UNAUTHENTICATED", "the client certificate does not name an enrolled connector");
  if (connector.revoked) throw new CloudApiError(403, "CONNECTOR_REVOKED", "this connector has been revoked");
  return connector;
}

/**
 * A token bound to the certificate this very request was made with, and only if that is the connector's
 * newest one (what enrollment or the last renewal recorded): a certificate superseded by a renewal still
 * reads the catalog and may renew (the answer to the last renewal may have been lost) until it expires,
 * but buys no more tunnel time, so an old key left behind somewhere cannot keep tunnels up.
 */
function issueToken(deps: ControlPlaneDeps, connector: ConnectorRecord, req: IncomingMessage): TokenResponse {
  const peer = tlsSocketOf(req).getPeerCertificate();
  if (peer.fingerprint256 !== connector.certFingerprint256) {
    throw new CloudApiError(
      401,
      "UNAUTHENTICATED",
      "this client certificate has been superseded by a renewal: use the newest one",
    );
  }
  const der = peer.raw;
  const { token, expiresAt, expiresIn } = deps.tokens.issue({
    connectorId: connector.id,
    group: connector.group,
    certificateDer: der,
  });
  deps.log.debug(`access token for connector ${connector.id}, expires ${expiresAt.toISOString()}`);
  return { token, expiresAt: expiresAt.toISOString(), expiresIn };
}

function serveCatalog(
  deps: ControlPlaneDeps,
  connector: ConnectorRecord,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const catalog = deps.catalog.forGroup(connector.group);
  const etag = `"${catalog.version}"`;
  if (etagMatches(req.headers["if-none-match"], catalog.version)) {
    res.writeHead(304, { etag });
    res.end();
    return;
  }
  sendJson(res, 200, catalog, { etag, "cache-control": "no-cache" });
}

/** If-None-Match holds a list of (possibly weak) entity tags; the spec also allows the bare version. */
function etagMatches(header: string | undefined, version: string): boolean {
  if (!header) return false;
  return header.split(",").some((tag) => {
    const t = tag.trim().replace(/^W\//, "");
    return t === "*" || t === `"${version}"` || t === version;
  });
}
