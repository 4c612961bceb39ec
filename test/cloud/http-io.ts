/**
 * Request and response plumbing of the control plane (node:http over node:tls): bounded JSON bodies and
 * the error body `{ "error": { "code", "message" } }` for every non-2xx answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_BODY_BYTES } from "./config.ts";
import { CloudApiError, badRequest } from "./errors.ts";

const tooLarge = (max: number) => new CloudApiError(413, "BAD_REQUEST", `request body larger than ${max} bytes`);

/** Reads the whole body, refusing more than `maxBytes` (checked before and while reading). */
export function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners("data");
        req.pause();
        reject(tooLarge(maxBytes));
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    // After "end" this is a no-op; before it, the client went away (or the request timed out).
    req.on("close", () => reject(new CloudApiError(400, "BAD_REQUEST", "the connection closed before the body ended")));
  });
}

export async function readJson(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const body = await readBody(req, maxBytes);
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw badRequest("the request body is not JSON");
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Answers with the error body; anything that is not a CloudApiError becomes 500 INTERNAL. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const apiError = err instanceof CloudApiError ? err : new CloudApiError(500, "INTERNAL", "internal error");
  // A refused request may have left body bytes unread; closing the connection is simpler than draining.
  sendJson(res, apiError.status, apiError.toBody(), { connection: "close" });
}
