#!/usr/bin/env bash
# cargo and rustc (>= 1.74) for building native/, run by `make venv` when cargo is missing:
# as root on Debian, Debian bookworm's cargo-web/rustc-web (1.85) and a C linker from apt;
# anywhere else it says what to install (rustup, or those packages) and fails.
set -euo pipefail
command -v cargo >/dev/null && exit 0
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "[native] installing Debian packages: cargo-web rustc-web gcc libc6-dev" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    cargo-web rustc-web gcc libc6-dev >&2
  exit 0
fi
echo "need cargo and rustc >= 1.74 for native/ (rustup, or Debian's cargo-web and rustc-web)" >&2
exit 1
