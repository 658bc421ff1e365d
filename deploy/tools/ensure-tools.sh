#!/usr/bin/env bash
# Install (idempotently) the tools the deploy tests need. Run as root on Debian bookworm.
#   deploy/tools/ensure-tools.sh          # kubectl, promtool, amtool, chromium
#   deploy/tools/ensure-tools.sh --image  # also buildah and debootstrap (make image-test)
#   deploy/tools/ensure-tools.sh --bench  # also wrk (bench/ingest_bench.py's load client)
# Verified with: kubectl v1.32.4 (kustomize v5.5.0, the one on this machine). Debian's
# kubernetes-client (1.20.2, kustomize v2) is too old for these kustomizations: it fails
# with "cannot unmarshal object into Go struct field Kustomization.patchesStrategicMerge"
# (checked). With no kubectl on PATH the script installs it anyway and warns: use a kubectl
# >= 1.27 (or a standalone kustomize >= v5) for `kubectl kustomize`. prometheus 2.42.0+ds-5+deb12u1 (promtool), prometheus-alertmanager 0.25.0-1+b4
# (amtool), buildah 1.28.2+ds1-3+deb12u1+b3, debootstrap 1.0.128+nmu2+deb12u2;
# chromium 156.0.8078.114-1~deb12u1 (headless, for tests/deploy/test_overview_page.py);
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WITH_IMAGE=0
WITH_BENCH=0
[[ "${1:-}" == "--image" ]] && WITH_IMAGE=1
[[ "${1:-}" == "--bench" ]] && WITH_BENCH=1

log() { printf '[tools] %s\n' "$*" >&2; }
APT_UPDATED=0
ensure_apt() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  (( ${#missing[@]} )) || return 0
  if (( ! APT_UPDATED )); then apt-get update -qq; APT_UPDATED=1; fi
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

kubectl_minor() { kubectl version --client -o json 2>/dev/null \
  | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))' \
  2>/dev/null || echo 0; }

if ! command -v kubectl >/dev/null; then
  ensure_apt kubernetes-client
fi
if (( $(kubectl_minor) < 27 )); then
  log "WARNING: kubectl $(kubectl version --client 2>/dev/null | head -n1) is older than 1.27;"
  log "         'kubectl kustomize' cannot render deploy/k8s. Install a current kubectl."
fi
# promtool / amtool come with the server packages (their daemons are not started here).
ensure_apt prometheus prometheus-alertmanager curl
for pf in /run/prometheus/prometheus.pid /run/prometheus/prometheus-alertmanager.pid; do
  if [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then
    svc="$(basename "$pf" .pid)"; log "stopping the package's own $svc daemon"
    "/etc/init.d/$svc" stop >&2 || true
  fi
done
# Headless Chromium opens the replay's overview.html in tests/deploy/test_overview_page.py.
ensure_apt chromium
if (( WITH_IMAGE )); then
  ensure_apt buildah debootstrap
fi
if (( WITH_BENCH )); then
  ensure_apt wrk  # verified: wrk 4.1.0-3+b2
fi

# The Python test dependencies (kubernetes-validate, jsonschema) are dev extras in
# pyproject.toml: `make venv` installs them.
log "kubectl: $(kubectl version --client 2>/dev/null | head -n1)"
log "$(promtool --version 2>&1 | head -n1)"
log "$(amtool --version 2>&1 | head -n1)"
log "$(chromium --version 2>/dev/null | head -n1)"
(( WITH_IMAGE )) && log "$(buildah --version); debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
exit 0
