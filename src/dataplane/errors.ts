/**
 * Why a stream's destination could not be reached. `DialError.failure` is the name of the PROTOCOL §5.3 code
 * the connector answers in OPEN_RESULT (`StreamCode[err.failure]` in src/mux/const.ts), so the
 * dialer and the protocol cannot drift apart. Messages name the host, port and addresses tried,
 * never stream data.
 */
import { ConnectorError, errnoCode } from "../errors.ts";
import type { StreamCodeName } from "../mux/const.ts";

/**
 * PROTOCOL §5.3 codes a dial can end with. `CANCELLED` means the caller's signal aborted the dial (the stream
 * went away first); it is a RESET code, never sent as an OPEN_RESULT. `BUSY`: this process ran out of
 * file descriptors (the app is not to blame). `NOT_ALLOWED`: a name resolved only to addresses a name
 * rule may not reach.
 */
export type DialFailure = Extract<
  StreamCodeName,
  "DNS_FAILURE" | "REFUSED" | "TIMEOUT" | "UNREACHABLE" | "INTERNAL" | "CANCELLED" | "BUSY" | "NOT_ALLOWED"
>;

export class DialError extends ConnectorError {
  override readonly name = "DialError";
  constructor(
    /** The PROTOCOL §5.3 code name to answer with. */
    readonly failure: DialFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`DIAL_${failure}`, message, undefined, options);
  }
}

/**
 * Maps a socket error (`code` such as `ECONNREFUSED`) to a PROTOCOL §5.3 failure. Local policy refusals
 * (EPERM/EACCES, e.g. systemd `IPAddressDeny=` or a firewall REJECT) count as unreachable: from the
 * gateway's point of view there is no route from this connector.
 */
export function failureOfSocketError(err: unknown): DialFailure {
  switch (errnoCode(err)) {
    case "ECONNREFUSED":
      return "REFUSED";
    case "EMFILE":
    case "ENFILE":
      return "BUSY";
    case "ETIMEDOUT":
      return "TIMEOUT";
    case "ENETUNREACH":
    case "EHOSTUNREACH":
    case "EHOSTDOWN":
    case "ENETDOWN":
    case "EADDRNOTAVAIL":
    case "EAFNOSUPPORT":
    case "EPERM":
    case "EACCES":
      return "UNREACHABLE";
    default:
      return "INTERNAL";
  }
}
