/** Flags every subcommand accepts. Values are validated by `resolveSettings`, not here. */
export const globalArgs = {
  "state-dir": { type: "string", description: "State directory (env CONNECTOR_STATE_DIR)", valueHint: "DIR" },
  "log-level": {
    type: "string",
    description: "silent|error|warn|info|debug|trace (env CONNECTOR_LOG_LEVEL)",
    valueHint: "LEVEL",
  },
  "log-format": {
    type: "string",
    description: "pretty|json; default pretty on a TTY, json otherwise (env CONNECTOR_LOG_FORMAT)",
    valueHint: "FORMAT",
  },
  "env-file": {
    type: "string",
    description: "Settings file (default /etc/connector/connector.env, env CONNECTOR_ENV_FILE)",
    valueHint: "PATH",
  },
} as const;

export const proxyArgs = {
  proxy: {
    type: "string",
    description: "HTTP proxy for outbound connections, http://[user:pass@]host:port (env HTTPS_PROXY)",
    valueHint: "URL",
  },
  // Spelled --proxy-bypass because citty reads "--no-X" as "X is false"; main.ts accepts --no-proxy too.
  "proxy-bypass": {
    type: "string",
    description: "Destinations that bypass the proxy: IPs, CIDRs, domains, *.suffix (--no-proxy, env NO_PROXY)",
    valueHint: "LIST",
  },
} as const;
