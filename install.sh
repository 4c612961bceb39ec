#!/usr/bin/env bash
# connector installer: downloads the release of a channel, verifies it with openssl against the root
# keys baked in below, installs the binary, its settings file and the systemd units, enrolls the host
# and starts the service.
#
#   curl -fsSL https://<release-host>/install.sh | sudo bash -s -- --key-file /root/connector.key
#
# Run with --help for every flag; docs/OPERATIONS.md "Install" explains them. Nothing is installed
# before every signature, hash and the new binary's own --version have been checked.
#
# The script is only functions; the last line calls main inside a brace group, so a download cut at
# any byte is an incomplete command that bash never runs.
set -euo pipefail

# >>> baked values: `bun run release` rewrites the lines between these markers; edit nothing else here.
# The root public keys (Ed25519 SPKI PEM) a release-keys.json must be signed by, and the release host.
RELEASE_BASE_URL=""
RELEASE_CHANNEL=""
ROOT_PUBLIC_KEYS=$(cat <<'ROOTS'
ROOTS
)
# <<< baked values

# >>> baked units: `bun run release` writes packaging/systemd/* here; edit those files, not this block.
unit_text() {
  return 1
}
# <<< baked units

constants() {
  readonly UNITS="connector.service connector-upgrade.path connector-upgrade.service"
  readonly TARGETS="linux-x64 linux-x64-baseline linux-arm64 linux-x64-musl linux-arm64-musl"
  # Caps on what is read before it is verified (docs/PROTOCOL.md section 7).
  readonly MAX_JSON_BYTES=65536
  readonly MAX_SIG_BYTES=1024
  readonly MAX_BINARY_BYTES=536870912
  # Host facts the service steps use, plain variables so that test/install/service-steps.test.ts can
  # point them elsewhere after sourcing the functions; nothing here reads the environment.
  STATE_DIR=/var/lib/connector
  BINARY=/usr/local/bin/connector
  SYSTEMD_RUNNING_DIR=/run/systemd/system
  # /run, not the world-writable /run/lock: another user could plant a symlink or hold the lock there.
  LOCK_FILE=/run/connector-install.lock
  # Where the enrollment key file goes: a root-owned directory, never the service user's state dir.
  KEY_DIR_BASE=/run
  STATUS_WAIT_SECONDS=90
  readonly VERSION_RE='^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
  readonly CHANNEL_RE='^[a-z0-9][a-z0-9-]{0,31}$'
}

# ---------------------------------------------------------------------------------------------------
# Messages and exits

say() { printf 'install.sh: %s\n' "$*" >&2; }

# die CODE MESSAGE: 1 other, 2 usage, 3 unsupported host, 4 verification refused, 5 download failed,
# 6 preflight failed, 7 enrollment failed, 8 service did not start.
die() {
  local code=$1
  shift
  say "$*"
  DIED=1
  exit "$code"
}

usage_error() { die 2 "$* (see --help)"; }

# Text from a subprocess, with the secrets this run holds replaced: they are never printed.
redact() {
  local text=$1
  if [[ -n ${KEY:-} ]]; then text=${text//"$KEY"/"<key>"}; fi
  if [[ -n ${PROXY_PASSWORD:-} ]]; then text=${text//"$PROXY_PASSWORD"/"<password>"}; fi
  if [[ -n ${PROXY:-} ]]; then text=${text//"$PROXY"/"<proxy>"}; fi
  printf '%s' "$text"
}

usage() {
  cat <<'USAGE'
usage: curl -fsSL <base>/install.sh | sudo bash -s -- [options]

Installs (or upgrades) the connector: /usr/local/bin/connector, /etc/connector/connector.env,
the systemd units, the system user "connector" and /var/lib/connector; enrolls and starts it.

  --key KEY          provisioning key (visible in the process list: prefer --key-file)
  --key-file FILE    read the provisioning key from FILE
  --proxy URL        HTTP proxy (http://[user:password@]host:port) for the install and the daemon
  --no-proxy LIST    hosts that bypass the proxy (comma-separated)
  --version V        install exactly version V (and pin the daemon to it)
  --channel C        release channel (default: the one this script was released for, else stable)
  --name NAME        connector name at enrollment (default: the hostname)
  --base-url URL     release host or mirror (default: the one this script was released for)
  --skip-preflight   install even when `connector preflight` reports a failure
  --root DIR         write the files under DIR only: no user, no enrollment, no systemctl
  --uninstall        stop and remove the service, binary, units and /etc/connector (keeps state)
  --purge            --uninstall, and also remove /var/lib/connector (the identity) and the user
  --help             this text

Environment: CONNECTOR_KEY, CONNECTOR_KEY_FILE, CONNECTOR_PROXY (else HTTPS_PROXY),
CONNECTOR_NO_PROXY (else NO_PROXY), CONNECTOR_VERSION, CONNECTOR_CHANNEL, CONNECTOR_NAME,
CONNECTOR_BASE_URL. Flags win over the environment.

Exit codes: 0 ok, 1 other failure, 2 usage, 3 unsupported host or no build for it, 4 verification
refused, 5 download failed, 6 preflight failed, 7 enrollment failed, 8 service did not start.
USAGE
}

# ---------------------------------------------------------------------------------------------------
# Arguments and environment

parse_args() {
  KEY="" KEY_FILE="" KEY_SOURCE="" PROXY="" PROXY_GIVEN="" NO_PROXY_LIST="" NO_PROXY_GIVEN=""
  WANT_VERSION="" CHANNEL="" CHANNEL_GIVEN="" NAME="" BASE_URL="" BASE_URL_GIVEN=""
  SKIP_PREFLIGHT="" ROOT="" ROOT_GIVEN="" UNINSTALL="" PURGE="" PROXY_PASSWORD=""
  local flag value has_value
  while (($# > 0)); do
    flag=$1 value="" has_value=""
    case $flag in
      --*=*) value=${flag#*=} flag=${flag%%=*} has_value=1 ;;
    esac
    case $flag in
      --key | --key-file | --proxy | --no-proxy | --version | --channel | --name | --base-url | --root)
        if [[ -z $has_value ]]; then
          (($# >= 2)) || usage_error "$flag needs a value"
          value=$2
          shift
        fi
        ;;
      --skip-preflight | --uninstall | --purge | --help | -h)
        [[ -z $has_value ]] || usage_error "$flag takes no value"
        ;;
      -*) usage_error "unknown argument \"$(printable "$flag")\"" ;;
      # Not echoed: a stray word is often a pasted key whose flag went missing.
      *) usage_error "an argument that is not a flag (not shown, it may be a key): values follow their flag, as in --key-file FILE" ;;
    esac
    shift
    case $flag in
      --key) KEY=$value KEY_SOURCE="--key" ;;
      --key-file) KEY_FILE=$value KEY_SOURCE="--key-file" ;;
      --proxy) PROXY=$value PROXY_GIVEN=1 ;;
      --no-proxy) NO_PROXY_LIST=$value NO_PROXY_GIVEN=1 ;;
      --version) WANT_VERSION=$value ;;
      --channel) CHANNEL=$value CHANNEL_GIVEN=1 ;;
      --name) NAME=$value ;;
      --base-url) BASE_URL=$value BASE_URL_GIVEN=1 ;;
      --root) ROOT=$value ROOT_GIVEN=1 ;;
      --skip-preflight) SKIP_PREFLIGHT=1 ;;
      --uninstall) UNINSTALL=1 ;;
      --purge) PURGE=1 UNINSTALL=1 ;;
      --help | -h) usage; exit 0 ;;
    esac
  done
  if [[ -n $KEY && -n $KEY_FILE ]]; then usage_error "give --key or --key-file, not both"; fi
  # The environment fills in what no flag gave.
  if [[ -z $KEY_SOURCE ]]; then
    if [[ -n ${CONNECTOR_KEY:-} ]]; then
      KEY=$CONNECTOR_KEY KEY_SOURCE=CONNECTOR_KEY
    elif [[ -n ${CONNECTOR_KEY_FILE:-} ]]; then
      KEY_FILE=$CONNECTOR_KEY_FILE KEY_SOURCE=CONNECTOR_KEY_FILE
    fi
  fi
  if [[ -z $PROXY_GIVEN ]]; then
    if [[ -n ${CONNECTOR_PROXY:-} ]]; then
      PROXY=$CONNECTOR_PROXY PROXY_GIVEN=1
    elif [[ -n ${HTTPS_PROXY:-} ]]; then
      PROXY=$HTTPS_PROXY PROXY_GIVEN=1
    fi
  fi
  if [[ -z $NO_PROXY_GIVEN ]]; then
    if [[ -n ${CONNECTOR_NO_PROXY:-} ]]; then
      NO_PROXY_LIST=$CONNECTOR_NO_PROXY NO_PROXY_GIVEN=1
    elif [[ -n ${NO_PROXY:-} ]]; then
      NO_PROXY_LIST=$NO_PROXY NO_PROXY_GIVEN=1
    fi
  fi
  [[ -n $WANT_VERSION ]] || WANT_VERSION=${CONNECTOR_VERSION:-}
  if [[ -z $CHANNEL_GIVEN && -n ${CONNECTOR_CHANNEL:-} ]]; then CHANNEL=$CONNECTOR_CHANNEL CHANNEL_GIVEN=1; fi
  [[ -n $NAME ]] || NAME=${CONNECTOR_NAME:-}
  if [[ -z $BASE_URL_GIVEN && -n ${CONNECTOR_BASE_URL:-} ]]; then BASE_URL=$CONNECTOR_BASE_URL BASE_URL_GIVEN=1; fi
  check_args
}

