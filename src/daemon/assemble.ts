/**
 * `connector run` assembled: the production collaborators of `Daemon` (the system clock, the process's
 * signals, real control-plane clients, the admin socket and metrics listeners, TLS tunnels, systemd),
 * so src/cli/run.ts only parses and calls `runDaemon`.
 */
import { systemClock } from "../clock.ts";
import { ControlClient } from "../control/client.ts";
import { systemdNotifier } from "../host/sd-notify.ts";
import { renewIdentity } from "../identity/renew.ts";
import { startHealthServer, startMetricsServer } from "../status/metrics-server.ts";
import { connectTunnel } from "../supervisor/connection.ts";
import { buildInfo } from "../version.ts";
import { startAdminServer } from "./admin-server.ts";
import { Daemon } from "./daemon.ts";
import type { DaemonDeps, DaemonOptions } from "./daemon-deps.ts";
import { obtainIdentity } from "./identity-source.ts";
import { processEvents } from "./process-events.ts";
import { lockStateDir } from "./state-dir-lock.ts";
import { ignoredBypassWarning } from "../netaddr/proxy-bypass.ts";

export function productionDeps(options: DaemonOptions): DaemonDeps {
  const { settings, env, log } = options;
  const clock = systemClock;
  return {
    clock,
    random: Math.random,
    signals: processEvents(),
    controlClient: (identity) =>
      new ControlClient({
        controlUrl: identity.controlUrl,
        proxy: settings.proxy,
        noProxy: settings.noProxy,
        caCertificate: identity.caCertificate,
        clientCertificate: {
          certificate: identity.certificate,
          chain: identity.chain,
          privateKeyPem: identity.privateKeyPem,
        },
      }),
    servers: {
      admin: startAdminServer,
      metrics: (listen, snapshot) => startMetricsServer(listen, snapshot, buildInfo),
      health: startHealthServer,
    },
    connectTunnel,
    notifier: systemdNotifier(env),
    lockStateDir: (signal) => lockStateDir({ stateDir: settings.stateDir, log, clock, signal }),
    obtainIdentity: (signal) =>
      obtainIdentity({
        stateDir: settings.stateDir,
        env,
        name: settings.name,
        proxy: settings.proxy,
        noProxy: settings.noProxy,
        log,
        clock,
        signal,
      }),
    renewIdentity: (current) =>
      renewIdentity(current, {
        stateDir: settings.stateDir,
        proxy: settings.proxy,
        noProxy: settings.noProxy,
        log: log.withTag("identity"),
      }),
    installedBinary: process.execPath,
    pid: process.pid,
  };
}

/** Runs the daemon until it stops; resolves with the process exit code. */
export function runDaemon(options: DaemonOptions): Promise<number> {
  const bypass = ignoredBypassWarning(options.settings.noProxy);
  if (bypass) options.log.warn(bypass.message, { ignored: bypass.ignored });
  return new Daemon(options, productionDeps(options)).run();
}
