// @ts-check
/**
 * The interop gateway's endpoint, from docs/PROTOCOL.md §1 (trust), §3.1 (the CA and its pin) and §4
 * (the upgrade): mutual TLS against the cloud CA (Node's `tls` checks the chain), the connector id and
 * group from the certificate, the connector's standing from the cloud's admin API, the access token
 * against the certificate, the subprotocol, then the `ws` package's RFC 6455 upgrade.
 *
 * It listens before it has a certificate (`listenGateway`) because the cloud must be told its URL
 * (`--extra-gateway`) before it can issue one; `configure` installs the certificate. A test scripts
 * how the next dials of a connector are answered with `answerNext` (401, 426, a broken 101, garbage…).
 */
import { createHash, X509Certificate } from "node:crypto";
import { createServer, get } from "node:https";
import { WebSocketServer } from "ws";
import { MAX_MESSAGE_BYTES } from "./codec.mjs";
import { answerBadly, PATH, PROTOCOL, requestFindings } from "./handshake.mjs";
import { httpJson } from "./http-json.mjs";
import { tokenProblem } from "./token.mjs";
import { Tunnel } from "./tunnel.mjs";
import { Changes, ENROLL_DEADLINE_MS, until } from "./wait.mjs";

export { PATH, PROTOCOL };

/**
 * @typedef {{ seq: number, at: number, connectorId: string, group: string, name: string | undefined,
 *   method: string, url: string, httpVersion: string, headers: Record<string, string | string[] | undefined>,
 *   rawHeaderNames: string[], authorized: boolean, peer: { certDer: Buffer, connectorId: string, group: string },
 *   token: string | undefined, findings: string[], answer: string, tunnel?: Tunnel }} Dial
 * @typedef {import("./handshake.mjs").Answer} Answer
 */

/** §3.1: fetches the CA without trusting the connection, believes it only if its SPKI matches the pin. */
export async function fetchCa(/** @type {string} */ controlUrl, /** @type {string} */ caPin) {
  const pem = await new Promise((resolve, reject) => {
    const req = get(`${controlUrl}/v1/ca`, { rejectUnauthorized: false, timeout: 30_000, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /v1/ca: ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("GET /v1/ca timed out")));
  });
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  if (createHash("sha256").update(spki).digest("base64url") !== caPin) throw new Error("the CA does not match the pin");
  return /** @type {string} */ (pem);
}

/** Starts listening on 127.0.0.1 (port from the OS) without a certificate yet. */
export async function listenGateway() {
  const gateway = new Gateway();
  await new Promise((resolve) => gateway.server.listen(0, "127.0.0.1", () => resolve(undefined)));
  return gateway;
}

export class Gateway {
  constructor() {
    this.server = createServer({ requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.2" });
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false, // §4: no extension is negotiated
      maxPayload: MAX_MESSAGE_BYTES, // §4: a larger message closes the tunnel with 1009
      handleProtocols: (offered) => (offered.has(PROTOCOL) ? PROTOCOL : false),
    });
    this.changes = new Changes();
    /** @type {Dial[]} */
    this.dials = [];
    /** @type {Tunnel[]} */
    this.tunnels = [];
    /** @type {Map<string, Answer[]>} scripted answers per connector name */
    this.scripted = new Map();
    /** @type {Map<string, (dial: Dial) => Answer | undefined>} answers decided per dial, after the scripted ones */
    this.policies = new Map();
    /** @type {Map<string, (tunnel: Tunnel) => void>} run as soon as a tunnel of that connector is up */
    this.onAccept = new Map();
    /** @type {string[]} TLS handshakes that failed (a client without a valid certificate) */
    this.tlsErrors = [];
    /** @type {{ adminUrl: string, tokenKeys: { publicKeyPem: string, ttlSeconds: number } } | undefined} */
    this.config = undefined;
    /** @type {import("node:tls").SecureContextOptions | undefined} */
    this.secureContext = undefined;
    this.server.on("upgrade", (req, socket, head) => void this.#onUpgrade(req, socket, head));
    this.server.on("request", (_req, res) => res.writeHead(426, { "sec-websocket-protocol": PROTOCOL }).end());
    this.server.on("tlsClientError", (err) => (this.tlsErrors.push(err.message), this.changes.changed()));
  }

  get url() {
    const address = /** @type {import("node:net").AddressInfo} */ (this.server.address());
    return `wss://127.0.0.1:${address.port}${PATH}`;
  }

  /**
   * @param {{ certPem: string, keyPem: string, caPem: string, adminUrl: string,
   *   tokenPublicKeyPem: string, tokenTtlSeconds: number }} c
   */
  configure(c) {
    /** What `setSecureContext` got: a test may swap the certificate and put this back. */
    this.secureContext = { cert: c.certPem, key: c.keyPem, ca: c.caPem, minVersion: /** @type {const} */ ("TLSv1.2") };
    this.server.setSecureContext(this.secureContext);
    this.config = {
      adminUrl: c.adminUrl,
      tokenKeys: { publicKeyPem: c.tokenPublicKeyPem, ttlSeconds: c.tokenTtlSeconds },
    };
  }

  /** The next dials of connector `name` get these answers, in order; then dials are accepted again. */
  answerNext(/** @type {string} */ name, /** @type {Answer[]} */ answers) {
    this.scripted.set(name, [...(this.scripted.get(name) ?? []), ...answers]);
  }

  /** Resolves with the `n`-th tunnel (1-based) of connector `name`. */
  tunnel(/** @type {string} */ name, n = 1, timeoutMs = ENROLL_DEADLINE_MS) {
    return until(
      this.changes,
      `tunnel #${n} of ${name}`,
      () => this.tunnels.filter((t) => t.name === name)[n - 1],
      timeoutMs,
    );
  }

  /** Resolves with the `n`-th dial (1-based, any answer) of connector `name`. */
  dial(/** @type {string} */ name, n = 1, timeoutMs = ENROLL_DEADLINE_MS) {
    return until(
      this.changes,
      `dial #${n} of ${name}`,
      () => this.dials.filter((d) => d.name === name)[n - 1],
      timeoutMs,
    );
  }

  /** Tunnels and dials of `name`, for a failure report. */
  report(/** @type {string} */ name) {
    const lines = this.dials
      .filter((d) => d.name === name)
      .map(
        (d) => `dial ${d.seq} ${d.method} ${d.url} → ${d.answer}${d.findings.length ? ` findings: ${d.findings}` : ""}`,
      );
    for (const t of this.tunnels.filter((x) => x.name === name)) {
      lines.push(`--- tunnel ${t.seq} (dial ${t.dial.seq}) frames in/out ---`, ...t.log);
      if (t.violations.length) lines.push(`violations: ${t.violations.join("; ")}`);
    }
    return lines.join("\n");
  }

  close() {
    for (const t of this.tunnels) t.ws.terminate();
    this.wss.close();
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }

  /** Connector name by id, from the cloud's admin API (cached); undefined for an unknown or revoked one. */
  async #lookup(/** @type {string} */ id) {
    /** @type {{ id: string, name: string, group: string, revoked: boolean }[]} */
    const list = (await httpJson(`${this.config?.adminUrl}/admin/connectors`, { timeoutMs: 30_000 })).body;
    return list.find((c) => c.id === id && !c.revoked);
  }

