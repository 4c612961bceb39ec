/**
 * The test-only admin API of the reference cloud: plain HTTP on 127.0.0.1, no authentication. It stands
 * in for a real cloud's console so tests can make keys, revoke things and change the catalog.
 * Never expose it beyond loopback. Endpoints are listed in test/cloud/README.md.
 */
import * as v from "valibot";
import { AppSchema } from "../../src/control/api.ts";
import type { Logger } from "../../src/log.ts";
import type { CatalogStore } from "./catalog.ts";
import { IDLE_TIMEOUT_MS, MAX_BODY_BYTES } from "./config.ts";
import { CloudApiError, badRequest, notFound } from "./errors.ts";
import { MAX_REFUSED_VERSIONS, MAX_STOP_GRACE_MS } from "./gateway/config.ts";
import type { GatewayAdmin, GatewaySummary } from "./gateway/admin-types.ts";
import type { KeyStore } from "./keys.ts";
import type { ConnectorRegistry } from "./registry.ts";
import type { UpgradeReports } from "./upgrade-reports.ts";
import { MISBEHAVIOUR_MODES } from "./releases/misbehaviour.ts";
import type { ReleaseServer } from "./releases/server.ts";
import { Channel, Version } from "../../src/upgrade/format.ts";

export interface AdminDeps {
  readonly keys: KeyStore;
  readonly registry: ConnectorRegistry;
  readonly catalog: CatalogStore;
  readonly log: Logger;
  /** The gateways' admin interface; without it the /admin/gateways endpoints answer 404. */
  readonly gateways?: GatewayAdmin | undefined;
  /** What connectors reported with POST /v1/upgrade-report. */
  readonly upgradeReports?: UpgradeReports | undefined;
  /** The release server; without it the /admin/releases endpoints answer 404. */
  readonly releases?: ReleaseServer | undefined;
}

export interface AdminServer {
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly url: string;
  stop(): Promise<void>;
}

const Group = v.pipe(v.string(), v.minLength(1), v.maxLength(128));

const CreateKeyBody = v.object({
  group: v.optional(Group),
  maxUses: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  expiresAt: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => !Number.isNaN(Date.parse(s)), "expected a date"),
    ),
  ),
});

const PutAppBody = v.object({
  destinations: AppSchema.entries.destinations,
  servers: AppSchema.entries.servers,
  group: v.optional(Group),
});

const RevokeConnectorBody = v.object({
  /** false: gateways are not told, so open tunnels last until their access tokens expire. Default true. */
  notifyGateways: v.optional(v.boolean()),
});

const StopGatewayBody = v.object({
  graceMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_STOP_GRACE_MS))),
});

const RefuseVersionBody = v.object({ version: Version });
const AllowVersionBody = v.object({ version: v.optional(Version) });

const MisbehaveBody = v.object({ mode: v.picklist(MISBEHAVIOUR_MODES), channel: v.optional(Channel) });

async function parseBody<S extends v.GenericSchema>(req: Request, schema: S): Promise<v.InferOutput<S>> {
  let json: unknown;
  try {
    json = req.body === null ? {} : JSON.parse((await req.text()) || "{}");
  } catch {
    throw badRequest("the request body is not JSON");
  }
  const result = v.safeParse(schema, json);
  if (!result.success) throw badRequest(v.summarize(result.issues));
  return result.output;
}

function appName(name: string): string {
  if (!v.is(AppSchema.entries.name, name)) throw badRequest("app names are 1 to 128 characters");
  return name;
}

const noContent = () => new Response(null, { status: 204 });

/** Wraps a handler so a CloudApiError becomes the usual error body. */
function guarded<R extends Request>(log: Logger, handler: (req: R) => Promise<Response> | Response) {
  return async (req: R): Promise<Response> => {
    try {
      return await handler(req);
    } catch (err) {
      const apiError = err instanceof CloudApiError ? err : new CloudApiError(500, "INTERNAL", "internal error");
      if (!(err instanceof CloudApiError)) log.error("admin request failed", err);
      return Response.json(apiError.toBody(), { status: apiError.status });
    }
  };
}

