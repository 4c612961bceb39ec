/**
 * Tunables of the control-plane client, each with the reason for its number. They bound how long a
 * request may wait and how much of a response the connector will hold in memory.
 */

/**
 * Whole-request deadline (connect, TLS, proxy CONNECT, headers and body). 15 s: long enough for a slow
 * proxy and an RSA signature on a busy control plane, short enough that an operator at a terminal
 * gets an answer instead of a hang.
 */
export const REQUEST_TIMEOUT_MS = 15_000;

/** Largest response body read. The biggest legitimate body (enroll: certificate, chain, CA, gateways) is a few KiB. */
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** Largest CA PEM accepted from `GET /v1/ca`; one certificate is 1-3 KiB. */
export const MAX_CA_PEM_BYTES = 64 * 1024;
