// @ts-check
/**
 * The interop gateway's side of the upgrade (docs/PROTOCOL.md §4, RFC 6455 §4): what it checks in the
 * connector's request, and the refusals and deliberately broken answers a test can script.
 */
import { createHash } from "node:crypto";

export const PATH = "/v1/tunnel";
export const PROTOCOL = "connector.v1";

/**
 * @typedef {"accept" | "drop" | { status: number, headers?: Record<string, string>, body?: string }
 *   | { raw: string | Buffer } | { bad101: { protocol?: string | null, accept?: string, headers?: string[] } }} Answer
 */

/** Where the connector's upgrade request departs from §4 (and RFC 6455 §4.1). @param {import("node:http").IncomingMessage} req @param {string} url */
export function requestFindings(req, url) {
  const h = req.headers;
  const found = [];
  const host = new URL(url).host;
  if (req.method !== "GET") found.push(`method ${req.method}`);
  if (req.url !== PATH) found.push(`path ${req.url}`);
  if (req.httpVersion !== "1.1") found.push(`HTTP/${req.httpVersion}`);
  if (h.host !== host) found.push(`Host ${h.host}, not ${host}`);
  if (String(h.upgrade).toLowerCase() !== "websocket") found.push(`Upgrade ${h.upgrade}`);
  if (!/(^|,)\s*upgrade\s*(,|$)/i.test(String(h.connection))) found.push(`Connection ${h.connection}`);
  if (
    Buffer.from(String(h["sec-websocket-key"]), "base64").length !== 16 ||
    !/^[A-Za-z0-9+/]{22}==$/.test(String(h["sec-websocket-key"]))
  )
    found.push(`Sec-WebSocket-Key ${h["sec-websocket-key"]}`);
  if (h["sec-websocket-version"] !== "13") found.push(`Sec-WebSocket-Version ${h["sec-websocket-version"]}`);
  const offered = String(h["sec-websocket-protocol"] ?? "").split(/\s*,\s*/);
  if (!offered.includes(PROTOCOL)) found.push(`Sec-WebSocket-Protocol ${h["sec-websocket-protocol"]}`);
  const versions = offered.map((p) => Number(/^connector\.v(\d+)$/.exec(p)?.[1]));
  if (versions.some((v, i) => i > 0 && !(v < (versions[i - 1] ?? 0))))
    found.push(`versions not highest first: ${offered}`);
  if (!/^Bearer [\x21-\x7e]+$/.test(String(h.authorization))) found.push("no Authorization: Bearer");
  if (!h["x-connector-version"]) found.push("no X-Connector-Version");
  if (h["sec-websocket-extensions"]) found.push(`offers extensions ${h["sec-websocket-extensions"]}`);
  return found;
}

/** Writes a refusal or a deliberately broken answer, then closes. @param {import("node:tls").TLSSocket} socket @param {import("node:http").IncomingMessage} req @param {Exclude<Answer, "accept">} answer */
export function answerBadly(socket, req, answer) {
  if (answer === "drop") {
    socket.destroy();
    return;
  }
  if ("raw" in answer) {
    socket.end(answer.raw);
    return;
  }
  if ("bad101" in answer) {
    const { protocol = PROTOCOL, accept, headers = [] } = answer.bad101;
    const key = String(req.headers["sec-websocket-key"]);
    const right = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${accept ?? right}`,
      ...(protocol === null ? [] : [`Sec-WebSocket-Protocol: ${protocol}`]),
      ...headers,
    ];
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    setTimeout(() => socket.destroy(), 5_000).unref();
    return;
  }
  const body = answer.body ?? "";
  const headers = Object.entries({
    ...(answer.headers ?? {}),
    connection: "close",
    "content-length": String(Buffer.byteLength(body)),
  });
  const head = [
    `HTTP/1.1 ${answer.status} ${STATUS_TEXT[answer.status] ?? "Refused"}`,
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
}

/** @type {Record<number, string>} */
const STATUS_TEXT = {
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