export function startAdmin(deps: AdminDeps): AdminServer {
  const { keys, registry, catalog, log } = deps;
  const gatewayAdmin = (): GatewayAdmin => {
    if (!deps.gateways) throw notFound("this cloud's gateways have no admin interface");
    return deps.gateways;
  };
  const releases = (): ReleaseServer => {
    if (!deps.releases) throw notFound("this cloud serves no releases (start it with --releases DIR)");
    return deps.releases;
  };
  const applyRefused = async (admin: GatewayAdmin, versions: string[]) => {
    try {
      await admin.setRefusedVersions(versions);
    } catch (err) {
      throw new CloudApiError(500, "INTERNAL", err instanceof Error ? err.message : String(err));
    }
  };
  /** Runs a restart or stop; an unknown id is 404, a gateway that fails to start is 500 with the reason. */
  const gatewayOperation = async (
    id: string,
    what: string,
    run: (admin: GatewayAdmin) => Promise<GatewaySummary | undefined>,
  ) => {
    const admin = gatewayAdmin();
    let summary: GatewaySummary | undefined;
    try {
      summary = await run(admin);
    } catch (err) {
      throw new CloudApiError(
        500,
        "INTERNAL",
        `gateway ${id} could not be ${what}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!summary) throw notFound(`no gateway ${id}`);
    log.info(`gateway ${id} ${what}`);
    return Response.json(summary);
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: MAX_BODY_BYTES,
    idleTimeout: IDLE_TIMEOUT_MS / 1000,
    routes: {
      "/admin/keys": {
        GET: () => Response.json(keys.list()),
        POST: guarded(log, async (req) => {
          const body = await parseBody(req, CreateKeyBody);
          const created = keys.createKey({
            ...(body.group === undefined ? {} : { group: body.group }),
            ...(body.maxUses === undefined ? {} : { maxUses: body.maxUses }),
            ...(body.expiresAt === undefined ? {} : { expiresAt: new Date(body.expiresAt) }),
          });
          return Response.json({ ...keys.get(created.id), key: created.key }, { status: 201 });
        }),
      },
      "/admin/keys/:id/revoke": {
        POST: guarded(log, (req) => {
          if (!keys.revoke(req.params.id)) throw notFound(`no provisioning key ${req.params.id}`);
          return noContent();
        }),
      },
      "/admin/connectors": { GET: () => Response.json(registry.list()) },
      "/admin/connectors/:id/revoke": {
        POST: guarded(log, async (req) => {
          const { notifyGateways } = await parseBody(req, RevokeConnectorBody);
          if (!registry.revoke(req.params.id, { notify: notifyGateways !== false }))
            throw notFound(`no connector ${req.params.id}`);
          log.info(`connector ${req.params.id} revoked${notifyGateways === false ? " (gateways not told)" : ""}`);
          return noContent();
        }),
      },
      "/admin/apps/:name": {
        PUT: guarded(log, async (req) => {
          const name = appName(req.params.name);
          const body = await parseBody(req, PutAppBody);
          const version = catalog.put({ name, ...body });
          const listen = (await deps.gateways?.waitListenAddress(name)) ?? null;
          return Response.json({ name, group: catalog.groupOf(name), version, listen });
        }),
        DELETE: guarded(log, (req) => {
          if (!catalog.delete(req.params.name)) throw notFound(`no app ${req.params.name}`);
          return noContent();
        }),
      },
      "/admin/gateways": { GET: guarded(log, async () => Response.json(await gatewayAdmin().describe())) },
      "/admin/gateways/:id/restart": {
        POST: guarded(log, (req) =>
          gatewayOperation(req.params.id, "restarted", (admin) => admin.restart(req.params.id)),
        ),
      },
      "/admin/gateways/:id/stop": {
        POST: guarded(log, async (req) => {
          const { graceMs } = await parseBody(req, StopGatewayBody);
          return gatewayOperation(req.params.id, "stopped", (admin) => admin.stop(req.params.id, graceMs));
        }),
      },
      "/admin/upgrade-reports": {
        GET: (req) =>
          Response.json(deps.upgradeReports?.list(new URL(req.url).searchParams.get("connector") ?? undefined) ?? []),
      },
      "/admin/refuse-version": {
        GET: guarded(log, () => Response.json({ refused: gatewayAdmin().refusedVersions })),
        POST: guarded(log, async (req) => {
          const { version } = await parseBody(req, RefuseVersionBody);
          const admin = gatewayAdmin();
          if (admin.refusedVersions.length >= MAX_REFUSED_VERSIONS && !admin.refusedVersions.includes(version)) {
            throw new CloudApiError(
              409,
              "BAD_REQUEST",
              `at most ${MAX_REFUSED_VERSIONS} versions can be refused at a time`,
            );
          }
          await applyRefused(admin, [...admin.refusedVersions, version]);
          log.info(`gateways refuse tunnels of connector version ${version}`);
          return Response.json({ refused: admin.refusedVersions });
        }),
        DELETE: guarded(log, async (req) => {
          const { version } = await parseBody(req, AllowVersionBody);
          const admin = gatewayAdmin();
          await applyRefused(admin, version === undefined ? [] : admin.refusedVersions.filter((x) => x !== version));
          log.info(
            `gateways accept tunnels of ${version === undefined ? "every connector version" : `connector version ${version}`} again`,
          );
          return Response.json({ refused: admin.refusedVersions });
        }),
      },
      "/admin/releases": { GET: guarded(log, () => Response.json(releases().describe())) },
      "/admin/releases/misbehave": {
        POST: guarded(log, async (req) => {
          const server = releases();
          const { mode, channel } = await parseBody(req, MisbehaveBody);
          server.misbehave(mode, channel);
          log.info(`releases of ${channel === undefined ? "every channel" : `channel ${channel}`} now: ${mode}`);
          return Response.json(server.describe().misbehaviour);
        }),
      },
    },
    fetch: () => Response.json(notFound("no such admin endpoint (see test/cloud/README.md)").toBody(), { status: 404 }),
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}
