#!/usr/bin/env bash
# Local MLflow tracking server for predlog (mlflow from the project venv).
#   install  check that $VENV/bin/mlflow exists (`make venv` creates it)
#   start    serve on 127.0.0.1:$MLFLOW_PORT: SQLite backend store, proxied artifacts
#            (mlflow-artifacts:/) under $STACK_DIR/mlflow/artifacts; wait for /health
#   stop     stop the server and its uvicorn worker (one process group)
#   status   one line: URL, pid, health
# MLflow 3's security middleware allows Host localhost/127.0.0.1 and localhost CORS origins
# by default, so local clients need no --allowed-hosts / --cors-allowed-origins.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=mlflow
DIR="$(svc_dir "$NAME")"
URL="http://127.0.0.1:$MLFLOW_PORT"
MLFLOW_BIN="$VENV/bin/mlflow"

healthy() { http_ok "$URL/health"; }

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
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no huey job runner (about 2.2 GB -> 0.5 GB RSS).
    # Telemetry off: the stack has no business phoning home (and usually has no internet).
    # cwd = $DIR so nothing (e.g. a default ./mlruns or ./mlartifacts) lands in the caller's cwd.
    ( cd "$DIR" && MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
        start_bg "$NAME" "$MLFLOW_BIN" server \
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
