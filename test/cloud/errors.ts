/**
 * The one error type of the reference cloud: an API refusal with the HTTP status and the stable code
 * of docs/PROTOCOL.md §3 (`ApiErrorCode` in src/control/api.ts). Handlers throw it; the HTTP layer turns
 * it into `{ "error": { "code", "message" } }`. Messages never contain a secret.
 */
import { ConnectorError } from "../../src/errors.ts";
import type { ApiError, ApiErrorCode } from "../../src/control/api.ts";

export class CloudApiError extends ConnectorError {
  override readonly name = "CloudApiError";
  constructor(
    readonly status: number,
    override readonly code: ApiErrorCode,
    message: string,
  ) {
    super(code, message);
  }

  toBody(): ApiError {
    return { error: { code: this.code, message: this.message.slice(0, 1024) } };
  }
}

export const badRequest = (message: string) => new CloudApiError(400, "BAD_REQUEST", message);
export const notFound = (message: string) => new CloudApiError(404, "NOT_FOUND", message);
