#!/usr/bin/env bash
# Elasticsearch for the local stack: one single-node cluster on 127.0.0.1:$ES_PORT.
#   elasticsearch.sh install|start|stop|status
# The distribution is the integ-test zip that Elasticsearch publishes as a Maven
# artifact (fetched with mvn, unpacked once into $DOWNLOADS and never modified).
# It carries no JDK, so a system JDK is used (ES_JAVA_HOME, or the newest suitable
# one under /usr/lib/jvm). Elasticsearch refuses to run as root: it runs as the
# system user $ES_USER, which owns only $STACK_DIR/elasticsearch/{config,data,logs,tmp}.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=elasticsearch
ES_VERSION="${PREDLOG_STACK_ES_VERSION:-8.19.3}"
ES_USER="${PREDLOG_STACK_ES_USER:-predlog-es}"
ES_HEAP="${PREDLOG_STACK_ES_HEAP:-512m}"
ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
ES_HOME="$DOWNLOADS/elasticsearch-$ES_VERSION"
ES_DIR="$(svc_dir "$NAME")"
ES_CONF="$ES_DIR/config"
ES_URL="http://127.0.0.1:$ES_PORT"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

es_healthy() {
  curl -fsS --max-time 3 -o /dev/null "$ES_URL/_cluster/health?wait_for_status=yellow&timeout=1s"
}

# java_major JAVA_HOME: the feature version of that JDK (17, 21, 25...), or nothing.
java_major() {
  local release="$1/release" v
  [[ -x "$1/bin/java" ]] || return 0
  if [[ -f "$release" ]]; then
    v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release")"
  else
    v="$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  fi
  echo "$v"
}

