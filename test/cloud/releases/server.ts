/**
 * The reference release server (`test/cloud/main.ts --releases DIR`): plain HTTP on 127.0.0.1, serving
 *   /<channel>/<file>     from the newest (highest sequence) release of that channel in DIR
 *   /r/<release>/<file>   from DIR/<release>/ exactly (never misbehaves: the genuine bytes)
 *   /install.sh           the install.sh of the newest `stable` release (the README's one-line install)
 * Only the file names of the release format are served (store.ts), and a request path with `..`, `%`
 * or a backslash is refused before anything is looked up. Files stream with their Content-Length.
 * `misbehave` makes the channel paths misbehave (misbehaviour.ts) for tests of the connector's refusals.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import * as v from "valibot";
import type { Logger } from "../../../src/log.ts";
import { Channel, KEYSET_FILE, MANIFEST_FILE, MANIFEST_SIGNATURE_FILE } from "../../../src/upgrade/format.ts";
import type { FakeKey } from "../../support/release-fixture.ts";
import { CloudApiError, notFound } from "../errors.ts";
import { sendError } from "../http-io.ts";
import { openRegular, sendBytes, sendFile } from "./bodies.ts";
import { isBodyMode, loadReleaseKey, Misbehaviour, type MisbehaviourMode } from "./misbehaviour.ts";
import { isServedName, ReleaseStore, targetOf, type ReleaseDir } from "./store.ts";

export interface ReleaseServerOptions {
  /** The releases directory (DIR itself and its direct subdirectories are releases). */
  readonly dir: string;
  /** A `bun run keygen` directory holding release.key, for the modes that re-sign with it. */
  readonly signingKeysDir?: string | undefined;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface ReleasesDescription {
  readonly baseUrl: string;
  readonly releases: { name: string | null; channel: string; sequence: number }[];
  /** Mode per channel; "*" is every channel without its own. */
  readonly misbehaviour: Record<string, MisbehaviourMode>;
}

export interface ReleaseServer {
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly baseUrl: string;
  /** The channels DIR held when the server started. */
  readonly channelsAtStart: readonly string[];
  /** `/<channel>/manifest.json` of this server. */
  manifestUrl(channel: string): string;
  /** Sets `mode` for `channel`, or for every channel (clearing per-channel modes) when it is undefined. */
  misbehave(mode: MisbehaviourMode, channel?: string): void;
  describe(): ReleasesDescription;
  stop(): Promise<void>;
}

/** The channel `GET /install.sh` takes its installer from: the installer's own default channel. */
const DEFAULT_CHANNEL = "stable";
const INSTALLER_FILE = "install.sh";

const contentTypeOf = (name: string) =>
  name.endsWith(".json")
    ? "application/json"
    : name.endsWith(".sh")
      ? "text/x-shellscript"
      : "application/octet-stream";

export async function startReleaseServer(options: ReleaseServerOptions): Promise<ReleaseServer> {
  const store = new ReleaseStore(options.dir);
  const now = options.now ?? Date.now;
  const releaseKey: FakeKey | undefined =
    options.signingKeysDir === undefined ? undefined : loadReleaseKey(options.signingKeysDir);
  const modes = new Map<string, Misbehaviour>();

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    try {
      route(req, res);
    } catch (err) {
      if (!(err instanceof CloudApiError)) options.log.error(`release server: ${req.method} ${req.url} failed`, err);
      sendError(res, err);
    }
  };

  const route = (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? "/";
    if (raw.includes("..") || raw.includes("%") || raw.includes("\\"))
      throw new CloudApiError(400, "BAD_REQUEST", "no .., % or \\ in a release path");
    if (req.method !== "GET" && req.method !== "HEAD")
      throw new CloudApiError(405, "BAD_REQUEST", "releases are read with GET or HEAD");
    const segments = raw.split("?")[0]!.split("/").slice(1);
    if (segments.length === 3 && segments[0] === "r") {
      const release = store.byName(segments[1]!);
      if (!release) throw notFound(`no release ${segments[1]}`);
      return serveFile(req, res, release, segments[2]!, undefined);
    }
    // The README's install line fetches `<base>/install.sh`, so the host root names the default
    // channel's installer. Never misbehaving: the modes attack what the installer verifies, and the
    // installer cannot verify itself.
    if (segments.length === 1 && segments[0] === INSTALLER_FILE) {
      const release = store.newest(DEFAULT_CHANNEL);
      if (!release) throw notFound(`no release of channel ${DEFAULT_CHANNEL}`);
      return serveFile(req, res, release, INSTALLER_FILE, undefined);
    }
    if (segments.length === 2 && v.is(Channel, segments[0])) {
      const release = store.newest(segments[0]!);
      if (!release) throw notFound(`no release of channel ${segments[0]}`);
      return serveFile(req, res, release, segments[1]!, modes.get(release.channel) ?? modes.get("*"));
    }
    throw notFound("release paths are /install.sh, /<channel>/<file> and /r/<release>/<file>");
  };

  const serveFile = (
    req: IncomingMessage,
    res: ServerResponse,
    release: ReleaseDir,
    name: string,
    misbehaviour: Misbehaviour | undefined,
  ) => {
    if (!isServedName(name)) throw notFound(`${name} is not a release file`);
    const type = contentTypeOf(name);
    const forged = misbehaviour?.forge(release);
    if (forged && name === MANIFEST_FILE) return sendBytes(req, res, forged.manifest, type);
    if (forged && name === MANIFEST_SIGNATURE_FILE) return sendBytes(req, res, forged.manifestSignature, type);
    if (forged?.keyset !== undefined && name === KEYSET_FILE) return sendBytes(req, res, forged.keyset, type);
    const forgedKeysetSignature = forged?.keysetSignatures?.get(name);
    if (forgedKeysetSignature) return sendBytes(req, res, forgedKeysetSignature, type);
    // The manifest as it was read to choose this release, so the choice and the bytes agree.
    if (name === MANIFEST_FILE) return sendBytes(req, res, release.manifestText, type);
    const file = openRegular(join(release.path, name));
    if (!file) throw notFound(`release ${release.name ?? "(top)"} has no ${name}`);
    const mode = misbehaviour && isBodyMode(misbehaviour.mode) && targetOf(name) ? misbehaviour.mode : undefined;
    if (mode) options.log.info(`release server: ${name} of channel ${release.channel} sent as ${mode}`);
    sendFile(req, res, file, type, mode);
  };

  const server = createServer(serve);
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const channelsAtStart = store.channels();

  return {
    baseUrl,
    channelsAtStart,
    manifestUrl: (channel) => `${baseUrl}/${channel}/${MANIFEST_FILE}`,
    misbehave(mode, channel) {
      const misbehaviour = new Misbehaviour(mode, releaseKey, now);
      if (channel === undefined) modes.clear();
      if (channel === undefined && mode === "none") return;
      modes.set(channel ?? "*", misbehaviour);
    },
    describe: () => ({
      baseUrl,
      releases: store.list().map((r) => ({ name: r.name ?? null, channel: r.channel, sequence: r.sequence })),
      misbehaviour: Object.fromEntries([...modes].map(([channel, m]) => [channel, m.mode])),
    }),
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
