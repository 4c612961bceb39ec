// @ts-check
/**
 * JSON over plain HTTP to the cloud's admin API, one connection per request (`agent: false`): `fetch`
 * keeps idle connections that hold a test process open for seconds after its last test.
 */
import { request } from "node:http";

/**
 * @param {string} url @param {{ method?: string, body?: unknown, timeoutMs?: number }} [o]
 * @returns {Promise<{ status: number, body: any, text: string }>}
 */
export function httpJson(url, o = {}) {
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: o.method ?? (body === undefined ? "GET" : "POST"),
        agent: false,
        timeout: o.timeoutMs ?? 30_000,
        headers:
          body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          let parsed;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${url} timed out`)));
    req.end(body);
  });
}
