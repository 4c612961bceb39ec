/** Why the connector has no access token to dial with (see src/daemon/access-tokens.ts). */
import { ConnectorError } from "../errors.ts";

/** A dial found no usable token while the retry of a failed fetch is scheduled: it fails at once, without a fetch. */
export class NoAccessTokenError extends ConnectorError {
  override readonly name = "NoAccessTokenError";
  constructor(
    readonly retryInMs: number,
    lastError: string | null,
  ) {
    super(
      "NO_ACCESS_TOKEN",
      `no usable access token${lastError ? ` (${lastError})` : ""}; the next request for one is in ${Math.ceil(retryInMs / 1000)} s`,
    );
  }
}

/** The control plane issued a token too short-lived to dial and schedule by: handled as a failed fetch. */
export class AccessTokenTooShortError extends ConnectorError {
  override readonly name = "AccessTokenTooShortError";
  constructor(lifeMs: number, minLifeMs: number) {
    super(
      "ACCESS_TOKEN_TOO_SHORT",
      `the control plane issued an access token living ${lifeMs / 1000} s, less than the ${minLifeMs / 1000} s the connector needs`,
    );
  }
}