# A value safe to echo in an error: printable ASCII only, cut short (at 64 characters, or $2).
printable() {
  local text=${1:0:${2:-64}}
  printf '%s' "${text//[^[:print:]]/?}"
}

check_args() {
  if [[ -n $ROOT_GIVEN ]]; then
    [[ $ROOT == /* ]] || usage_error "--root needs an absolute path, got \"$(printable "$ROOT")\""
    [[ -d $ROOT ]] || usage_error "--root $(printable "$ROOT") is not an existing directory"
    # An identity must be made on the host that uses it: a key cannot be used for a file tree.
    if [[ -n $KEY_SOURCE ]]; then usage_error "$KEY_SOURCE cannot be used with --root: enroll on the host that runs the connector"; fi
    ROOT=${ROOT%/}
  fi
  if [[ -n $UNINSTALL ]]; then return 0; fi
  # A re-run (an upgrade) takes what it is not given from the settings an earlier run wrote, as the
  # daemon does: the same proxy, channel, release host and pinned version.
  local settings="$ROOT/etc/connector/connector.env" proxy_from="--proxy" manifest_url="" file_channel="" value
  PINNED=""
  if [[ -r $settings ]]; then
    if [[ -z $PROXY_GIVEN ]]; then
      PROXY=$(env_file_value "$settings" CONNECTOR_PROXY)
      proxy_from="CONNECTOR_PROXY in /etc/connector/connector.env"
    fi
    if [[ -z $NO_PROXY_GIVEN ]]; then NO_PROXY_LIST=$(env_file_value "$settings" CONNECTOR_NO_PROXY); fi
    file_channel=$(env_file_value "$settings" CONNECTOR_CHANNEL)
    if [[ -z $CHANNEL_GIVEN && -n $file_channel ]]; then CHANNEL=$file_channel; fi
    if [[ -z $WANT_VERSION ]]; then PINNED=$(env_file_value "$settings" CONNECTOR_PIN_VERSION); fi
    manifest_url=$(env_file_value "$settings" CONNECTOR_MANIFEST_URL)
  fi
  # A manifest URL of the release layout (<base>/<channel>/manifest.json) names the release host.
  file_channel=${file_channel:-${RELEASE_CHANNEL:-stable}}
  if [[ -z $BASE_URL_GIVEN && $manifest_url == */"$file_channel"/manifest.json ]]; then BASE_URL=${manifest_url%/"$file_channel"/manifest.json}; fi
  if [[ -n $PROXY ]]; then
    [[ $PROXY =~ ^http://[^[:space:]\'\"\\]+$ ]] || usage_error "$proxy_from must be an http:// URL such as http://proxy.example:3128"
    local authority=${PROXY#http://}
    authority=${authority%%/*}
    if [[ $authority == *@* ]]; then
      local userinfo=${authority%@*}
      [[ $userinfo != *:* ]] || PROXY_PASSWORD=${userinfo#*:}
    fi
  fi
  if [[ -n $NO_PROXY_LIST && ! $NO_PROXY_LIST =~ ^[][A-Za-z0-9.,:*_/\ -]+$ ]]; then
    usage_error "--no-proxy must be a comma-separated list of hosts, domains and addresses"
  fi
  if [[ -n $WANT_VERSION && ! $WANT_VERSION =~ $VERSION_RE ]]; then
    usage_error "--version must be a version such as 1.4.2, got \"$(printable "$WANT_VERSION")\""
  fi
  if [[ -n $NAME && ( ${#NAME} -gt 63 || $NAME =~ [^[:print:]] ) ]]; then
    usage_error "--name must be at most 63 printable characters"
  fi
  if [[ -n $PINNED && ! $PINNED =~ $VERSION_RE ]]; then
    usage_error "CONNECTOR_PIN_VERSION in /etc/connector/connector.env is not a version such as 1.4.2"
  fi
  [[ -n $CHANNEL ]] || CHANNEL=${RELEASE_CHANNEL:-stable}
  [[ $CHANNEL =~ $CHANNEL_RE ]] || usage_error "--channel must be lowercase letters, digits and -, got \"$(printable "$CHANNEL")\""
  [[ -n $BASE_URL ]] || BASE_URL=$RELEASE_BASE_URL
  [[ -n $BASE_URL ]] || usage_error "no release host: this install.sh names none, give --base-url URL (or CONNECTOR_BASE_URL)"
  BASE_URL=${BASE_URL%/}
  [[ $BASE_URL =~ ^https?://[^[:space:]\'\"\\]+$ ]] || usage_error "--base-url must be an http:// or https:// URL, got \"$(printable "$BASE_URL")\""
}

# The last value of NAME in a settings file (KEY=value, optional "export " and quotes), or nothing.
env_file_value() {
  local file=$1 name=$2 line value=""
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line#"${line%%[![:space:]]*}"}
    line=${line#export }
    if [[ $line =~ ^${name}[[:space:]]*=[[:space:]]*(.*)$ ]]; then value=${BASH_REMATCH[1]}; fi
  done <"$file"
  value=${value%"${value##*[![:space:]]}"}
  if [[ ${#value} -ge 2 && ( ${value:0:1} == '"' || ${value:0:1} == "'" ) && ${value: -1} == "${value:0:1}" ]]; then value=${value:1:${#value}-2}; fi
  printf '%s' "$value"
}

# ---------------------------------------------------------------------------------------------------
# Host

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die 1 "$tool is required and not installed: install it (package $tool) and run again"
  done
}

# The build for this machine; exit 3 when there is none.
detect_target() {
  local os arch libc="" ldd_says=""
  os=$(uname -s)
  arch=$(uname -m)
  [[ $os == Linux ]] || die 3 "this host runs $(printable "$os"): the connector runs on Linux only"
  # musl's ldd exits 1 for --version: its words count, not its status.
  if command -v ldd >/dev/null 2>&1; then ldd_says=$(ldd --version 2>&1 </dev/null || true); fi
  # ldd speaks for the system's C library; a musl loader alone is not enough (Debian's and Ubuntu's
  # "musl" package installs one beside glibc). Without ldd, the loader is all there is to go by.
  if [[ $ldd_says == *musl* ]]; then
    libc="-musl"
  elif [[ $ldd_says != *GNU* && $ldd_says != *GLIBC* ]] && compgen -G "/lib/ld-musl-*" >/dev/null; then
    libc="-musl"
  fi
  case $arch in
    x86_64 | amd64)
      if [[ -n $libc ]]; then
        TARGET=linux-x64-musl
      elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
        TARGET=linux-x64
      else
        TARGET=linux-x64-baseline
      fi
      ;;
    aarch64 | arm64) TARGET=linux-arm64$libc ;;
    *) die 3 "this host's architecture $(printable "$arch") has no connector build (builds: $TARGETS)" ;;
  esac
}

# ---------------------------------------------------------------------------------------------------
# Downloads

# fetch NAME MAX OUT [optional]: <base>/<channel>/NAME into OUT, at most MAX bytes; FETCHED=1 when it
# did. With "optional", an HTTP error (404) leaves FETCHED empty instead of exiting; any other failure
# exits 5. More than MAX: exit 4. Not to be called in a condition (`set -e` would not apply inside).
fetch() {
  FETCHED=""
  local name=$1 max=$2 out=$3 optional=${4:-} url="$BASE_URL/$CHANNEL/$1" seconds=60 status=0 size
  if ((max > MAX_JSON_BYTES)); then seconds=1800; fi
  # -q first: no ~/.curlrc of whoever runs sudo changes how the release is fetched.
  local -a args=(-q --fail --silent --show-error --location --max-redirs 5 --proto "=http,https" --proto-redir "=http,https"
    --connect-timeout 20 --max-time "$seconds" --speed-limit 1024 --speed-time 60 --max-filesize "$max")
  # The proxy goes to curl through its environment, never its argv (other users can read argv).
  # --max-filesize only works when the size is announced: head cuts a longer body one byte past it.
  local curl_status=0
  # Through a proxy, always CONNECT (as the daemon does), also for an http:// release host.
  if [[ -z $PROXY ]]; then args+=(--noproxy '*'); else args+=(--proxytunnel); fi
  if https_proxy=$PROXY http_proxy=$PROXY no_proxy=$NO_PROXY_LIST curl "${args[@]}" "$url" </dev/null 2>"$WORK/curl.err" | head -c "$((max + 1))" >"$out"; then
    status=0
  else
    status=1 curl_status=${PIPESTATUS[0]}
  fi
  size=$(wc -c <"$out")
  if ((size > max)) || ((curl_status == 63)); then die 4 "$name is larger than $max bytes: refused"; fi
  if ((status != 0)); then
    if [[ -n $optional && $curl_status == 22 ]]; then return 0; fi
    local why
    why=$(redact "$(head -c 300 "$WORK/curl.err" | tr -d '\r' | tr '\n' ' ')")
    die 5 "download of $url failed (curl exit $curl_status: ${why% })"
  fi
  FETCHED=1
}

# ---------------------------------------------------------------------------------------------------
# Verification: openssl only, in the private temp dir, before anything is installed.

# The value of a top-level "field": "string" in a JSON file flattened to one line (signed text only).
json_string() {
  local file=$1 field=$2 match
  match=$(tr -d '\n\r' <"$file" | grep -oE "\"$field\"[[:space:]]*:[[:space:]]*\"[^\"\\\\]*\"" | head -n 1) || true
  [[ -n $match ]] || return 1
  match=${match%\"}
  printf '%s' "${match##*\"}"
}

json_number() {
  local file=$1 field=$2 match
  match=$(tr -d '\n\r' <"$file" | grep -oE "\"$field\"[[:space:]]*:[[:space:]]*[0-9]+" | head -n 1) || true
  [[ -n $match ]] || return 1
  printf '%s' "${match##*[!0-9]}"
}

# "YYYY-MM-DDTHH:MM:SS[.fff]Z" in the past (or now) relative to this host's clock: expired.
expired() {
  local ts=$1 stamp now
  [[ $ts =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]] || return 0
  # YYYYMMDDHHMMSS as numbers: no locale collation, no date(1) parsing differences (busybox).
  stamp=${ts:0:19}
  stamp=${stamp//[^0-9]/}
  now=$(date -u +%Y%m%d%H%M%S)
  ((10#$stamp <= 10#$now))
}

pem_of_spki() {
  printf -- '-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n' "$1"
}

# openssl's verdict on an Ed25519 signature: pkeyutl -rawin signs the message itself, as the release tool does.
signature_ok() {
  local pem=$1 data=$2 sig=$3
  [[ $(wc -c <"$sig") -eq 64 ]] || return 1
  openssl pkeyutl -verify -pubin -inkey "$pem" -rawin -in "$data" -sigfile "$sig" </dev/null >/dev/null 2>&1
}

key_id_of_pem() {
  openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | sha256sum | cut -c1-16
}

# The baked roots, one PEM each in $WORK/roots/<id>.pem; distinct by id.
split_roots() {
  local line pem="" n=0 id
  mkdir -m 0700 "$WORK/roots"
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    pem+="$line"$'\n'
    if [[ $line == "-----END PUBLIC KEY-----" ]]; then
      n=$((n + 1))
      printf '%s' "$pem" >"$WORK/roots/candidate-$n"
      pem=""
      id=$(key_id_of_pem "$WORK/roots/candidate-$n") || id=""
      if [[ ${#id} -eq 16 ]]; then mv -f "$WORK/roots/candidate-$n" "$WORK/roots/$id.pem"; else rm -f "$WORK/roots/candidate-$n"; fi
    fi
  done <<<"$ROOT_PUBLIC_KEYS"
  local count
  count=$(find "$WORK/roots" -name '*.pem' | wc -l)
  ((count >= 2)) || die 1 "this install.sh carries $count release root key(s), fewer than the 2 a release needs: use the install.sh published with a release"
}

verify_release() {
  local rel="$WORK/release"
  mkdir -m 0700 "$rel"
  split_roots
  fetch manifest.json "$MAX_JSON_BYTES" "$rel/manifest.json"
  fetch manifest.json.sig "$MAX_SIG_BYTES" "$rel/manifest.json.sig"
  fetch release-keys.json "$MAX_JSON_BYTES" "$rel/release-keys.json"

  # 1. Two distinct baked roots must have signed the exact bytes of the key set.
  local pem id vouches=0
  for pem in "$WORK"/roots/*.pem; do
    id=$(basename "$pem" .pem)
    fetch "release-keys.json.$id.sig" "$MAX_SIG_BYTES" "$rel/keys.$id.sig" optional
    if [[ -n $FETCHED ]] && signature_ok "$pem" "$rel/release-keys.json" "$rel/keys.$id.sig"; then
      vouches=$((vouches + 1))
    fi
  done
  ((vouches >= 2)) || die 4 "the release-key set carries $vouches valid signature(s) by the release roots; 2 are needed: refused (is $BASE_URL an official release host?)"

  # 2. The key set is signed content from here on.
  local keys_expire keys_product
  keys_product=$(json_string "$rel/release-keys.json" product) || keys_product=""
  [[ $keys_product == connector ]] || die 4 "the release-key set is not the connector's: refused"
  keys_expire=$(json_string "$rel/release-keys.json" expires) || die 4 "the release-key set names no expiry: refused"
  if expired "$keys_expire"; then die 4 "the release-key set expired at $(printable "$keys_expire") (this host's time is $(date -u +%Y-%m-%dT%H:%M:%SZ)): refused; check the clock"; fi

  # 3. The manifest's keyId is read before its signature is checked only to pick the key.
  local key_id obj spki=""
  key_id=$(json_string "$rel/manifest.json" keyId) || die 4 "the manifest names no signing key: refused"
  [[ $key_id =~ ^[0-9a-f]{16}$ ]] || die 4 "the manifest names no valid signing key id: refused"
  while IFS= read -r obj; do
    if [[ $obj =~ \"id\"[[:space:]]*:[[:space:]]*\"$key_id\" && $obj =~ \"publicKey\"[[:space:]]*:[[:space:]]*\"([A-Za-z0-9+/=]+)\" ]]; then
      spki=${BASH_REMATCH[1]}
    fi
  done < <(tr -d '\n\r' <"$rel/release-keys.json" | grep -oE '\{[^{}]*\}' || true)
  [[ -n $spki ]] || die 4 "the manifest is signed by key $key_id, which the release-key set does not list: refused"
  pem_of_spki "$spki" >"$rel/release-key.pem"
  [[ $(key_id_of_pem "$rel/release-key.pem") == "$key_id" ]] || die 4 "the release-key set lists key $key_id with a public key of another id: refused"
  signature_ok "$rel/release-key.pem" "$rel/manifest.json" "$rel/manifest.json.sig" ||
    die 4 "the manifest's signature by key $key_id does not match its bytes: refused (altered after signing?)"

  # 4. Signed fields.
  local m="$rel/manifest.json" product channel expires
  product=$(json_string "$m" product) || product=""
  [[ $product == connector && $(json_number "$m" schema || true) == 1 ]] || die 4 "the manifest is not a connector release of schema 1: refused"
  channel=$(json_string "$m" channel) || channel=""
  [[ $channel == "$CHANNEL" ]] || die 4 "the manifest is for channel \"$(printable "$channel")\", not \"$CHANNEL\": refused"
  expires=$(json_string "$m" expires) || expires=""
  if expired "$expires"; then die 4 "the manifest expired at $(printable "$expires") (this host's time is $(date -u +%Y-%m-%dT%H:%M:%SZ)): refused; check the clock and the release host"; fi
  VERSION=$(json_string "$m" version) || VERSION=""
  [[ $VERSION =~ $VERSION_RE ]] || die 4 "the manifest's version is malformed: refused"
  SEQUENCE=$(json_number "$m" sequence) || die 4 "the manifest has no sequence: refused"
  if [[ -n $WANT_VERSION && $VERSION != "$WANT_VERSION" ]]; then
    die 1 "version $WANT_VERSION was asked for, but channel $CHANNEL at $BASE_URL offers $VERSION: point --base-url at a mirror that holds $WANT_VERSION"
  fi

  # 5. The build for this host (a host with AVX2 runs the baseline build when there is no other).
  local flat entry offered
  flat=$(tr -d '\n\r' <"$m")
  offered=$(grep -oE '"linux-[a-z0-9-]+"[[:space:]]*:[[:space:]]*\{' <<<"$flat" | grep -oE 'linux-[a-z0-9-]+' | tr '\n' ' ') || offered=""
  entry=$(target_entry "$flat" "$TARGET")
  if [[ -z $entry && $TARGET == linux-x64 ]]; then
    TARGET=linux-x64-baseline
    entry=$(target_entry "$flat" "$TARGET")
  fi
  [[ -n $entry ]] || die 3 "release $VERSION has no build for this host (target $TARGET); it offers: ${offered% }"
  [[ $entry =~ \"url\"[[:space:]]*:[[:space:]]*\"([A-Za-z0-9][A-Za-z0-9._-]{0,127})\" ]] || die 4 "the manifest's $TARGET entry has no valid file name: refused"
  local file=${BASH_REMATCH[1]}
  [[ $entry =~ \"size\"[[:space:]]*:[[:space:]]*([1-9][0-9]{0,9})[^0-9] ]] || die 4 "the manifest's $TARGET entry has no valid size: refused"
  SIZE=${BASH_REMATCH[1]}
  ((SIZE <= MAX_BINARY_BYTES)) || die 4 "the manifest's $TARGET binary is over $MAX_BINARY_BYTES bytes: refused"
  [[ $entry =~ \"sha256\"[[:space:]]*:[[:space:]]*\"([0-9a-f]{64})\" ]] || die 4 "the manifest's $TARGET entry has no valid sha256: refused"
  local sha=${BASH_REMATCH[1]}

  # 6. The binary: exactly the signed size and hash.
  NEW_BINARY="$rel/connector"
  fetch "$file" "$SIZE" "$NEW_BINARY"
  local got
  got=$(wc -c <"$NEW_BINARY")
  ((got == SIZE)) || die 4 "$file is $got bytes, not the $SIZE its signed manifest says: refused"
  got=$(sha256sum "$NEW_BINARY" | cut -c1-64)
  [[ $got == "$sha" ]] || die 4 "$file does not have the SHA-256 its signed manifest says: refused (altered in transit?)"
  chmod 0755 "$NEW_BINARY"

  # 7. It must run here and call itself the promised version and target (a wrong-architecture or
  # corrupt build stops here).
  local line status=0 hint=""
  line=$(version_line "$NEW_BINARY") || status=$?
  if [[ $line != "connector $VERSION ("*"target $TARGET)" ]]; then
    if ((status == 126)); then hint=" (if $WORK is on a noexec mount, set TMPDIR to a directory that allows running programs)"; fi
    die 4 "the downloaded binary does not run here as connector $VERSION for $TARGET (exit $status, its --version said \"$(printable "$line" 200)\"): refused$hint"
  fi
  say "verified connector $VERSION ($TARGET, sequence $SEQUENCE) from $BASE_URL/$CHANNEL"
}

# The "target": {…} object of a flattened manifest, or nothing.
target_entry() {
  grep -oE "\"$2\"[[:space:]]*:[[:space:]]*\\{[^{}]*\\}" <<<"$1" | head -n 1 || true
}

# First line a binary prints for --version (empty environment, no stdin, 10 s, 4 KiB at most);
# returns the binary's exit status.
version_line() {
  local out status=0
  out=$(
    timeout -s KILL 10 env -i "$1" --version </dev/null 2>/dev/null | head -c 4096
    exit "${PIPESTATUS[0]}"
  ) || status=$?
  printf '%s' "${out%%$'\n'*}"
  return "$status"
}

# ---------------------------------------------------------------------------------------------------
# Versions (semver precedence, as src/upgrade/version-order.ts)

# compare_versions A B: prints -1, 0 or 1.
compare_versions() {
  local a=$1 b=$2 core_a core_b pre_a="" pre_b="" i
  core_a=${a%%-*} core_b=${b%%-*}
  if [[ $a == *-* ]]; then pre_a=${a#*-}; fi
  if [[ $b == *-* ]]; then pre_b=${b#*-}; fi
  local -a ca cb
  IFS=. read -r -a ca <<<"$core_a"
  IFS=. read -r -a cb <<<"$core_b"
  for i in 0 1 2; do
    if ((10#${ca[i]} < 10#${cb[i]})); then
      echo -1
      return
    elif ((10#${ca[i]} > 10#${cb[i]})); then
      echo 1
      return
    fi
  done
  if [[ -z $pre_a || -z $pre_b ]]; then
    if [[ $pre_a == "$pre_b" ]]; then echo 0; elif [[ -z $pre_a ]]; then echo 1; else echo -1; fi
    return
  fi
  local -a pa pb
  IFS=. read -r -a pa <<<"$pre_a"
  IFS=. read -r -a pb <<<"$pre_b"
  for ((i = 0; i < ${#pa[@]} && i < ${#pb[@]}; i++)); do
    local x=${pa[i]} y=${pb[i]}
    if [[ $x == "$y" ]]; then continue; fi
    if [[ $x =~ ^[0-9]+$ && $y =~ ^[0-9]+$ ]]; then
      if ((10#$x < 10#$y)); then echo -1; else echo 1; fi
    elif [[ $x =~ ^[0-9]+$ ]]; then
      echo -1
    elif [[ $y =~ ^[0-9]+$ ]]; then
      echo 1
    elif [[ $x < $y ]]; then
      echo -1
    else
      echo 1
    fi
    return
  done
  if ((${#pa[@]} == ${#pb[@]})); then echo 0; elif ((${#pa[@]} < ${#pb[@]})); then echo -1; else echo 1; fi
}

# ---------------------------------------------------------------------------------------------------
# Files

# Same bytes (size, then SHA-256): nothing to write.
same_bytes() {
  [[ -f $1 && -f $2 ]] || return 1
  [[ $(wc -c <"$1") -eq $(wc -c <"$2") ]] || return 1
  [[ $(sha256sum <"$1" | cut -c1-64) == $(sha256sum <"$2" | cut -c1-64) ]]
}

# set_owner PATH USER:GROUP — only on a real install (--root writes files, owners are the host's).
set_owner() {
  if [[ -z $ROOT_GIVEN ]]; then chown "$2" "$1"; fi
}

# ensure_dir PATH MODE OWNER [system]: created when missing; mode and owner corrected, except on a
# system directory that already exists (/usr/local/bin is 2775 root:staff on Debian: not ours to change).
ensure_dir() {
  local dir=$1 mode=$2 owner=$3 system=${4:-}
  if [[ -d $dir ]]; then
    if [[ -n $system ]]; then return 0; fi
  else
    mkdir -p "$dir"
    say "created $(display "$dir")"
  fi
  if [[ $(stat -c %a "$dir") != "${mode#0}" ]]; then chmod "$mode" "$dir"; fi
  set_owner "$dir" "$owner"
}

display() { printf '%s' "${1#"$ROOT"}"; }

# put_file SRC DEST MODE OWNER: DEST gets SRC's bytes through a synced temp file renamed over it,
# unless it already has them; WROTE=1 when it wrote. Every step is checked here, not left to `set -e`,
# which bash ignores in a function called from a condition: a short write must never be renamed in.
put_file() {
  local src=$1 dest=$2 mode=$3 owner=$4 tmp shown
  shown=$(display "$dest")
  WROTE=""
  if same_bytes "$src" "$dest"; then
    if [[ $(stat -c %a "$dest") != "${mode#0}" ]]; then chmod "$mode" "$dest" || die 1 "cannot chmod $shown"; fi
    set_owner "$dest" "$owner"
    return 0
  fi
  tmp=$(mktemp "$(dirname "$dest")/.$(basename "$dest").install-XXXXXXXX") || die 1 "cannot create a temporary file beside $shown"
  PENDING_TMP=$tmp # removed on exit when a step below fails: never left beside the file
  cat "$src" >"$tmp" || die 1 "writing $shown failed (is the disk full?); it was not changed"
  chmod "$mode" "$tmp" || die 1 "cannot chmod the new $shown"
  set_owner "$tmp" "$owner"
  sync "$tmp" || die 1 "cannot sync the new $shown to disk; it was not changed"
  mv -f "$tmp" "$dest" || die 1 "cannot rename the new $shown into place; it was not changed"
  PENDING_TMP=""
  WROTE=1
}

# The installed binary's version, or nothing when it does not answer.
installed_version() {
  local line
  line=$(version_line "$1") || return 0
  line=${line#connector }
  printf '%s' "${line%% *}"
}

install_binary() {
  local dest="$ROOT/usr/local/bin/connector" prev="$ROOT/usr/local/bin/connector.prev" old=""
  ensure_dir "$ROOT/usr/local/bin" 0755 root:root system
  if same_bytes "$NEW_BINARY" "$dest"; then
    say "/usr/local/bin/connector unchanged (connector $VERSION)"
    put_file "$NEW_BINARY" "$dest" 0755 root:root
    return 0
  fi
  if [[ -n $PINNED && $VERSION != "$PINNED" ]]; then
    [[ -f $dest ]] || die 1 "this host is pinned to version $PINNED (CONNECTOR_PIN_VERSION in /etc/connector/connector.env), but channel $CHANNEL offers $VERSION: give --version $VERSION, or remove the pin"
    say "pinned to $PINNED (CONNECTOR_PIN_VERSION in /etc/connector/connector.env): $VERSION of channel $CHANNEL not installed (give --version $VERSION to take it)"
    REPORT_VERSION=$(installed_version "$dest")
    REPORT_VERSION=${REPORT_VERSION:-$PINNED}
    return 0
  fi
  if [[ -f $dest ]]; then
    old=$(installed_version "$dest")
    if [[ -n $old && -z $WANT_VERSION$PINNED && $old =~ $VERSION_RE && $(compare_versions "$VERSION" "$old") == -1 ]]; then
      say "the installed connector $old is newer than $VERSION of channel $CHANNEL: kept (give --version $VERSION to install that version)"
      REPORT_VERSION=$old
      return 0
    fi
    # The old binary stays reachable as connector.prev (a hard link renamed into place).
    local link
    link=$(mktemp -u "$ROOT/usr/local/bin/.connector.prev.install-XXXXXXXX")
    PENDING_TMP=$link
    ln "$dest" "$link" || die 1 "cannot keep the old binary as /usr/local/bin/connector.prev"
    mv -f "$link" "$prev" || die 1 "cannot keep the old binary as /usr/local/bin/connector.prev"
    PENDING_TMP=""
  fi
  put_file "$NEW_BINARY" "$dest" 0755 root:root
  CHANGED_BINARY=1
  if [[ -n $old ]]; then
    say "upgraded /usr/local/bin/connector from $old to $VERSION (the old one is /usr/local/bin/connector.prev)"
  else
    say "installed /usr/local/bin/connector ($VERSION)"
  fi
}

# The settings file: the values this run was given replace theirs, every other line is kept.
install_env_file() {
  local dest="$ROOT/etc/connector/connector.env" new="$WORK/connector.env"
  ensure_dir "$ROOT/etc/connector" 0750 root:connector
  local -a names=() values=()
  if [[ -n $PROXY_GIVEN ]]; then names+=(CONNECTOR_PROXY) values+=("$PROXY"); fi
  if [[ -n $NO_PROXY_GIVEN ]]; then names+=(CONNECTOR_NO_PROXY) values+=("$NO_PROXY_LIST"); fi
  # The channel and release host are written only when they differ from this script's defaults (and
  # removed when a run sets them back): the daemon then upgrades from where this run installed.
  local default_channel=${RELEASE_CHANNEL:-stable} channel_value="" url_value=""
  if [[ $CHANNEL != "$default_channel" ]]; then channel_value=$CHANNEL; fi
  if [[ $BASE_URL != "${RELEASE_BASE_URL%/}" ]]; then url_value="$BASE_URL/$CHANNEL/manifest.json"; fi
  if [[ -n $CHANNEL_GIVEN ]]; then names+=(CONNECTOR_CHANNEL) values+=("$channel_value"); fi
  if [[ -n $CHANNEL_GIVEN$BASE_URL_GIVEN ]]; then names+=(CONNECTOR_MANIFEST_URL) values+=("$url_value"); fi
  if [[ -n $WANT_VERSION ]]; then names+=(CONNECTOR_PIN_VERSION) values+=("$WANT_VERSION"); fi
  {
    if [[ -f $dest ]]; then
      local line name i keep
      while IFS= read -r line || [[ -n $line ]]; do
        keep=1
        name=${line#export }
        name=${name%%=*}
        name=${name//[[:space:]]/}
        for i in "${!names[@]}"; do
          if [[ $name == "${names[i]}" ]]; then keep=""; fi
        done
        if [[ -n $keep ]]; then printf '%s\n' "$line"; fi
      done <"$dest"
    else
      printf '# connector settings (KEY=value), read by the daemon at start; install.sh keeps lines it was not given.\n'
      printf '# docs/OPERATIONS.md lists every setting. Never put the provisioning key here.\n'
    fi
    for i in "${!names[@]}"; do
      # An empty value given on the command line (--proxy '') removes the setting.
      if [[ -n ${values[i]} ]]; then printf '%s=%s\n' "${names[i]}" "${values[i]}"; fi
    done
  } >"$new"
  put_file "$new" "$dest" 0640 root:connector
  if [[ -n $WROTE ]]; then
    CHANGED_ENV=1
    say "wrote /etc/connector/connector.env"
  fi
}

install_units() {
  local unit
  ensure_dir "$ROOT/etc/systemd/system" 0755 root:root system
  for unit in $UNITS; do
    unit_text "$unit" >"$WORK/$unit" || die 1 "this install.sh carries no $unit: use the install.sh published with a release"
    put_file "$WORK/$unit" "$ROOT/etc/systemd/system/$unit" 0644 root:root
    if [[ -n $WROTE ]]; then
      CHANGED_UNITS=1
      say "wrote /etc/systemd/system/$unit"
    fi
  done
}

# ---------------------------------------------------------------------------------------------------
# The service user, enrollment and systemd (never with --root)

nologin_shell() {
  local shell
  for shell in /usr/sbin/nologin /sbin/nologin /usr/bin/nologin /bin/false; do
    if [[ -x $shell ]]; then
      printf '%s' "$shell"
      return
    fi
  done
  printf '/bin/false'
}

ensure_user() {
  if id -u connector >/dev/null 2>&1; then return 0; fi
  local shell
  shell=$(nologin_shell)
  if command -v useradd >/dev/null 2>&1; then
    if getent group connector >/dev/null 2>&1; then
      useradd --system --gid connector --home-dir /var/lib/connector --no-create-home --shell "$shell" connector
    else
      useradd --system --user-group --home-dir /var/lib/connector --no-create-home --shell "$shell" connector
    fi
  elif command -v adduser >/dev/null 2>&1; then
    getent group connector >/dev/null 2>&1 || addgroup -S connector
    adduser -S -D -H -h /var/lib/connector -s "$shell" -G connector connector
  else
    die 1 "useradd (shadow) or adduser (busybox) is required to create the user connector"
  fi
  say "created the system user connector"
}

# as_service COMMAND...: runs as the service user, environment kept (the proxy travels there, not in argv).
as_service() {
  if command -v runuser >/dev/null 2>&1; then
    runuser -u connector -- "$@"
  else
    setpriv --reuid connector --regid connector --init-groups -- "$@"
  fi
}

# The key, from wherever it was given, into a 0600 file only root reads: it never goes into argv.
load_key() {
  if [[ -n $KEY_FILE ]]; then
    if [[ ! -r $KEY_FILE && $KEY_FILE == cnk1.* ]]; then usage_error "$KEY_SOURCE names no readable file; its value looks like a key (not shown): give the key with --key, or better, in a file"; fi
    [[ -r $KEY_FILE ]] || usage_error "$KEY_SOURCE $(printable "$KEY_FILE") is not a readable file"
    KEY=$(head -c 4096 "$KEY_FILE" | tr -d '\r\n')
  fi
  [[ -n $KEY ]] || return 0
  KEY=${KEY//[[:space:]]/}
  # A length test apart: musl's regex allows no repeat count above 255.
  [[ $KEY =~ ^[A-Za-z0-9._~+/=-]+$ && ${#KEY} -ge 8 && ${#KEY} -le 4096 ]] || usage_error "the provisioning key from $KEY_SOURCE is malformed (expected cnk1.…)"
}

write_key_file() {
  local dest=$1
  (
    umask 077
    printf '%s\n' "$KEY" >"$dest"
  )
}

run_preflight() {
  if [[ -n $SKIP_PREFLIGHT ]]; then
    say "preflight skipped (--skip-preflight)"
    return 0
  fi
  local -a args=(preflight --state-dir "$STATE_DIR")
  if [[ -n $KEY ]]; then
    write_key_file "$WORK/preflight.key"
    args+=(--key-file "$WORK/preflight.key")
  fi
  local status=0
  # The name enrollment will use: a long hostname is no warning when --name replaces it.
  (if [[ -n $NAME ]]; then export CONNECTOR_NAME=$NAME; fi && with_proxy_env "$NEW_BINARY" "${args[@]}") </dev/null || status=$?
  rm -f "$WORK/preflight.key"
  case $status in
    0) ;;
    1) die 6 "preflight found a problem (above): fix it and run again, or add --skip-preflight to install anyway" ;;
    2) die 2 "preflight refused the settings or the key (above)" ;;
    *) die 6 "preflight failed (exit $status)" ;;
  esac
}

# with_proxy_env COMMAND...: the proxy settings in the environment of COMMAND only.
with_proxy_env() {
  if [[ -n $PROXY ]]; then export CONNECTOR_PROXY=$PROXY; else unset CONNECTOR_PROXY; fi
  if [[ -n $NO_PROXY_LIST ]]; then export CONNECTOR_NO_PROXY=$NO_PROXY_LIST; else unset CONNECTOR_NO_PROXY; fi
  unset CONNECTOR_KEY CONNECTOR_PROVISIONING_KEY HTTPS_PROXY https_proxy NO_PROXY no_proxy
  "$@"
}

enroll() {
  if [[ -f $STATE_DIR/identity/identity.json ]]; then
    say "this host is already enrolled ($STATE_DIR/identity): identity kept${KEY:+, the key was not used}"
    return 0
  fi
  # Not in the state dir: the service user can rename entries there, and could swap the file for a
  # symlink between root's write and chown (a root write to any file it names). A directory of root's
  # that the user may only traverse leaves it nothing to swap.
  local base=$KEY_DIR_BASE
  [[ -d $base ]] || base=/tmp
  KEY_DIR=$(mktemp -d "$base/connector-enroll.XXXXXXXX")
  chmod 0711 "$KEY_DIR"
  ENROLL_KEY_FILE="$KEY_DIR/key"
  write_key_file "$ENROLL_KEY_FILE"
  chown connector:connector "$ENROLL_KEY_FILE"
  # Its info log lines (JSON when not on a terminal) would only clutter the installer's output.
  local -a args=("$BINARY" enroll --log-level warn --state-dir "$STATE_DIR" --key-file "$ENROLL_KEY_FILE")
  if [[ -n $NAME ]]; then args+=(--name "$NAME"); fi
  local status=0 out
  out=$( (cd / && with_proxy_env as_service "${args[@]}") </dev/null 2>&1) || status=$?
  rm -rf "$KEY_DIR"
  KEY_DIR="" ENROLL_KEY_FILE=""
  if [[ -n $out ]]; then redact "$out" >&2 && printf '\n' >&2; fi
  ((status == 0)) || die 7 "enrollment failed (connector enroll exited $status)"
  CHANGED_IDENTITY=1
}

start_service() {
  if [[ ! -d $SYSTEMD_RUNNING_DIR ]]; then
    say "systemd is not running on this host: the units are installed but nothing was started."
    say "run the daemon in the foreground with: runuser -u connector -- /usr/local/bin/connector run"
    return 0
  fi
  if [[ -n ${CHANGED_UNITS:-} ]]; then systemctl daemon-reload; fi
  local out status=0 pid
  # A run cut short after the swap left the daemon on the old, now unlinked, binary: this run sees the
  # right bytes in place, so "changed" is empty, yet the daemon still needs the restart.
  pid=$(systemctl show -p MainPID --value connector.service 2>/dev/null) || pid=0
  if [[ $pid =~ ^[1-9][0-9]*$ && $(readlink "/proc/$pid/exe" 2>/dev/null) == *" (deleted)" ]]; then CHANGED_BINARY=1; fi
  if [[ -n ${CHANGED_BINARY:-}${CHANGED_UNITS:-}${CHANGED_ENV:-}${CHANGED_IDENTITY:-} ]] && systemctl is-active --quiet connector.service; then
    out=$(systemctl restart connector.service 2>&1) || die 8 "connector.service did not restart: $out (see journalctl -u connector)"
    say "restarted connector.service"
  fi
  # `enable` makes systemd reload itself even when nothing changes: only what is not enabled yet, and
  # only a start for what is not running, so an unchanged re-run touches nothing.
  local unit
  for unit in connector.service connector-upgrade.path; do
    if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
      out=$(systemctl enable "$unit" 2>&1) || die 8 "systemctl enable $unit failed: $out"
    fi
    if ! systemctl is-active --quiet "$unit"; then
      out=$(systemctl start "$unit" 2>&1) || die 8 "$unit did not start: $out (see systemctl status $unit and journalctl -u connector)"
      say "started $unit"
    fi
  done
  local deadline=$((SECONDS + STATUS_WAIT_SECONDS))
  while :; do
    status=0
    out=$(cd / && as_service "$BINARY" status --state-dir "$STATE_DIR" </dev/null 2>&1) || status=$?
    # connector status: 0 connected, 40 degraded (tunnels up, fewer than asked); 45 revoked.
    if ((status == 0 || status == 40)); then
      printf '%s\n' "$out"
      return 0
    fi
    if ((status == 45)); then
      printf '%s\n' "$out" >&2
      die 8 "this connector's identity is revoked: remove it (--purge) and install again with a new key"
    fi
    if ((SECONDS >= deadline)); then
      say "connector status did not answer within ${STATUS_WAIT_SECONDS} s (exit $status):"
      printf '%s\n' "$out" >&2
      journalctl -u connector.service -n 20 --no-pager >&2 2>/dev/null || true
      die 8 "the service did not start: see systemctl status connector and journalctl -u connector"
    fi
    sleep 1
  done
}

# One installer at a time on a host (cloud-init and an operator, say): two would race on the user,
# the files and enrollment. The lock is the open file descriptor 9, released when the script exits.
take_lock() {
  if ! command -v flock >/dev/null 2>&1; then return 0; fi # busybox without flock: best effort
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  flock -n 9 || die 1 "another install.sh is running on this host (it holds $LOCK_FILE): wait for it, then run again"
}

# ---------------------------------------------------------------------------------------------------
# Uninstall

uninstall() {
  if [[ -z $ROOT_GIVEN && -d $SYSTEMD_RUNNING_DIR ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now connector-upgrade.path connector.service >/dev/null 2>&1 || true
    systemctl stop connector-upgrade.service >/dev/null 2>&1 || true
  fi
  local path removed=0
  for path in /usr/local/bin/connector /usr/local/bin/connector.prev /etc/systemd/system/connector.service \
    /etc/systemd/system/connector-upgrade.path /etc/systemd/system/connector-upgrade.service /etc/connector; do
    if [[ -e $ROOT$path || -L $ROOT$path ]]; then
      rm -rf -- "$ROOT$path"
      say "removed $path"
      removed=$((removed + 1))
    fi
  done
  if [[ -z $ROOT_GIVEN && -d $SYSTEMD_RUNNING_DIR ]] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload || true; fi
  if [[ -z $PURGE ]]; then
    say "uninstalled ($removed paths removed); kept /var/lib/connector (the identity) and the user connector: --purge removes them"
    return 0
  fi
  if [[ -e $ROOT/var/lib/connector ]]; then
    rm -rf -- "$ROOT/var/lib/connector"
    say "removed /var/lib/connector (the identity: this connector must be enrolled again)"
  fi
  if [[ -z $ROOT_GIVEN ]] && id -u connector >/dev/null 2>&1; then
    if command -v userdel >/dev/null 2>&1; then
      userdel connector || die 1 "userdel connector failed (is a connector process still running?)"
    else
      deluser connector || die 1 "deluser connector failed (is a connector process still running?)"
    fi
    if getent group connector >/dev/null 2>&1; then
      if command -v groupdel >/dev/null 2>&1; then groupdel connector || true; else delgroup connector || true; fi
    fi
    say "removed the user connector"
  fi
  say "purged"
}

# ---------------------------------------------------------------------------------------------------

# On every exit. A command that failed under `set -e` (a full disk, say) printed its own error, without
# our prefix: say so in our words, and make it exit 1 ("other failure") whatever its status was.
cleanup() {
  local status=$?
  if [[ -n ${KEY_DIR:-} ]]; then rm -rf "$KEY_DIR"; fi
  if [[ -n ${PENDING_TMP:-} ]]; then rm -f "$PENDING_TMP"; fi
  if [[ -n ${WORK:-} ]]; then rm -rf "$WORK"; fi
  if ((status != 0)) && [[ -z ${DIED:-} ]]; then
    say "stopped by the error above (exit $status); run the same line again once it is fixed"
    exit 1
  fi
}

main() {
  umask 022
  constants
  trap cleanup EXIT
  trap 'DIED=1; say "interrupted"; exit 130' INT TERM
  parse_args "$@"
  if [[ -z $ROOT_GIVEN && $(id -u) != 0 ]]; then die 1 "run as root (curl … | sudo bash -s -- …)"; fi
  if [[ -z $ROOT_GIVEN ]]; then take_lock; fi
  if [[ -n $UNINSTALL ]]; then
    uninstall
    return 0
  fi
  require_tools curl openssl sha256sum timeout
  if [[ -z $ROOT_GIVEN ]]; then
    command -v runuser >/dev/null 2>&1 || require_tools setpriv
    load_key
    if [[ -z $KEY && ! -f $STATE_DIR/identity/identity.json ]]; then
      usage_error "a provisioning key is needed to enroll this host: give --key-file FILE (or --key, CONNECTOR_KEY)"
    fi
  fi
  detect_target
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/connector-install.XXXXXXXX")
  verify_release
  # The verified binary checks this host before anything is installed: a failure changes nothing.
  if [[ -z $ROOT_GIVEN ]]; then run_preflight; fi

  CHANGED_BINARY="" CHANGED_UNITS="" CHANGED_ENV="" CHANGED_IDENTITY="" REPORT_VERSION=$VERSION
  if [[ -z $ROOT_GIVEN ]]; then ensure_user; fi
  install_binary
  install_env_file
  install_units
  ensure_dir "$ROOT/var/lib/connector" 0700 connector:connector
  if [[ -n $ROOT_GIVEN ]]; then
    report_changes
    return 0
  fi
  enroll
  start_service
  report_changes
}

report_changes() {
  if [[ -z $CHANGED_BINARY$CHANGED_UNITS$CHANGED_ENV$CHANGED_IDENTITY ]]; then
    say "unchanged: connector $REPORT_VERSION is installed and nothing needed to change"
  else
    say "done: connector $REPORT_VERSION installed"
  fi
}

{ main "$@"; }
