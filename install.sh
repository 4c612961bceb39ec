#!/usr/bin/env bash
# connector installer.
#
#   curl -fsSL https://<release-host>/install.sh | sudo bash -s -- --key <PROVISIONING_KEY>
#
# The installer (host detection, signed-manifest verification, systemd units, enrollment) ships with
# its own release. Until then this script refuses to do anything rather than half-install a host.
# Wrapped in main() so that a truncated download cannot run a partial script.
set -euo pipefail

# >>> baked values: `bun run release` rewrites the lines between these markers; edit nothing else here.
# The root public keys (Ed25519 SPKI PEM) a release-keys.json must be signed by, and the release host.
RELEASE_BASE_URL=""
RELEASE_CHANNEL=""
ROOT_PUBLIC_KEYS=$(cat <<'ROOTS'
ROOTS
)
# <<< baked values

main() {
  # The verifying installer will read these; name them so they are part of the script's contract.
  : "${RELEASE_BASE_URL}" "${RELEASE_CHANNEL}" "${ROOT_PUBLIC_KEYS}"
  cat >&2 <<'MSG'
connector install.sh: the one-line installer is not available in this release yet.
Nothing was changed on this host.

Install by hand meanwhile:
  1. build or download the binary for this machine (npm ci && npm run build -- --host -> dist/connector)
  2. connector enroll --key '<PROVISIONING_KEY>' --state-dir /var/lib/connector
  3. connector run --state-dir /var/lib/connector   (see docs/OPERATIONS.md)
MSG
  exit 1
}

main "$@"
