/** Identity tunables with the reason for each number. */

/**
 * RSA modulus of the connector's key pair. 3072 bits: the protocol's minimum (docs/PROTOCOL.md §3.2)
 * and NIST's level for use beyond 2030; generation takes well under a second natively.
 */
export const RSA_MODULUS_BITS = 3072;

/** Longest connector name (a DNS label): the hostname default is cut to this. */
export const MAX_NAME_CHARS = 63;

/** Largest key file read (`--key-file`, `<state-dir>/provision_key`); a key is under 4 KiB. */
export const MAX_KEY_FILE_BYTES = 16 * 1024;

/** Largest identity.json / key.pem read; the identity holds a few certificates of a few KiB. */
export const MAX_IDENTITY_FILE_BYTES = 1024 * 1024;

/**
 * Age after which a leftover enrollment temp dir is removed. A save holds its temp dir for
 * milliseconds; 10 minutes leaves a concurrent enrollment's temp dir alone whatever the disk speed.
 */
export const STALE_TEMP_DIR_MS = 10 * 60 * 1000;

/**
 * Size of the probe file written before an enrollment spends a key use: about what the identity
 * takes (identity.json with its certificates, key.pem), so a nearly full disk fails the probe too.
 */
export const STATE_DIR_PROBE_BYTES = 16 * 1024;
