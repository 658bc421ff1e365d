# syntax=docker/dockerfile:1
# predlog container image: one image for `predlog worker` and `predlog ingest`.
#
#   deploy/image/build.sh                 # builds it here with buildah (no registry pulls)
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm -t predlog .
#
# BASE_IMAGE must provide python3.11 with the venv module and CA certificates
# (Debian bookworm's python3 + python3-venv + ca-certificates, or python:3.11-slim-bookworm).
# Both stages use the same base, so the venv's interpreter symlinks stay valid.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build: a venv with predlog and its locked dependencies -----------------
FROM ${BASE_IMAGE} AS build
# Optional: a CA bundle path for pip (mount the host's certificate directory at build
# time when the index is reached through an intercepting proxy) and an index URL.
ARG PIP_CERT
ARG PIP_INDEX_URL
# Optional extras of pyproject.toml to add to the runtime set, e.g. `reports` (Evidently
# HTML reports, ~250 MB more) or `reports,server`; none by default.
ARG PREDLOG_EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# The compiled decoder (native/) needs a Rust toolchain and a C linker in this stage only:
# Debian bookworm's rustc-web/cargo-web (1.85; native/Cargo.toml needs 1.74).
RUN set -eu; \
    apt-get update -q; \
    apt-get install -q -y --no-install-recommends cargo-web rustc-web gcc libc6-dev; \
    rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/predlog
WORKDIR /src
# Dependencies first (cache layer keyed on the lock), then the sources.
COPY pyproject.toml constraints.txt README.md ./
COPY stream ./stream
COPY agents ./agents
COPY sinks ./sinks
COPY native ./native
RUN set -eu; \
    [ -n "${PIP_CERT:-}" ] && export PIP_CERT || unset PIP_CERT; \
    [ -n "${PIP_INDEX_URL:-}" ] && export PIP_INDEX_URL || unset PIP_INDEX_URL; \
    # the runtime set only: pyproject's `dependencies` (mlflow-skinny; no evidently, no full
    # mlflow: those are the dev venv's extras), every version from the lock
    /opt/predlog/bin/pip install -q --no-compile -c constraints.txt ".${PREDLOG_EXTRAS:+[$PREDLOG_EXTRAS]}"; \
    # the compiled decoder: built here (maturin from native/pyproject.toml), a wheel in the venv
    CARGO_HOME=/tmp/cargo /opt/predlog/bin/pip install -q --no-compile ./native; \
    rm -rf /tmp/cargo native/target; \
    /opt/predlog/bin/python -c 'import predlog_native'; \
    /opt/predlog/bin/pip check; \
    # pip and setuptools are not needed at run time
    /opt/predlog/bin/pip uninstall -q -y setuptools; \
    /opt/predlog/bin/python -m pip uninstall -q -y pip
# Slim the venv (sizes in docs/deploy.md): the test suites the big scientific wheels ship,
# C/Cython sources, headers and type stubs, and the debug symbols of extension modules
# (not of the auditwheel-vendored libraries in *.libs/, which strip can break).
RUN set -eu; \
    sp=/opt/predlog/lib/python3.11/site-packages; \
    for p in numpy scipy pandas sklearn; do \
        find "$sp/$p" -depth -type d -name tests -exec rm -rf {} +; \
    done; \
    find "$sp" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' \
        -o -name '*.h' -o -name '*.c' -o -name '*.cpp' \) -delete; \
    find "$sp" -name '*.so' -not -path '*.libs/*' -exec strip --strip-unneeded {} +; \
    find /opt/predlog -name __pycache__ -type d -prune -exec rm -rf {} +
# Byte-code for what the deployed commands import (the runtime root filesystem is read-only,
# so nothing is cached there later): `predlog --help` and the imports of the worker, ingest,
# exporter and check run with byte-code writing on; then every module of each directory
# they loaded from is compiled too (for what those packages import lazily), hash-checked: a
# timestamp .pyc goes stale when a COPY shifts its source's mtime (buildah's did, by a
# second) and would be compiled again at each start. Compiling every module of the venv
# would add ~100 MB of .pyc that nothing loads; a replay compiles its SQLite MLflow store
# (~10 MB of .pyc) in memory when run.
RUN set -eu; \
    cd /tmp; \
    unset PYTHONDONTWRITEBYTECODE; \
    /opt/predlog/bin/predlog --help >/dev/null; \
    /opt/predlog/bin/python -c 'import agents.worker, agents.ingest, agents.check, \
        agents.mlflow_exporter, agents.faust_adapter, agents.replay, sinks.elasticsearch, \
        sinks.mlflow_sink, sinks.prometheus, stream.decode.native'; \
    /opt/predlog/bin/python -c 'import pathlib, py_compile as pc; \
        [pc.compile(str(s), invalidation_mode=pc.PycInvalidationMode.CHECKED_HASH) \
         for d in list(pathlib.Path("/opt/predlog").rglob("__pycache__")) \
         for s in d.parent.glob("*.py")]'

# ---- runtime root: the base with the venv and the user, less what only installs packages
FROM ${BASE_IMAGE} AS rootfs
# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 predlog \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/predlog \
            --no-create-home --shell /usr/sbin/nologin predlog \
 && mkdir -p /var/lib/predlog \
 && chown 10001:10001 /var/lib/predlog
# apt, perl (package scripts only), glibc's iconv modules (Python has its own
# codecs) and ensurepip's wheels: nothing predlog runs uses them (~25 MB). dpkg and its
# database stay, so scanners still list the packages. The runtime below is this tree as one
# layer, so what is removed here is really gone.
RUN rm -rf /usr/bin/apt* /usr/lib/apt /usr/lib/x86_64-linux-gnu/libapt-* /etc/apt \
           /var/lib/apt /var/cache/apt /usr/bin/perl* \
           /usr/lib/x86_64-linux-gnu/perl-base /usr/share/perl5 \
           /usr/lib/x86_64-linux-gnu/gconv /usr/share/python-wheels
COPY --from=build /opt/predlog /opt/predlog

# ---- runtime -----------------------------------------------------------------
FROM scratch AS runtime
COPY --from=rootfs / /
# (ownership through a whole-tree COPY is not guaranteed everywhere: set it again)
COPY --from=rootfs --chown=10001:10001 /var/lib/predlog /var/lib/predlog
LABEL org.opencontainers.image.title="predlog" \
      org.opencontainers.image.description="Streaming prediction-log processor for ML models" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/predlog/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/predlog
# Faust keeps its table state (RocksDB/memory changelog caches) relative to the working
# directory; Kubernetes mounts an emptyDir here (and at /tmp) under a read-only root.
WORKDIR /var/lib/predlog
USER 10001:10001
# worker web/metrics port, ingest gateway port
EXPOSE 6066 8085
ENTRYPOINT ["predlog"]
CMD ["--help"]
