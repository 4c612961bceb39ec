// @ts-check
/**
 * The numbers of docs/PROTOCOL.md the interop gateway needs, copied from the document (§4 message size,
 * §5.1 header and flag, §5.2 types and maxima, §5.3 codes, §5.5 windows, §5.7 GO_AWAY codes), not from
 * src/: they are part of what the suite checks.
 */

export const HEADER_BYTES = 12;
export const KIB = 1024;
/** §4: a WebSocket message is at most 1 MiB. */
export const MAX_MESSAGE_BYTES = 1024 * KIB;
/** §5.5 */
export const INITIAL_WINDOW = 256 * KIB;
export const MAX_WINDOW = 16 * 1024 * KIB;
export const MAX_WINDOW_SUM = 2 ** 31 - 1;

/** §5.2 */
export const T = Object.freeze({
  OPEN: 0x01,
  OPEN_RESULT: 0x02,
  DATA: 0x03,
  WINDOW_UPDATE: 0x04,
  FIN: 0x05,
  RESET: 0x06,
  PING: 0x07,
  PONG: 0x08,
  GO_AWAY: 0x09,
  TOKEN_UPDATE: 0x0a,
  HEALTH_REPORT: 0x0b,
  CONFIG_CHANGED: 0x0c,
});
export const TYPE_NAMES = Object.freeze(Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k])));

/** §5.2 "max payload" column. */
/** @type {Readonly<Record<number, number>>} */
export const MAX_PAYLOAD = Object.freeze({
  [T.OPEN]: 2 + 255 + 255 + 2,
  [T.OPEN_RESULT]: 1 + 512,
  [T.DATA]: 256 * KIB,
  [T.WINDOW_UPDATE]: 4,
  [T.FIN]: 0,
  [T.RESET]: 1 + 512,
  [T.PING]: 8,
  [T.PONG]: 8,
  [T.GO_AWAY]: 1 + 512,
  [T.TOKEN_UPDATE]: 8 * KIB,
  [T.HEALTH_REPORT]: 64 * KIB,
  [T.CONFIG_CHANGED]: 1 * KIB,
});

/** §5.1: the only flag, on DATA only. */
export const CREDIT_EXHAUSTED = 0x01;

/** §5.3 open-result and reset codes. */
export const CODE = Object.freeze({
  OK: 0,
  NOT_ALLOWED: 1,
  DNS_FAILURE: 2,
  REFUSED: 3,
  TIMEOUT: 4,
  UNREACHABLE: 5,
  BUSY: 6,
  INTERNAL: 7,
  FLOW_CONTROL: 8,
  PROTOCOL: 9,
  CANCELLED: 10,
});
export const CODE_NAMES = Object.freeze(Object.fromEntries(Object.entries(CODE).map(([k, v]) => [v, k])));

/** §5.7 GO_AWAY codes. */
export const GO_AWAY = Object.freeze({ DRAINING: 0, PROTOCOL_ERROR: 1, AUTH_EXPIRED: 2, INTERNAL: 3 });

/** Stream frames (OPEN … RESET) need a non-zero id, tunnel frames (PING … CONFIG_CHANGED) id 0. */
export const isStreamType = (/** @type {number} */ type) => type >= T.OPEN && type <= T.RESET;
