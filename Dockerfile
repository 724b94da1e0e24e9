# Kapacitor with the ML UDFs: kapacitord from the official image, a Python env with the pinned
# UDF runtime at /opt/conda/envs/udfs, and the project's code at /opt/kapacitor-udfs.
#
# Build (BuildKit, the default builder of current Docker; no syntax line, so nothing is pulled
# besides the FROM images):
#   docker build -t kapacitor-ml-udfs .                               # env from conda-forge
#   docker build --build-arg PYTHON_ENV=pip -t kapacitor-ml-udfs .    # PyPI wheels, same pins
# Behind a proxy that intercepts TLS, hand its CA bundle to the steps that download, as a
# secret that is mounted for those steps only and never stored in a layer:
#   DOCKER_BUILDKIT=1 docker build --secret id=extra_ca,src=/path/to/ca.pem ...
#
# KAPACITOR_VERSION is the Kapacitor the tests run (tools/kapacitor/go.mod).
ARG KAPACITOR_VERSION=1.8.6
ARG MICROMAMBA_VERSION=2.0.5
# conda: conda-forge (conda-lock.yml when present). pip: PyPI wheels on Debian's Python 3.11.
ARG PYTHON_ENV=conda

# --- the conda env -------------------------------------------------------------------------
FROM mambaorg/micromamba:${MICROMAMBA_VERSION} AS conda-env

# conda_requirements.txt is the one list of pins (valid pip and conda specs alike); conda-lock.yml
# is optional (the bracket glob lets COPY succeed without it) and wins when present.
COPY conda_requirements.txt conda-lock.ym[l] /tmp/env/
RUN --mount=type=secret,id=extra_ca,mode=0444 \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem \
            || cp /run/secrets/extra_ca /tmp/ca.pem; \
        export MAMBA_SSL_VERIFY=/tmp/ca.pem; \
    fi; \
    if [ -f /tmp/env/conda-lock.yml ]; then \
        micromamba create --yes --prefix /opt/conda/envs/udfs --file /tmp/env/conda-lock.yml; \
    else \
        micromamba create --yes --prefix /opt/conda/envs/udfs --override-channels \
            --channel conda-forge python=3.11 --file /tmp/env/conda_requirements.txt; \
    fi \
    && micromamba clean --all --yes \
    && rm -f /tmp/ca.pem \
    && /opt/conda/envs/udfs/bin/python -c "import google.protobuf, numpy, pandas, sklearn, joblib, jsonschema"

FROM kapacitor:${KAPACITOR_VERSION} AS runtime-conda
# The env keeps its path: conda envs are not relocatable. Root-owned, world-readable.
COPY --from=conda-env --chown=0:0 /opt/conda/envs/udfs /opt/conda/envs/udfs

# --- the pip env: a venv at the same path, on Debian's Python 3.11 --------------------------
FROM kapacitor:${KAPACITOR_VERSION} AS runtime-pip
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY conda_requirements.txt /tmp/env/
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem \
            || cp /run/secrets/extra_ca /tmp/ca.pem; \
        export PIP_CERT=/tmp/ca.pem; \
    fi; \
    python3 -m venv /opt/conda/envs/udfs \
    && /opt/conda/envs/udfs/bin/pip install --no-cache-dir \
        --disable-pip-version-check --only-binary=:all: -r /tmp/env/conda_requirements.txt \
    && rm -rf /tmp/env /tmp/ca.pem \
    && /opt/conda/envs/udfs/bin/python -c "import google.protobuf, numpy, pandas, sklearn, joblib, jsonschema"

# --- the runtime image -----------------------------------------------------------------------
# hadolint ignore=DL3006
FROM runtime-${PYTHON_ENV}

# PYTHONDONTWRITEBYTECODE: the root filesystem may be read-only; the code is byte-compiled
# at build time below instead. PYTHONUNBUFFERED: UDF stderr lines reach Kapacitor's log as
# they happen. HOME: kapacitord writes a cache under $HOME/.cache (its Snowflake driver's OCSP
# responses), and the home of `kapacitor` is the data volume; /tmp is the scratch space.
ENV KAPACITOR_UDFS_HOME=/opt/kapacitor-udfs \
    KAPACITOR_DATA_DIR=/var/lib/kapacitor \
    KAPACITOR_CONF_DIR=/var/lib/kapacitor/conf \
    PATH=/opt/conda/envs/udfs/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

# Code and models: root-owned and read-only for the user that runs them (no chown).
WORKDIR /opt/kapacitor-udfs
COPY --chown=0:0 udfs/ udfs/
COPY --chown=0:0 tick_scripts/ tick_scripts/
COPY --chown=0:0 config/ config/
COPY --chown=0:0 models/ models/
COPY --chown=0:0 kapacitorkit/ kapacitorkit/
COPY --chown=0:0 entrypoint/ entrypoint/

# Make sure `kapacitor` can read everything but write nothing, whatever the umask of the
# build context was (find touches only files that need it, so no layer doubles the models),
# then byte-compile so UDFs answer Kapacitor's Info probe fast on a read-only filesystem.
RUN find /opt/kapacitor-udfs \
        \( -type d ! -perm -0555 -o -type f ! -perm -0444 -o -perm /0022 \) \
        -exec chmod a+rX,go-w {} + \
    && python -m compileall -q /opt/kapacitor-udfs/udfs /opt/kapacitor-udfs/kapacitorkit \
        /opt/kapacitor-udfs/entrypoint

# /var/lib/kapacitor is the base image's VOLUME, owned by `kapacitor`; the entrypoint writes
# the rendered kapacitor.conf under KAPACITOR_CONF_DIR there.
EXPOSE 9092

# The official image creates the system user `kapacitor` (the .deb's pre-install) and its
# /entrypoint.sh drops to it; we replace that entrypoint, so we switch to the user here.
# DL3066: the uid of `kapacitor` is picked by `useradd --system` and not fixed across base
# image builds; the name is what the image guarantees (`id kapacitor` gives the number).
# hadolint ignore=DL3066
USER kapacitor

# Healthy only when kapacitord answers on KAPACITOR_HTTP_BIND and every enabled task of
# config.json is executing (entrypoint/health.py).
HEALTHCHECK --interval=15s --timeout=10s --start-period=90s --retries=3 \
    CMD ["/opt/conda/envs/udfs/bin/python", "-m", "entrypoint.health"]

# Renders the config, starts kapacitord and defines the tasks (package entrypoint/).
# Setting ENTRYPOINT resets the base image's CMD ["kapacitord"], so no arguments are passed.
ENTRYPOINT ["/opt/conda/envs/udfs/bin/python", "-m", "entrypoint"]
