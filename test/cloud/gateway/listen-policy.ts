/**
 * Which gateway processes listen on an app's user port (the cloud process decides; pure).
 *
 * All gateways bind the same 127.0.0.1:PORT with SO_REUSEPORT and the kernel spreads connections
 * over the bound ones. A gateway that cannot route the app (no usable tunnel of its group) must not
 * be among them, or it would take its share of users only to close them — e.g. a gateway restarted
 * after a kill -9, before the connector's backoff brings its tunnel back. So a gateway binds the port
 * itself as soon as it can route the app, and unbinds only when told to (`release`), which happens
 * only while some other gateway both routes the app and holds the port. When no gateway can route it,
 * one gateway keeps (or is told to take, `hold`) the port anyway, so the port is never given back to
 * the OS while the cloud runs: users get an accepted-then-closed connection, and the port stays ours.
 */

/** What the cloud process knows about one gateway and one app. */
export interface GatewayListenView {
  readonly id: string;
  /** The process is up and answered `init`. */
  readonly alive: boolean;
  /** The gateway last reported a usable tunnel for the app. */
  readonly routable: boolean;
  /** The gateway last reported its listener for the app bound. */
  readonly listening: boolean;
}

export interface ListenAction {
  readonly gateway: string;
  readonly action: "hold" | "release";
}

/**
 * Instructions that move the gateways towards: every gateway that can route the app listens on its
 * port, and someone always holds the port. Until the port is known (a new app), only one gateway is
 * told to `hold` (it binds port 0 and reports what it got); the others are told the port afterwards.
 */
export function planListeners(gateways: readonly GatewayListenView[], portKnown: boolean): ListenAction[] {
  const alive = gateways.filter((g) => g.alive);
  const keeper = alive.find((g) => g.routable) ?? alive[0];
  if (!portKnown) return alive.some((g) => g.listening) || !keeper ? [] : [{ gateway: keeper.id, action: "hold" }];
  const actions: ListenAction[] = alive
    .filter((g) => g.routable && !g.listening)
    .map((g) => ({ gateway: g.id, action: "hold" }));
  if (alive.some((g) => g.routable && g.listening)) {
    actions.push(
      ...alive.filter((g) => g.listening && !g.routable).map((g) => ({ gateway: g.id, action: "release" as const })),
    );
  } else if (!alive.some((g) => g.listening) && actions.length === 0 && keeper) {
    actions.push({ gateway: keeper.id, action: "hold" });
  }
  return actions;
}
