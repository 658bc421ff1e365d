#!/usr/bin/env bash
# Local Prometheus for predlog (Debian's `prometheus` package, run as our own instance).
#   install  apt-get the package (no recommends); make sure the package's own daemon is not running
#   start    render $STACK_DIR/prometheus/prometheus.yml, start on 127.0.0.1:$PROMETHEUS_PORT, wait for /-/ready
#   stop     stop the instance `start` started (by pid / process group)
#   status   one line: URL, pid, health
# Scrape targets: drop file_sd JSON files into $STACK_DIR/prometheus/targets/ (re-read every 2s).
# Rules: $REPO_DIR/deploy/prometheus/rules/*.yml and $STACK_DIR/prometheus/rules/*.yml.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

NAME=prometheus
DIR="$(svc_dir "$NAME")"
CONF="$DIR/prometheus.yml"
URL="http://127.0.0.1:$PROMETHEUS_PORT"

healthy() { http_ok "$URL/-/ready"; }

# sed replacement text with \, & and the | delimiter escaped.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

render_config() {
  mkdir -p "$DIR/data" "$DIR/targets" "$DIR/rules"
  sed -e "s|@REPO_DIR@|$(sed_escape "$REPO_DIR")|g" \
      -e "s|@STACK_DIR@|$(sed_escape "$STACK_DIR")|g" \
      -e "s|@PROMETHEUS_PORT@|$PROMETHEUS_PORT|g" \
      -e "s|@ALERTMANAGER_PORT@|$ALERTMANAGER_PORT|g" \
      "$HERE/prometheus/prometheus.yml.in" > "$CONF.tmp"
  local out
  if ! out="$(promtool check config "$CONF.tmp" 2>&1)"; then
    printf '%s\n' "$out" >&2
    rm -f "$CONF.tmp"
    fail "$NAME" "generated config does not pass 'promtool check config'"
  fi
  mv "$CONF.tmp" "$CONF"
}

# The package ships an init script/unit; policy-rc.d or the lack of systemd normally keeps it
# from starting, but if its daemon is up (pid file under /run/prometheus) stop it: our instance
# uses its own config, data dir and port, and two servers are just wasted memory.
stop_package_daemon() {
  local pf=/run/prometheus/prometheus.pid
  if [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then
    log "$NAME: stopping the Debian package's own daemon (pid $(cat "$pf"))"
    /etc/init.d/prometheus stop >&2 || true
  fi
}

case "${1:-}" in
  install)
    ensure_apt prometheus
    stop_package_daemon
    command -v prometheus >/dev/null && command -v promtool >/dev/null \
      || { log "$NAME: prometheus/promtool not on PATH after install"; exit 1; }
    ;;
  start)
    mkdir -p "$DIR"
    render_config
    if is_running "$NAME"; then
      # Already up: pick up the freshly rendered config (lifecycle API is enabled).
      curl -fsS --max-time 5 -X POST "$URL/-/reload" >/dev/null 2>&1 \
        || log "$NAME: running, but config reload failed"
      wait_for "$NAME" 60 healthy
      log "$NAME: already running (pid $(cat "$(pid_file "$NAME")"))"
      exit 0
    fi
    start_bg "$NAME" prometheus \
      --config.file="$CONF" \
      --storage.tsdb.path="$DIR/data" \
      --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
      --web.enable-lifecycle \
      --web.enable-admin-api
    wait_for "$NAME" 60 healthy
    log "$NAME: ready at $URL"
    ;;
  stop)
    stop_pid "$NAME"
    ;;
  status)
    print_status "$NAME" "$URL" healthy
    ;;
  *)
    echo "usage: $0 install|start|stop|status" >&2; exit 2;;
esac
