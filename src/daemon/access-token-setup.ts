/**
 * The daemon's access tokens wired up: fetched with whatever identity is current (a renewal changes
 * it), kept in the state dir after each fetch, seeded at start from the one kept by the last run (so a
 * restart during a control-plane outage can still dial), shown in status, and started.
 */
import type { Clock } from "../clock.ts";
import type { ControlClient } from "../control/client.ts";
import type { Identity } from "../identity/identity.ts";
import type { Logger } from "../log.ts";
import { AccessTokens } from "./access-tokens.ts";
import type { StatusModel } from "./status-model.ts";
import { TokenStore } from "./token-store.ts";

export interface AccessTokenSetup {
  readonly stateDir: string;
  readonly clock: Clock;
  readonly random?: () => number;
  readonly log: Logger;
  /** The identity to fetch with (read at each fetch) and its control-plane client. */
  readonly identity: () => Identity;
  readonly client: (identity: Identity) => Pick<ControlClient, "token">;
  readonly status: StatusModel;
  readonly onRevoked: () => void;
}

export function startAccessTokens(setup: AccessTokenSetup): AccessTokens {
  const { clock, log } = setup;
  const store = new TokenStore(setup.stateDir);
  const tokens = new AccessTokens({
    clock,
    log,
    ...(setup.random ? { random: setup.random } : {}),
    fetch: async () => {
      const current = setup.identity();
      return { ...(await setup.client(current).token()), certificate: current.certificate };
    },
    onRevoked: setup.onRevoked,
    onFetched: (fetched, lifeMs) =>
      store.save(fetched.certificate, fetched.token, new Date(clock.wallNow().getTime() + lifeMs)),
  });
  const kept = store.seedFor(setup.identity().certificate, clock.wallNow());
  if (kept.found) tokens.seed(kept.seed);
  else log.debug("no stored access token", { why: kept.why });
  setup.status.showAccessToken(() => tokens.view());
  tokens.start();
  return tokens;
}
