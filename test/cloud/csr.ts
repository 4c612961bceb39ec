/**
 * PKCS#10 CSR verification (docs/PROTOCOL.md §3.2). A CSR is accepted only if it parses as DER, its
 * signature verifies with the public key it carries (proof that the requester holds the private key)
 * and that key is strong enough: RSA of 3072..8192 bits, or EC on P-256 or P-384.
 *
 * The result carries only the public key. The subject and attributes the requester asked for are
 * deliberately dropped: the CA decides what goes in a certificate, never the CSR.
 *
 * Parsing is done here with node:crypto and a small DER reader instead of node-forge, because forge
 * reads only RSA keys and would turn every EC CSR into "unparsable".
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { ACCEPTED_CURVES, MAX_RSA_BITS, MIN_RSA_BITS } from "./config.ts";
import { bitStringBytes, DerError, expectSequence, oidOf, parseDer, Tag } from "./der.ts";
import { CloudApiError } from "./errors.ts";

export interface VerifiedCsr {
  /** The requester's public key, as a KeyObject and as DER SubjectPublicKeyInfo. */
  readonly publicKey: KeyObject;
  readonly spki: Buffer;
  /** e.g. "rsa 3072" or "ec prime256v1", for logs. */
  readonly keyDescription: string;
}

/** Signature algorithms a CSR may be signed with: hash and the key type it needs. SHA-1 is not among them. */
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; keyType: "rsa" | "ec" }> = {
  "1.2.840.113549.1.1.11": { hash: "sha256", keyType: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", keyType: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", keyType: "rsa" },
  "1.2.840.10045.4.3.2": { hash: "sha256", keyType: "ec" },
  "1.2.840.10045.4.3.3": { hash: "sha384", keyType: "ec" },
  "1.2.840.10045.4.3.4": { hash: "sha512", keyType: "ec" },
};

const invalid = (message: string) => new CloudApiError(400, "CSR_INVALID", message);
const weak = (message: string) => new CloudApiError(400, "CSR_WEAK_KEY", message);

const PEM_BLOCK =
  /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1?CERTIFICATE REQUEST-----$/;

function pemToDer(pem: string): Buffer {
  const match = PEM_BLOCK.exec(pem.trim());
  if (!match?.[2]) throw invalid("the CSR is not one PEM block 'BEGIN CERTIFICATE REQUEST'");
  return Buffer.from(match[2].replace(/\s+/g, ""), "base64");
}

/** The parts of a CertificationRequest the verification needs (RFC 2986 §4). */
function splitCsr(der: Buffer) {
  const [info, algorithm, signature] = expectSequence(parseDer(der), "CertificationRequest", 3);
  const [version, , spki] = expectSequence(info, "CertificationRequestInfo", 3);
  if (version?.tag !== Tag.INTEGER || version.content.length !== 1 || version.content[0] !== 0) {
    throw new DerError("version is not v1 (0)");
  }
  if (spki?.tag !== Tag.SEQUENCE) throw new DerError("SubjectPublicKeyInfo is not a SEQUENCE");
  const [algorithmOid] = expectSequence(algorithm, "signatureAlgorithm", 1);
  return {
    signedBytes: info!.bytes,
    spki: spki.bytes,
    algorithm: oidOf(algorithmOid, "signatureAlgorithm"),
    signature: bitStringBytes(signature, "signature"),
  };
}

/** Throws CSR_WEAK_KEY unless the key meets the minimum (RSA ≥ 3072 or EC P-256/P-384). */
function checkStrength(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw weak(`RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are required`);
    if (bits > MAX_RSA_BITS) throw weak(`RSA key of ${bits} bits; at most ${MAX_RSA_BITS} are accepted`);
    return `rsa ${bits}`;
  }
  if (key.asymmetricKeyType === "ec") {
    const curve = details.namedCurve ?? "unknown";
    if (!ACCEPTED_CURVES.includes(curve)) throw weak(`EC curve ${curve} is not accepted; use P-256 or P-384`);
    return `ec ${curve}`;
  }
  throw weak(`key type ${key.asymmetricKeyType ?? "unknown"} is not accepted; use RSA (3072+ bits) or EC P-256/P-384`);
}

/** Verifies a CSR in PEM; throws CloudApiError CSR_INVALID or CSR_WEAK_KEY. */
export function verifyCsr(pem: string): VerifiedCsr {
  let parts: ReturnType<typeof splitCsr>;
  let publicKey: KeyObject;
  try {
    parts = splitCsr(pemToDer(pem));
    publicKey = createPublicKey({ key: parts.spki, format: "der", type: "spki" });
  } catch (err) {
    if (err instanceof CloudApiError) throw err;
    throw invalid(`the CSR cannot be parsed: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Strength before signature: an oversized key is refused before any expensive verification.
  const keyDescription = checkStrength(publicKey);
  const algorithm = SIGNATURE_ALGORITHMS[parts.algorithm];
  if (!algorithm)
    throw invalid(`signature algorithm ${parts.algorithm} is not accepted; sign with SHA-256 or stronger`);
  if (algorithm.keyType !== publicKey.asymmetricKeyType)
    throw invalid("the signature algorithm does not match the key type");
  let ok = false;
  try {
    ok = verify(algorithm.hash, parts.signedBytes, { key: publicKey, dsaEncoding: "der" }, parts.signature);
  } catch {
    // A malformed signature (e.g. an ECDSA value that is not DER) is just a signature that does not verify.
  }
  if (!ok) throw invalid("the CSR signature does not verify with its public key");
  return { publicKey, spki: Buffer.from(parts.spki), keyDescription };
}
