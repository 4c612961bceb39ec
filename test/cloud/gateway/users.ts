/**
 * The user side of one gateway process: one TCP listener per app on 127.0.0.1, bound with
 * SO_REUSEPORT so every gateway process can serve the same port (see listen-policy.ts for who binds
 * when). Each accepted connection gets a `RelayLink` (src/dataplane/relay.ts) at once, which holds
 * what the user sends while the router opens a stream, then joins socket and stream with bounded
 * memory. Nothing here touches the bytes: the data path is RelayLink's and the session's alone.
 *
 * Listener state changes (routable, bound, port) are reported through `onState`, deduplicated so an
 * unchanged state is never reported twice.
 */
import type { Socket, SocketHandler, TCPSocketListenOptions, TCPSocketListener } from "bun";
import { RelayLink, relaySocketHandlers } from "../../../src/dataplane/relay.ts";
import type { Logger } from "../../../src/log.ts";
import { StreamCode } from "../../../src/mux/const.ts";
import type { Stream } from "../../../src/mux/stream.ts";
import { USER_LINGER_MS } from "./config.ts";
import type { ListenState } from "./messages.ts";
import type { Router } from "./router.ts";

interface AppListener {
  port: number | null;
  listener: TCPSocketListener<RelayLink> | undefined;
  error: string | undefined;
  /** The last state reported, as a comparable key. */
  reported: string;
}

export interface UserListenersOptions {
  readonly router: Router<Stream>;
  readonly onState: (state: ListenState) => void;
  readonly log: Logger;
}

/**
 * Closes a user connection that could not be routed with a FIN rather than a reset: half-close now
 * (what the user sent meanwhile is read into the link's bounded buffer and dropped with it) and cut
 * the connection only if the user has not closed its side within `USER_LINGER_MS`. Closing at once
 * with unread bytes in the kernel would make it send RST, which clients report as an error rather
 * than as the end of the stream.
 */
function closeGently(link: RelayLink): void {
  if (!link.socket) return;
  link.socket.shutdown();
  setTimeout(() => link.abort(), USER_LINGER_MS).unref();
}

export class UserListeners {
  readonly counters = { userConnections: 0 };
  readonly #apps = new Map<string, AppListener>();
  readonly #options: UserListenersOptions;
  /** User connections not finished yet (routing or relaying). */
  #active = 0;
  #idleWaiters: (() => void)[] = [];
  #closed = false;

  constructor(options: UserListenersOptions) {
    this.#options = options;
  }

  /** The apps of the catalog and the ports already known for them; listeners of removed apps close. */
  setApps(names: readonly string[], knownPorts: Readonly<Record<string, number>> = {}): void {
    const keep = new Set(names);
    for (const [name, app] of this.#apps) {
      if (keep.has(name)) continue;
      app.listener?.stop(false);
      this.#apps.delete(name);
    }
    for (const name of names) {
      if (!this.#apps.has(name))
        this.#apps.set(name, { port: knownPorts[name] || null, listener: undefined, error: undefined, reported: "" });
    }
  }

  /**
   * The router says whether `app` can be routed here: a routable app is served at once if its port
   * is known (a new app's port is chosen by the one gateway the cloud tells to `hold` it first).
   */
  routableChanged(app: string): void {
    if (this.#options.router.isRoutable(app) && this.#apps.get(app)?.port) this.#bind(app);
    this.#report(app);
  }

  /** Serve `app` (on `port`, or a new port when 0 and none is known) even if it cannot be routed here. */
  hold(app: string, port: number): void {
    const entry = this.#apps.get(app);
    if (!entry) return;
    if (entry.port === null && port > 0) entry.port = port;
    this.#bind(app);
    this.#report(app);
  }

  /** Stop serving `app` unless it can be routed here: another gateway holds the port. */
  release(app: string): void {
    const entry = this.#apps.get(app);
    if (!entry || this.#options.router.isRoutable(app)) return;
    entry.listener?.stop(false);
    entry.listener = undefined;
    this.#report(app);
  }

  /** Unbinds every listener; connections already accepted go on. */
  closeListeners(): void {
    this.#closed = true;
    for (const entry of this.#apps.values()) {
      entry.listener?.stop(false);
      entry.listener = undefined;
    }
  }

  /** Resolves when no user connection is routing or relaying. */
  whenIdle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  describe(): Record<string, { routable: boolean; listening: boolean }> {
    const out: Record<string, { routable: boolean; listening: boolean }> = {};
    for (const [name, entry] of this.#apps)
      out[name] = { routable: this.#options.router.isRoutable(name), listening: entry.listener !== undefined };
    return out;
  }

  #bind(app: string): void {
    const entry = this.#apps.get(app);
    if (!entry || entry.listener || this.#closed) return;
    // Bun 1.4.5 honours `reusePort` on Bun.listen (verified: two processes share a port, connections
    // spread, one dies and the other keeps accepting); its type declares it only for connect options.
    const options: TCPSocketListenOptions<RelayLink> & { reusePort: boolean } = {
      hostname: "127.0.0.1",
      port: entry.port ?? 0,
      reusePort: true,
      allowHalfOpen: true,
      socket: this.#handlers(app),
    };
    try {
      entry.listener = Bun.listen<RelayLink>(options);
      entry.port = entry.listener.port;
      entry.error = undefined;
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
      this.#options.log.error(`cannot listen for users of ${app} on 127.0.0.1:${entry.port ?? 0}: ${entry.error}`);
    }
  }

  #report(app: string): void {
    const entry = this.#apps.get(app);
    if (!entry) return;
    const state: ListenState = {
      type: "listenState",
      app,
      routable: this.#options.router.isRoutable(app),
      listening: entry.listener !== undefined,
      port: entry.port,
      ...(entry.error === undefined ? {} : { error: entry.error }),
    };
    const key = JSON.stringify(state);
    if (key === entry.reported) return;
    entry.reported = key;
    this.#options.onState(state);
  }

  #handlers(app: string): SocketHandler<RelayLink> {
    return { ...relaySocketHandlers, open: (socket) => this.#accept(app, socket) };
  }

  #accept(app: string, socket: Socket<RelayLink>): void {
    this.counters.userConnections++;
    socket.setNoDelay(true);
    this.#active++;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (--this.#active === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    };
    const link = new RelayLink(finish);
    link.socket = socket;
    socket.data = link;
    void this.#options.router.route(app).then((result) => {
      if (!result.ok) {
        this.#options.log.debug(`user of ${app} closed: ${result.reason}`);
        finish();
        closeGently(link);
      } else if (finished) {
        result.stream.reset(StreamCode.CANCELLED, "the user went away"); // left while the stream opened
      } else {
        link.attach(result.stream);
      }
    });
  }
}
