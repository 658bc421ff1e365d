# Shared helpers for the local real stack. Sourced by deploy/stack/*.sh.
# Every service lives in $STACK_DIR/<service>/ (conf, data, log, pid);
# downloads are cached in $STACK_DIR/downloads/. Nothing here binds beyond 127.0.0.1.
set -euo pipefail
# useradd, runuser and friends live in sbin, which a minimal PATH (a CI runner started
# with `env -i`) leaves out.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${PREDLOG_STACK_DIR:-$REPO_DIR/.stack}"
DOWNLOADS="$STACK_DIR/downloads"
VENV="${PREDLOG_VENV:-$REPO_DIR/.venv}"
mkdir -p "$STACK_DIR" "$DOWNLOADS"

# Ports: non-default so a developer's own servers are left alone.
KAFKA_PORT="${PREDLOG_STACK_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${PREDLOG_STACK_KAFKA_CONTROLLER_PORT:-19094}"
KAFKA_SASL_PORT="${PREDLOG_STACK_KAFKA_SASL_PORT:-19096}"  # SASL_PLAINTEXT, mechanism PLAIN
ES_PORT="${PREDLOG_STACK_ES_PORT:-19200}"
ES_TRANSPORT_PORT="${PREDLOG_STACK_ES_TRANSPORT_PORT:-19300}"
ES_PROXY_PORT="${PREDLOG_STACK_ES_PROXY_PORT:-19201}"  # optional es-proxy: HTTPS + basic auth
PROMETHEUS_PORT="${PREDLOG_STACK_PROMETHEUS_PORT:-19090}"
ALERTMANAGER_PORT="${PREDLOG_STACK_ALERTMANAGER_PORT:-19093}"
MLFLOW_PORT="${PREDLOG_STACK_MLFLOW_PORT:-15000}"
# Where the local Alertmanager delivers every alert (tests run a receiver here).
ALERT_WEBHOOK_URL="${PREDLOG_STACK_ALERT_WEBHOOK_URL:-http://127.0.0.1:19095/alerts}"

svc_dir() { echo "$STACK_DIR/$1"; }
pid_file() { echo "$STACK_DIR/$1/$1.pid"; }
log_file() { echo "$STACK_DIR/$1/$1.log"; }

log() { printf '[stack] %s\n' "$*" >&2; }

# is_running NAME: true when NAME's pid file names a live process.
is_running() {
  local pf; pf="$(pid_file "$1")"
  [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null
}

# start_bg NAME CMD...: start CMD detached in its own session, log to NAME.log, record pid.
# Use `start_bg_as USER NAME CMD...` for services that refuse to run as root.
start_bg() {
  local name="$1"; shift
  mkdir -p "$(svc_dir "$name")"
  setsid "$@" >>"$(log_file "$name")" 2>&1 < /dev/null &
  echo $! > "$(pid_file "$name")"
}

start_bg_as() {
  local user="$1" name="$2"; shift 2
  mkdir -p "$(svc_dir "$name")"
  setsid runuser -u "$user" -- "$@" >>"$(log_file "$name")" 2>&1 < /dev/null &
  echo $! > "$(pid_file "$name")"
}

# stop_pid NAME: TERM the process group we started, then KILL after a grace period.
stop_pid() {
  local name="$1" pf pid i
  pf="$(pid_file "$name")"
  [[ -f "$pf" ]] || return 0
  pid="$(cat "$pf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

# fail NAME MESSAGE: print the tail of NAME's log and exit non-zero.
fail() {
  local name="$1"; shift
  log "$name: $*"
  if [[ -f "$(log_file "$name")" ]]; then
    log "last lines of $(log_file "$name"):"
    tail -n 40 "$(log_file "$name")" >&2 || true
  fi
  exit 1
}

# wait_for NAME TIMEOUT_SECONDS CHECK_CMD...: poll CHECK_CMD until it succeeds;
# fail (with the log tail) on timeout or when the process died.
wait_for() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    is_running "$name" || fail "$name" "process exited during start-up"
    (( $(date +%s) < deadline )) || fail "$name" "not ready after ${timeout}s"
    sleep 1
  done
}

# http_ok URL: true when URL answers 2xx.
http_ok() { curl -fsS --max-time 3 -o /dev/null "$1"; }

# ensure_apt PKG...: install Debian packages that are missing.
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    log "installing Debian packages: ${missing[*]}"
    if [[ ! -f "$STACK_DIR/.apt-updated" ]]; then
      apt-get update -qq && touch "$STACK_DIR/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# make_tls_cert DIR: once per DIR, a self-signed CA (DIR/ca.crt) and a server certificate
# for 127.0.0.1 and localhost signed by it (DIR/server.crt, DIR/server.key), with openssl.
make_tls_cert() {
  local dir="$1"
  [[ -f "$dir/server.crt" ]] && return 0
  mkdir -p "$dir"
  ( cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=predlog stack test CA" \
      -keyout ca.key -out ca.crt -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
      -out server.csr 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      "authorityKeyIdentifier=keyid,issuer" > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile server.ext -out server.crt 2>/dev/null
    chmod 600 ca.key server.key
    rm -f server.csr server.ext )
}

# print_status NAME URL: one line, for `stack status`.
print_status() {
  local name="$1" url="$2" health="$3" state
  if is_running "$name"; then
    if "$health" >/dev/null 2>&1; then state="healthy"; else state="running, not answering"; fi
    printf '%-13s %-28s pid %-8s %s\n' "$name" "$url" "$(cat "$(pid_file "$name")")" "$state"
  else
    printf '%-13s %-28s %-12s %s\n' "$name" "$url" "" "stopped"
  fi
}