  /**
   * @param {import("node:http").IncomingMessage} req
   * @param {import("node:stream").Duplex} duplex
   * @param {Buffer} head
   */
  async #onUpgrade(req, duplex, head) {
    const socket = /** @type {import("node:tls").TLSSocket} */ (duplex);
    socket.on("error", () => {});
    const cert = socket.getPeerCertificate(false);
    const connectorId = String(cert.subject?.CN ?? "");
    const group = String(cert.subject?.O ?? "");
    const auth = req.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    const record = await this.#lookup(connectorId).catch(() => undefined);
    /** @type {Dial} */
    const dial = {
      seq: this.dials.length + 1,
      at: Date.now(),
      connectorId,
      group,
      name: record?.name,
      method: req.method ?? "",
      url: req.url ?? "",
      httpVersion: req.httpVersion,
      headers: req.headers,
      rawHeaderNames: req.rawHeaders.filter((_, i) => i % 2 === 0),
      authorized: socket.authorized,
      peer: { certDer: cert.raw, connectorId, group },
      token,
      findings: requestFindings(req, this.url),
      answer: "",
    };
    this.dials.push(dial);
    const scripted = record
      ? (this.scripted.get(record.name)?.shift() ?? this.policies.get(record.name)?.(dial))
      : undefined;
    const answer = scripted ?? this.#standardAnswer(dial, Boolean(record));
    dial.answer = typeof answer === "string" ? answer : JSON.stringify(answer);
    this.changes.changed();
    if (answer === "accept") {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const tunnel = new Tunnel(ws, dial, { seq: this.tunnels.length + 1, tokenKeys: this.#tokenKeys() });
        dial.tunnel = tunnel;
        this.tunnels.push(tunnel);
        tunnel.changes.on("change", () => this.changes.changed());
        if (dial.name) this.onAccept.get(dial.name)?.(tunnel); // same tick as the 101: may share its read
        this.changes.changed();
      });
    } else answerBadly(socket, req, answer);
  }

  #tokenKeys() {
    if (!this.config) throw new Error("gateway not configured");
    return this.config.tokenKeys;
  }

  /** §4's order: certificate (Node checked the chain), standing (403), token (401), version (426). */
  /** @param {Dial} dial @param {boolean} known @returns {Answer} */
  #standardAnswer(dial, known) {
    if (!dial.authorized) return { status: 403, body: "certificate not from the CA" };
    if (dial.url !== PATH || dial.method !== "GET") return { status: 404 };
    if (!known) return { status: 403, body: "unknown or revoked connector" };
    if (tokenProblem(dial.token, dial.peer, this.#tokenKeys()))
      return { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } };
    const offered = String(dial.headers["sec-websocket-protocol"] ?? "").split(/\s*,\s*/);
    if (!offered.includes(PROTOCOL)) return { status: 426, headers: { "sec-websocket-protocol": PROTOCOL } };
    return "accept";
  }
}
