#!/usr/bin/env bash
# predlog's local real stack: Kafka, Elasticsearch, Prometheus, Alertmanager, MLflow.
#   stack.sh up [SERVICE...]      install what is missing, start, wait until each answers
#   stack.sh down [SERVICE...]    stop what `up` started (by pid), nothing else
#   stack.sh status [SERVICE...]  one line per service: URL, pid, health
# Each service is deploy/stack/<service>.sh with the sub-commands install|start|stop|status.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ALL=(kafka elasticsearch prometheus alertmanager mlflow)

cmd="${1:-status}"; shift || true
services=("$@"); (( ${#services[@]} )) || services=("${ALL[@]}")
for s in "${services[@]}"; do
  [[ -x "$HERE/$s.sh" ]] || { log "unknown service: $s (known: ${ALL[*]})"; exit 2; }
done

case "$cmd" in
  up)
    t0=$(date +%s)
    # Downloads and installs one at a time (apt holds a lock), then start in parallel.
    for s in "${services[@]}"; do "$HERE/$s.sh" install || { log "$s: install failed"; exit 1; }; done
    pids=()
    for s in "${services[@]}"; do "$HERE/$s.sh" start & pids+=($!); done
    rc=0
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || { rc=1; log "${services[$i]}: failed to start"; }; done
    (( rc == 0 )) || exit 1
    log "stack up in $(( $(date +%s) - t0 ))s"
    "$0" status "${services[@]}"
    ;;
  down)
    for s in "${services[@]}"; do "$HERE/$s.sh" stop; done
    ;;
  status)
    for s in "${services[@]}"; do "$HERE/$s.sh" status; done
    ;;
  *)
    echo "usage: $0 up|down|status [${ALL[*]}]" >&2; exit 2;;
esac
