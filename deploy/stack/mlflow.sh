#!/usr/bin/env bash
# Local MLflow tracking server for predlog (mlflow from the project venv).
#   install  check that $VENV/bin/mlflow exists (`make venv` creates it)
#   start    serve on 127.0.0.1:$MLFLOW_PORT: SQLite backend store, proxied artifacts
#            (mlflow-artifacts:/) under $STACK_DIR/mlflow/artifacts; wait for /health
#   stop     stop the server and its uvicorn worker (one process group)
#   status   one line: URL, pid, health
# MLflow 3's security middleware allows Host localhost/127.0.0.1 and localhost CORS origins
# by default, so local clients need no --allowed-hosts / --cors-allowed-origins.
# PREDLOG_STACK_MLFLOW_AUTH=basic: MLflow's own basic-auth app (`--app-name basic-auth`) with
# its user store in $DIR/basic_auth.db (config $DIR/basic_auth.ini), admin user `admin` with
# a password generated into $DIR/admin-password, other users READ by default (their own
# experiments MANAGE). PREDLOG_STACK_MLFLOW_TLS=1: HTTPS (uvicorn) with a certificate for
# 127.0.0.1 signed by a CA made here ($DIR/ca.crt, for PREDLOG_MLFLOW_CA_FILE). The tests
# start one with both on a free port with their own PREDLOG_STACK_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=mlflow
DIR="$(svc_dir "$NAME")"
URL="http://127.0.0.1:$MLFLOW_PORT"
TLS_ARGS=()
if [[ -n "${PREDLOG_STACK_MLFLOW_TLS:-}" ]]; then
  URL="https://127.0.0.1:$MLFLOW_PORT"
  TLS_ARGS=(--uvicorn-opts "--ssl-keyfile $DIR/server.key --ssl-certfile $DIR/server.crt")
fi
MLFLOW_BIN="$VENV/bin/mlflow"

healthy() {
  if (( ${#TLS_ARGS[@]} )); then
    curl -fsS --max-time 3 -o /dev/null --cacert "$DIR/ca.crt" "$URL/health"
  else
    http_ok "$URL/health"
  fi
}
AUTH_ARGS=()
AUTH_ENV=()
if [[ "${PREDLOG_STACK_MLFLOW_AUTH:-}" == basic ]]; then
  AUTH_ARGS=(--app-name basic-auth)
  AUTH_ENV=("MLFLOW_AUTH_CONFIG_PATH=$DIR/basic_auth.ini")
fi

# basic-auth: its config and the admin password, once per state dir.
auth_config() {
  [[ -f "$DIR/admin-password" ]] || ( umask 077; openssl rand -hex 16 > "$DIR/admin-password" )
  [[ -f "$DIR/flask-secret-key" ]] || ( umask 077; openssl rand -hex 32 > "$DIR/flask-secret-key" )
  cat > "$DIR/basic_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = sqlite:///$DIR/basic_auth.db
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
}

case "${1:-}" in
  install)
    if [[ ! -x "$MLFLOW_BIN" ]]; then
      log "$NAME: $MLFLOW_BIN not found; run \`make venv\` first (it installs mlflow into $VENV)"
      exit 1
    fi
    ;;
  start)
    [[ -x "$MLFLOW_BIN" ]] || { log "$NAME: $MLFLOW_BIN not found; run \`make venv\` first"; exit 1; }
    mkdir -p "$DIR/artifacts"
    if is_running "$NAME"; then
      wait_for "$NAME" 120 healthy
      log "$NAME: already running (pid $(cat "$(pid_file "$NAME")"))"
      exit 0
    fi
    (( ${#AUTH_ARGS[@]} )) && auth_config
    (( ${#TLS_ARGS[@]} )) && make_tls_cert "$DIR"
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no huey job runner (about 2.2 GB -> 0.5 GB RSS).
    # Telemetry off: the stack has no business phoning home (and usually has no internet).
    # cwd = $DIR so nothing (e.g. a default ./mlruns or ./mlartifacts) lands in the caller's cwd.
    # The admin password and the CSRF key reach the auth app through its environment.
    ( cd "$DIR" && if (( ${#AUTH_ARGS[@]} )); then
        export MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
        MLFLOW_AUTH_ADMIN_PASSWORD="$(cat "$DIR/admin-password")"
        MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$DIR/flask-secret-key")"; fi
      MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
        start_bg "$NAME" env "${AUTH_ENV[@]}" "$MLFLOW_BIN" server "${AUTH_ARGS[@]}" "${TLS_ARGS[@]}" \
          --host 127.0.0.1 \
          --port "$MLFLOW_PORT" \
          --backend-store-uri "sqlite:///$DIR/mlflow.db" \
          --artifacts-destination "$DIR/artifacts" \
          --workers 1 )
    wait_for "$NAME" 120 healthy
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