# find_java: print a JDK home that this Elasticsearch version runs on.
# ES 8.x needs Java 17+, ES 9.x Java 21+. Temurin JDKs are preferred, newest first.
find_java() {
  local need=17 home major rank best="" best_major=0
  [[ "${ES_VERSION%%.*}" -ge 9 ]] && need=21
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then
    major="$(java_major "$ES_JAVA_HOME")"
    [[ -n "$major" && "$major" -ge "$need" ]] \
      || { log "$NAME: ES_JAVA_HOME=$ES_JAVA_HOME is not a Java $need+ JDK"; return 1; }
    echo "$ES_JAVA_HOME"; return 0
  fi
  shopt -s nullglob
  # Prefer a Temurin JDK, then the highest feature version.
  for home in /usr/lib/jvm/*; do
    [[ -L "$home" ]] && continue
    major="$(java_major "$home")"
    [[ -n "$major" && "$major" -ge "$need" ]] || continue
    rank="$major"; [[ "$(basename "$home")" == temurin-* ]] && rank=$(( major + 1000 ))
    (( rank > best_major )) && { best="$home"; best_major=$rank; }
  done
  shopt -u nullglob
  [[ -n "$best" ]] || { log "$NAME: no Java $need+ JDK found under /usr/lib/jvm; install one or set ES_JAVA_HOME"; return 1; }
  echo "$best"
}

ensure_user() {
  id -u "$ES_USER" >/dev/null 2>&1 && return 0
  log "$NAME: creating system user $ES_USER"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$ES_USER"
}

# ensure_traversable DIR: every ancestor of DIR must be searchable by $ES_USER
# (e.g. a clone under a 0700 home directory); add o+x where it is missing.
ensure_traversable() {
  local d="$1"
  while [[ "$d" != "/" && -n "$d" ]]; do
    if ! runuser -u "$ES_USER" -- test -x "$d" 2>/dev/null; then
      log "$NAME: granting search permission (o+x) on $d to $ES_USER"
      chmod o+x "$d"
    fi
    d="$(dirname "$d")"
  done
}

install() {
  ensure_apt curl unzip
  if [[ ! -x "$ES_HOME/bin/elasticsearch" ]]; then
    command -v mvn >/dev/null 2>&1 || ensure_apt maven
    local tmp="$DOWNLOADS/.elasticsearch-$ES_VERSION.partial"
    rm -rf "$tmp"; mkdir -p "$tmp"
    log "$NAME: fetching $ES_ARTIFACT with mvn"
    # Run from the empty temp dir so that no pom.xml nearby turns this into a project build.
    if ! (cd "$tmp" && mvn -B -q -Dstyle.color=never "$DEPENDENCY_PLUGIN:copy" \
            -Dartifact="$ES_ARTIFACT" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1); then
      grep -E 'ERROR' "$tmp/mvn.log" | head -n 5 >&2 || true
      rm -rf "$tmp"; log "$NAME: mvn could not fetch $ES_ARTIFACT"; exit 1
    fi
    unzip -q "$tmp/elasticsearch-$ES_VERSION.zip" -d "$tmp"
    [[ -x "$tmp/elasticsearch-$ES_VERSION/bin/elasticsearch" ]] \
      || { rm -rf "$tmp"; log "$NAME: unexpected layout in the zip"; exit 1; }
    chmod -R a+rX "$tmp/elasticsearch-$ES_VERSION"
    rm -rf "$ES_HOME"
    mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
    rm -rf "$tmp"
  fi
  find_java >/dev/null
  ensure_user
}

# configure: a private config dir (copied from the distribution, then our settings).
configure() {
  mkdir -p "$ES_DIR" "$ES_CONF" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp"
  local f
  for f in jvm.options log4j2.properties roles.yml role_mapping.yml users users_roles; do
    [[ -f "$ES_HOME/config/$f" ]] && cp "$ES_HOME/config/$f" "$ES_CONF/$f"
  done
  mkdir -p "$ES_CONF/jvm.options.d"
  # GC log into our logs dir, and small.
  sed -i -E "s#file=(logs/)?gc\.log:([^:]*):[^ ]*#file=$ES_DIR/logs/gc.log:\2:filecount=4,filesize=16m#" "$ES_CONF/jvm.options"
  {
    echo "# Written by deploy/stack/elasticsearch.sh on every start."
    echo "cluster.name: predlog-local"
    echo "node.name: predlog-local-1"
    echo "discovery.type: single-node"
    echo "network.host: 127.0.0.1"
    echo "http.port: $ES_PORT"
    echo "transport.port: $ES_TRANSPORT_PORT"
    echo "path.data: $ES_DIR/data"
    echo "path.logs: $ES_DIR/logs"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    echo "action.destructive_requires_name: false"
    if [[ -d "$ES_HOME/modules/x-pack-security" ]]; then
      echo "xpack.security.enabled: false"
      echo "xpack.security.http.ssl.enabled: false"
      echo "xpack.security.transport.ssl.enabled: false"
    fi
  } > "$ES_CONF/elasticsearch.yml"
  chown -R "$ES_USER:$ES_USER" "$ES_CONF" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp"
  ensure_traversable "$ES_DIR"
  ensure_traversable "$ES_HOME"
}

start() {
  if is_running "$NAME"; then
    log "$NAME: already running (pid $(cat "$(pid_file "$NAME")"))"
    return 0
  fi
  [[ -x "$ES_HOME/bin/elasticsearch" ]] || install
  id -u "$ES_USER" >/dev/null 2>&1 || ensure_user
  local java_home; java_home="$(find_java)"
  configure
  log "$NAME: starting $ES_VERSION on $ES_URL (java $(java_major "$java_home") from $java_home)"
  cd "$ES_DIR/logs"
  # Best effort: ES warns below 65535 open files (only a warning on loopback + single-node).
  ulimit -n 65535 2>/dev/null || true
  start_bg_as "$ES_USER" "$NAME" env \
    ES_JAVA_HOME="$java_home" ES_PATH_CONF="$ES_CONF" ES_TMPDIR="$ES_DIR/tmp" \
    ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
    "$ES_HOME/bin/elasticsearch"
  wait_for "$NAME" 120 es_healthy
  log "$NAME: ready on $ES_URL"
}

stop() {
  if is_running "$NAME"; then log "$NAME: stopping"; fi
  stop_pid "$NAME"
}

status() { print_status "$NAME" "$ES_URL" es_healthy; }

case "${1:-status}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
