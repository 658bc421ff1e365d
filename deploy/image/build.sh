#!/usr/bin/env bash
# Build (and smoke-test) predlog's container image here with Debian's buildah:
# no Docker engine and no registry pulls needed.
#
#   deploy/image/build.sh [--rebuild-base] [--no-smoke] [--git-ref REF]
#
# The build context is the work tree, or with --git-ref a `git archive` of REF (e.g. HEAD:
# a reproducible build that ignores uncommitted edits; Dockerfile and .dockerignore are
# still taken from the work tree).
#
# 1. base image  localhost/predlog-base:bookworm — `debootstrap --variant=minbase` of Debian
#    bookworm with python3 (3.11), python3-venv and ca-certificates, apt caches/docs stripped,
#    imported with `FROM scratch` + ADD of the rootfs tarball. Built once, reused.
# 2. image       $PREDLOG_IMAGE (default localhost/predlog:dev) from the top-level Dockerfile
#    with BASE_IMAGE=the base above (storage driver vfs, chroot isolation; the host's CA
#    directory is mounted read-only so pip inside the build trusts what the host trusts).
# 3. smoke       `predlog --help` and `predlog replay` (the bundled sample) inside the image,
#    as its non-root user.
# Prints build seconds and image size; writes them to $WORK/build-info.txt as well.
#
# Environment: PREDLOG_IMAGE (tag), PREDLOG_IMAGE_WORK (scratch dir, default
# /tmp/predlog-image), DEBIAN_MIRROR (default: the first bookworm URI of this host's apt
# sources), BUILDAH_ROOT (container storage, default buildah's own).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE="${PREDLOG_IMAGE:-localhost/predlog:dev}"
BASE="${PREDLOG_BASE_IMAGE:-localhost/predlog-base:bookworm}"
WORK="${PREDLOG_IMAGE_WORK:-/tmp/predlog-image}"
REBUILD_BASE=0
SMOKE=1
GIT_REF=""
while (( $# )); do
  case "$1" in
    --rebuild-base) REBUILD_BASE=1 ;;
    --no-smoke) SMOKE=0 ;;
    --git-ref) GIT_REF="${2:?--git-ref needs a ref}"; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[image] %s\n' "$*" >&2; }
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { log "missing $tool: run deploy/tools/ensure-tools.sh"; exit 1; }
done

BUILDAH=(buildah --storage-driver vfs)
[[ -n "${BUILDAH_ROOT:-}" ]] && BUILDAH+=(--root "$BUILDAH_ROOT")

# The Debian mirror this host's apt already uses (no host names baked into the repo).
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    # deb822 stanzas: the URIs line of a stanza whose Suites include "bookworm"
    uri="$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && /Types:[^\n]*deb/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH);
                 sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")"
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    uri="$(awk '$1=="deb" && $3 ~ /^bookworm$/ {for(i=2;i<=NF;i++) if($i ~ /^[a-z]+:\/\//){print $i; exit}}' "$f")"
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  log "no bookworm mirror in this host's apt sources; set DEBIAN_MIRROR"; exit 1
}

image_exists() { "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1; }

build_base() {
  local rootfs="$WORK/rootfs" mirror
  mirror="$(debian_mirror)"
  log "debootstrap bookworm (minbase + python3, python3-venv, ca-certificates)"
  rm -rf "$rootfs" && mkdir -p "$WORK"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
  # slim: package caches and lists, docs, man pages, locales
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
         "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
       -exec rm -rf {} + 2>/dev/null || true
  mkdir -p "$WORK/base"
  tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
      --exclude='./sys/*' -cf "$WORK/base/rootfs.tar" .
  printf 'FROM scratch\nADD rootfs.tar /\nCMD ["/usr/bin/python3"]\n' > "$WORK/base/Containerfile"
  "${BUILDAH[@]}" bud --isolation chroot --layers=false -q -t "$BASE" \
    -f "$WORK/base/Containerfile" "$WORK/base" >/dev/null
  rm -rf "$rootfs" "$WORK/base/rootfs.tar"
  log "base image $BASE ready"
}

mkdir -p "$WORK/base"
if (( REBUILD_BASE )) || ! image_exists "$BASE"; then
  t0=$(date +%s); build_base; base_s=$(( $(date +%s) - t0 ))
else
  base_s=0; log "reusing base image $BASE (--rebuild-base to redo it)"
fi

# pip's CA bundle: what this host's pip uses (PIP_CERT / pip.conf), inside the mounted dir.
PIP_CERT_PATH="${PIP_CERT:-}"
if [[ -z "$PIP_CERT_PATH" ]] && command -v pip3 >/dev/null; then
  PIP_CERT_PATH="$(pip3 config get global.cert 2>/dev/null || true)"
fi
BUILD_ARGS=(--build-arg "BASE_IMAGE=$BASE")
VOLUMES=()
if [[ -d /etc/ssl/certs ]]; then
  VOLUMES+=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
  [[ -z "$PIP_CERT_PATH" ]] && PIP_CERT_PATH=/etc/ssl/certs/ca-certificates.crt
fi
[[ -n "$PIP_CERT_PATH" ]] && BUILD_ARGS+=(--build-arg "PIP_CERT=$PIP_CERT_PATH")
[[ -n "${PIP_INDEX_URL:-}" ]] && BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")

CONTEXT="$REPO_DIR"
if [[ -n "$GIT_REF" ]]; then
  CONTEXT="$WORK/context"
  rm -rf "$CONTEXT" && mkdir -p "$CONTEXT"
  git -C "$REPO_DIR" archive --format=tar "$GIT_REF" | tar -x -C "$CONTEXT"
  cp "$REPO_DIR/Dockerfile" "$REPO_DIR/.dockerignore" "$CONTEXT/"
  log "context: git archive of $GIT_REF ($(git -C "$REPO_DIR" rev-parse --short "$GIT_REF"))"
fi

log "building $IMAGE from $REPO_DIR/Dockerfile (base $BASE)"
t0=$(date +%s)
"${BUILDAH[@]}" bud --isolation chroot --layers=false --pull=never \
  "${VOLUMES[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" -f "$CONTEXT/Dockerfile" "$CONTEXT" \
  > "$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; exit 1; }
build_s=$(( $(date +%s) - t0 ))

# uncompressed bytes: the sum of the stored (tar) layers of the image's manifest
size_bytes="$("${BUILDAH[@]}" inspect --type image "$IMAGE" | python3 -c \
  'import json, sys; print(sum(l["size"] for l in json.loads(json.load(sys.stdin)["Manifest"])["layers"]))' \
  2>/dev/null || true)"
size_human="$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE" | head -n1)"
base_size="$("${BUILDAH[@]}" images --format '{{.Size}}' "$BASE" | head -n1)"
{
  echo "image=$IMAGE"
  echo "base=$BASE"
  echo "base_build_seconds=$base_s"
  echo "build_seconds=$build_s"
  echo "size=$size_human"
  echo "size_bytes=${size_bytes:-unknown}"
  echo "base_size=$base_size"
} | tee "$WORK/build-info.txt" >&2

if (( SMOKE )); then
  ctr="$("${BUILDAH[@]}" from --pull=never "$IMAGE")"
  trap '"${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
  # buildah run ignores the image's USER for --isolation chroot unless told: run as 10001.
  run() { "${BUILDAH[@]}" run --isolation chroot --user 10001:10001 "$ctr" -- "$@"; }
  log "smoke: id; predlog --help; predlog replay"
  run id
  run predlog --help
  run predlog replay
fi
log "done: $IMAGE (${build_s}s, $size_human)"
