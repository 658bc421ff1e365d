#!/usr/bin/env bash
# Local Alertmanager for predlog (Debian's `prometheus-alertmanager` package, our own instance).
#   install  apt-get the package (no recommends); make sure the package's own daemon is not running
#   start    render $STACK_DIR/alertmanager/alertmanager.yml, start on 127.0.0.1:$ALERTMANAGER_PORT
#            (clustering off), wait for /-/ready
#   stop     stop the instance `start` started (by pid / process group)
#   status   one line: URL, pid, health
# Every alert is delivered to the webhook $ALERT_WEBHOOK_URL (tests run a receiver there).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

NAME=alertmanager
DIR="$(svc_dir "$NAME")"
CONF="$DIR/alertmanager.yml"
URL="http://127.0.0.1:$ALERTMANAGER_PORT"

healthy() { http_ok "$URL/-/ready"; }

sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

render_config() {
  mkdir -p "$DIR/data"
  sed -e "s|@ALERT_WEBHOOK_URL@|$(sed_escape "$ALERT_WEBHOOK_URL")|g" \
      "$HERE/alertmanager/alertmanager.yml.in" > "$CONF.tmp"
  local out
  if ! out="$(amtool check-config "$CONF.tmp" 2>&1)"; then
    printf '%s\n' "$out" >&2
    rm -f "$CONF.tmp"
    fail "$NAME" "generated config does not pass 'amtool check-config'"
  fi
  mv "$CONF.tmp" "$CONF"
}

# See prometheus.sh: stop the package's own daemon if its init script managed to start it.
stop_package_daemon() {
  local pf=/run/prometheus/prometheus-alertmanager.pid
  if [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then
    log "$NAME: stopping the Debian package's own daemon (pid $(cat "$pf"))"
    /etc/init.d/prometheus-alertmanager stop >&2 || true
  fi
}

case "${1:-}" in
  install)
    ensure_apt prometheus-alertmanager
    stop_package_daemon
    command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
      || { log "$NAME: prometheus-alertmanager/amtool not on PATH after install"; exit 1; }
    ;;
  start)
    mkdir -p "$DIR"
    render_config
    if is_running "$NAME"; then
      curl -fsS --max-time 5 -X POST "$URL/-/reload" >/dev/null 2>&1 \
        || log "$NAME: running, but config reload failed"
      wait_for "$NAME" 60 healthy
      log "$NAME: already running (pid $(cat "$(pid_file "$NAME")"))"
      exit 0
    fi
    # An empty --cluster.listen-address turns the gossip cluster off (nothing on 0.0.0.0:9094).
    start_bg "$NAME" prometheus-alertmanager \
      --config.file="$CONF" \
      --storage.path="$DIR/data" \
      --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
      --cluster.listen-address=
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
