/**
 * Provisioning key codec. A key is one copy-pasteable token:
 *
 *   cnk1.<base64url( caPin[32] | secret[32] | controlUrl[utf-8] | check[4] )>
 *
 * - `cnk1` names the format version; a future format gets a new prefix, never a reinterpretation.
 * - `caPin` is SHA-256 over the DER SubjectPublicKeyInfo of the cloud CA: enrollment trusts only a
 *   CA whose public key hashes to it.
 * - `secret` authenticates the key to the control plane (which stores only its hash).
 * - `check` is the first 4 bytes of SHA-256 over the prefix and the rest of the payload, so a truncated
 *   or mistyped key is reported as such instead of failing later as "unknown key".
 * Operators paste keys in quotes and with trailing newlines: surrounding whitespace and one pair of
 * matching quotes are accepted. Anything else is rejected with a `ProvisioningKeyError`.
 */
import { createHash } from "node:crypto";
import { ConnectorError, ExitCode } from "../errors.ts";
import { Secret } from "../secret.ts";

export const KEY_PREFIX = "cnk1";
const PIN_BYTES = 32;
const SECRET_BYTES = 32;
const CHECK_BYTES = 4;
/** Longer than any real key; bounds the work done on garbage input. */
const MAX_KEY_CHARS = 4096;
const MAX_URL_BYTES = 2048;

export class ProvisioningKeyError extends ConnectorError {
  override readonly name = "ProvisioningKeyError";
  constructor(code: string, message: string) {
    super(code, `Invalid provisioning key: ${message}`, ExitCode.keyMalformed);
  }
}

export interface ProvisioningKey {
  /** Control-plane base URL (https, no path beyond "/", no credentials). */
  readonly controlUrl: string;
  /** base64url SHA-256 of the cloud CA's SubjectPublicKeyInfo. */
  readonly caPin: string;
  /** The 32-byte secret, base64url. */
  readonly secret: Secret<string>;
}

function checksum(body: Uint8Array): Buffer {
  return createHash("sha256").update(`${KEY_PREFIX}.`).update(body).digest().subarray(0, CHECK_BYTES);
}

export function encodeProvisioningKey(key: { controlUrl: string; caPin: string; secret: string }): string {
  const pin = Buffer.from(key.caPin, "base64url");
  const secret = Buffer.from(key.secret, "base64url");
  if (pin.length !== PIN_BYTES) throw new ProvisioningKeyError("KEY_BAD_PIN", "CA pin must be 32 bytes");
  if (secret.length !== SECRET_BYTES) throw new ProvisioningKeyError("KEY_BAD_SECRET", "secret must be 32 bytes");
  const url = Buffer.from(validateControlUrl(key.controlUrl));
  const body = Buffer.concat([pin, secret, url]);
  return `${KEY_PREFIX}.${Buffer.concat([body, checksum(body)]).toString("base64url")}`;
}

/** Removes what operators add around a pasted key: whitespace and one pair of matching quotes. */
function unwrap(raw: string): string {
  let text = raw.trim();
  const first = text[0];
  if (text.length >= 2 && (first === '"' || first === "'") && text.endsWith(first)) {
    text = text.slice(1, -1).trim();
  }
  return text;
}

export function decodeProvisioningKey(raw: string): ProvisioningKey {
  if (typeof raw !== "string") throw new ProvisioningKeyError("KEY_MALFORMED", "not text");
  if (raw.length > MAX_KEY_CHARS) {
    throw new ProvisioningKeyError("KEY_MALFORMED", `longer than ${MAX_KEY_CHARS} characters; copy the key again`);
  }
  const text = unwrap(raw);
  if (text.length === 0) throw new ProvisioningKeyError("KEY_EMPTY", "the key is empty");
  const dot = text.indexOf(".");
  const prefix = dot < 0 ? "" : text.slice(0, dot);
  if (prefix !== KEY_PREFIX) {
    if (/^cnk\d+$/.test(prefix)) {
      throw new ProvisioningKeyError(
        "KEY_UNSUPPORTED_VERSION",
        `format "${prefix}" is not supported by this connector version (it reads "${KEY_PREFIX}"); upgrade the connector`,
      );
    }
    throw new ProvisioningKeyError(
      "KEY_MALFORMED",
      `it must start with "${KEY_PREFIX}."; copy the whole key from the console`,
    );
  }
  const encoded = text.slice(dot + 1);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) {
    throw new ProvisioningKeyError(
      "KEY_MALFORMED",
      "it contains characters that are not part of a key (spaces or line breaks inside?)",
    );
  }
  const bytes = Buffer.from(encoded, "base64url");
  const minimum = PIN_BYTES + SECRET_BYTES + "https://a".length + CHECK_BYTES;
  if (bytes.length < minimum || bytes.length > PIN_BYTES + SECRET_BYTES + MAX_URL_BYTES + CHECK_BYTES) {
    throw new ProvisioningKeyError("KEY_TRUNCATED", "it has the wrong length; it was probably cut when copied");
  }
  const body = bytes.subarray(0, bytes.length - CHECK_BYTES);
  if (!checksum(body).equals(bytes.subarray(bytes.length - CHECK_BYTES))) {
    throw new ProvisioningKeyError("KEY_CHECKSUM", "its checksum does not match; it was mistyped or cut when copied");
  }
  const urlText = new TextDecoder("utf-8", { fatal: false }).decode(body.subarray(PIN_BYTES + SECRET_BYTES));
  return {
    caPin: body.subarray(0, PIN_BYTES).toString("base64url"),
    secret: new Secret(body.subarray(PIN_BYTES, PIN_BYTES + SECRET_BYTES).toString("base64url")),
    controlUrl: validateControlUrl(urlText),
  };
}

function validateControlUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProvisioningKeyError("KEY_BAD_URL", "the control-plane address inside it is not a URL");
  }
  if (url.protocol !== "https:")
    throw new ProvisioningKeyError("KEY_BAD_URL", "the control-plane address must use https");
  if (url.username || url.password || url.search || url.hash || url.hostname === "") {
    throw new ProvisioningKeyError(
      "KEY_BAD_URL",
      "the control-plane address must be a plain https://host[:port][/path]",
    );
  }
  return url.toString().replace(/\/$/, "");
}
