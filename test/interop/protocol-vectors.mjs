// @ts-check
/**
 * Reads the test vectors of docs/PROTOCOL.md §5.13, so tests check the document itself, not a copy:
 * frames (bytes and the fields a receiver reads), messages a receiver refuses (bytes and its close
 * reason), and one masked WebSocket frame.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DOC = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "PROTOCOL.md");

/** @param {string} spaced */
const bytes = (spaced) => Buffer.from(spaced.replace(/\s+/g, ""), "hex");

export function protocolVectors() {
  const text = readFileSync(DOC, "utf8");
  const start = text.indexOf("### 5.13 Test vectors");
  if (start < 0) throw new Error("docs/PROTOCOL.md has no §5.13 Test vectors");
  const section = text.slice(start, text.indexOf("\n## ", start));
  const frames = [...section.matchAll(/^\| ([A-Z_]+) \| `([0-9a-f ]+)` \| `(\{.*\})` \|$/gm)].map((m) => ({
    name: /** @type {string} */ (m[1]),
    bytes: bytes(/** @type {string} */ (m[2])),
    fields: JSON.parse(/** @type {string} */ (m[3])),
  }));
  const refused = [
    ...section.matchAll(/^\| ([^|]+) \| `([0-9a-f ]+)` \| close 1002 `(PROTOCOL_[A-Z0-9_]+)` \|$/gm),
  ].map((m) => ({
    what: /** @type {string} */ (m[1]).trim(),
    bytes: bytes(/** @type {string} */ (m[2])),
    reason: m[3],
  }));
  const masked = /```\n([0-9a-f ]+)\n```/.exec(section)?.[1];
  if (!masked) throw new Error("§5.13 has no masked WebSocket frame");
  return { frames, refused, maskedFrame: bytes(masked) };
}
