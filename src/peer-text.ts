/**
 * Text that a server or gateway chose (API error messages, HTTP status lines, certificate subjects,
 * WebSocket close reasons, GO_AWAY / RESET / OPEN_RESULT messages) is made safe to print before it
 * reaches an error message, a log line or status. A middlebox or a compromised gateway controls that
 * text: left raw, ESC sequences would drive the operator's terminal (retitle it, hide lines, fake
 * output) and newlines would forge log records. Everything else stays readable as it was.
 */

/** Default bound, in characters, of a peer's text once escaped. */
export const MAX_PEER_TEXT_CHARS = 200;

/**
 * C0 controls, DEL, C1 controls (a lone 0x9B is CSI on some terminals), the line and paragraph
 * separators, and the bidirectional overrides/isolates that can make a message read backwards.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
/** The same set without the global flag: `test` on a /g regex keeps state between calls. */
const UNSAFE_TEST = new RegExp(UNSAFE.source, "u");

function escapeControl(ch: string): string {
  // Whitespace controls become a space so that a multi-line reason still reads as one sentence.
  if (ch === "\t" || ch === "\n" || ch === "\r") return " ";
  const cp = ch.codePointAt(0) ?? 0;
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, "0")}` : `\\u${cp.toString(16).padStart(4, "0")}`;
}

/**
 * `text` with every control character escaped as visible `\xNN` / `\uNNNN` (tab, CR and LF as a
 * space), cut to `maxChars` characters (an ellipsis marks the cut). Never splits an escape or a
 * surrogate pair.
 */
export function peerText(text: string, maxChars = MAX_PEER_TEXT_CHARS): string {
  // The usual case (a short, plain reason, once per stream end) costs one length check and one scan.
  if (text.length <= maxChars && !UNSAFE_TEST.test(text)) return text;
  const escaped = text.replace(UNSAFE, escapeControl);
  const chars = Array.from(escaped);
  if (chars.length <= maxChars) return escaped;
  let cut = Math.max(0, maxChars - 1);
  // Do not leave half of an escape: back up to before a trailing partial `\x..` / `\u....`.
  const head = chars.slice(0, cut).join("");
  const partial = /\\(?:x[0-9a-f]?|u[0-9a-f]{0,3})?$/.exec(head);
  if (partial) cut -= partial[0].length;
  return `${chars.slice(0, cut).join("")}…`;
}
