/**
 * Command-line parsing of test/cloud/main.ts (a stable contract, test/cloud/README.md):
 *
 *   bun test/cloud/main.ts --dir DIR [--gateways N] [--app NAME=HOST:PORT[,HOST:PORT…]]… [--key-uses N]
 *                          [--cert-ttl SECONDS] [--key-expires-in SECONDS] [--token-ttl SECONDS]
 *                          [--releases DIR [--release-signing-keys KEYDIR]] [--extra-gateway URL]…
 *
 * Each --app becomes a catalog app (group "default") whose servers are the given host:ports and whose
 * allowed destinations are exactly those host and port pairs. Each --extra-gateway is a gateway the
 * cloud does not run (test/interop's independent gateway): listed to connectors, given a server
 * certificate in cloud.json; with one, --gateways may be 0.
 */
import { parseArgs } from "node:util";
import * as v from "valibot";
import { AppSchema } from "../../src/control/api.ts";
import { UsageError } from "../../src/errors.ts";
import type { AppSpec } from "./catalog.ts";
import type { CloudOptions } from "./cloud.ts";

export const USAGE = `usage: bun test/cloud/main.ts --dir DIR [--gateways N] [--app NAME=HOST:PORT[,HOST:PORT...]]...
                           [--key-uses N] [--cert-ttl SECONDS] [--key-expires-in SECONDS] [--token-ttl SECONDS]
                           [--releases DIR [--release-signing-keys KEYDIR]] [--extra-gateway wss://HOST:PORT/PATH]...`;

export interface CloudCli extends CloudOptions {
  /** Where cloud.json is written. */
  readonly dir: string;
  readonly help: boolean;
}

function integer(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${flag} must be a whole number${min > 0 ? ` of at least ${min}` : ""}, not "${text}"`);
  }
  return value;
}

/** "host:port" or "[v6]:port" -> host (without brackets) and port. */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (!host || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`"${text}" is not HOST:PORT (IPv6 as [ADDRESS]:PORT, port 1-65535)`);
  }
  return { host, port };
}

/** One --app value: NAME=HOST:PORT[,HOST:PORT…]. */
export function parseAppArg(text: string): AppSpec {
  const eq = text.indexOf("=");
  const name = eq < 0 ? "" : text.slice(0, eq);
  if (eq < 0 || !/^[A-Za-z0-9._-]{1,128}$/.test(name)) {
    throw new UsageError(`--app "${text}" must be NAME=HOST:PORT[,HOST:PORT...] with a name of letters, digits, . _ -`);
  }
  const targets = text
    .slice(eq + 1)
    .split(",")
    .map(parseHostPort);
  const app = {
    name,
    destinations: targets.map(({ host, port }) => ({ host, ports: String(port) })),
    servers: targets.map(({ host, port }) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)),
  };
  const checked = v.safeParse(AppSchema, app);
  if (!checked.success) throw new UsageError(`--app "${text}": ${v.summarize(checked.issues)}`);
  return { ...checked.output, group: "default" };
}

/** One --extra-gateway value: the wss:// URL connectors are told to dial. */
export function parseGatewayUrl(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "wss:" || url.port === "" || url.username !== "" || url.password !== "") {
    throw new UsageError(`--extra-gateway "${text}" must be wss://HOST:PORT/PATH (the port given)`);
  }
  return text;
}

function parseFlags(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        dir: { type: "string" },
        gateways: { type: "string" },
        app: { type: "string", multiple: true },
        "key-uses": { type: "string" },
        "cert-ttl": { type: "string" },
        "key-expires-in": { type: "string" },
        "token-ttl": { type: "string" },
        releases: { type: "string" },
        "release-signing-keys": { type: "string" },
        "extra-gateway": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function parseCloudArgs(argv: readonly string[]): CloudCli {
  const values = parseFlags(argv);
  if (values.help) return { dir: "", help: true };
  if (!values.dir) throw new UsageError("--dir DIR is required");
  const apps = (values.app ?? []).map(parseAppArg);
  const names = apps.map((a) => a.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new UsageError(`--app ${duplicate} is given twice`);
  if (values["release-signing-keys"] !== undefined && values.releases === undefined) {
    throw new UsageError("--release-signing-keys is only meaningful with --releases DIR");
  }
  const extraGateways = (values["extra-gateway"] ?? []).map(parseGatewayUrl);
  const optional = <K extends string, T>(key: K, value: T | undefined) =>
    value === undefined ? {} : ({ [key]: value } as Record<K, T>);
  return {
    dir: values.dir,
    help: false,
    apps,
    // Without a gateway of its own the cloud still needs one to list: an extra one.
    gateways: integer("gateways", values.gateways, extraGateways.length > 0 ? 0 : 1) ?? 1,
    ...(extraGateways.length > 0 ? { extraGateways } : {}),
    ...optional("keyUses", integer("key-uses", values["key-uses"], 1)),
    ...optional("certTtlSeconds", integer("cert-ttl", values["cert-ttl"], 1)),
    ...optional("keyExpiresInSeconds", integer("key-expires-in", values["key-expires-in"], 0)),
    ...optional("tokenTtlSeconds", integer("token-ttl", values["token-ttl"], 1)),
    ...optional("releases", values.releases),
    ...optional("releaseSigningKeys", values["release-signing-keys"]),
  };
}
