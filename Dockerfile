# syntax=docker/dockerfile:1
# Kapacitor with the ML UDFs: kapacitord from the official image, plus a conda env (Python
# 3.11 and the pinned UDF runtime) and the project's code at /opt/kapacitor-udfs.
#
# Build: docker build -t kapacitor-ml-udfs .   (or: docker compose build)
#
# KAPACITOR_VERSION must be the same Kapacitor version the tests run: 1.8.6, the version
# pinned in tools/kapacitor/go.mod. Docker Hub's official `kapacitor` image is expected to
# carry a `1.8.6` tag; if it does not, build with the nearest 1.8.x tag that exists
# (--build-arg KAPACITOR_VERSION=1.8.x) and move tools/kapacitor/go.mod to the same version.
ARG KAPACITOR_VERSION=1.8.6
# mambaorg/micromamba: only used to create the env; pinned like everything else.
ARG MICROMAMBA_VERSION=2.0.5

# --- stage 1: the conda env ------------------------------------------------------------------
FROM mambaorg/micromamba:${MICROMAMBA_VERSION} AS conda

# conda-lock.yml is optional: the bracket glob lets COPY succeed when it is absent. When it
# is present (made by `make lock`, never by hand) it wins over the loose specs.
COPY conda_requirements.txt conda-lock.ym[l] /tmp/env/
RUN if [ -f /tmp/env/conda-lock.yml ]; then \
        micromamba create --yes --prefix /opt/conda/envs/udfs --file /tmp/env/conda-lock.yml; \
    else \
        micromamba create --yes --prefix /opt/conda/envs/udfs --override-channels \
            --channel conda-forge --file /tmp/env/conda_requirements.txt; \
    fi \
    && micromamba clean --all --yes \
    && /opt/conda/envs/udfs/bin/python -c "import google.protobuf, numpy, pandas, sklearn, joblib, jsonschema"

# --- stage 2: the runtime image --------------------------------------------------------------
FROM kapacitor:${KAPACITOR_VERSION}

# PYTHONDONTWRITEBYTECODE: the root filesystem may be read-only; the code is byte-compiled
# at build time below instead. PYTHONUNBUFFERED: UDF stderr lines reach Kapacitor's log as
# they happen.
ENV KAPACITOR_UDFS_HOME=/opt/kapacitor-udfs \
    KAPACITOR_DATA_DIR=/var/lib/kapacitor \
    KAPACITOR_CONF_DIR=/var/lib/kapacitor/conf \
    PATH=/opt/conda/envs/udfs/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The env must keep its path: conda envs are not relocatable. Root-owned, world-readable.
COPY --from=conda --chown=0:0 /opt/conda/envs/udfs /opt/conda/envs/udfs

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

# /var/lib/kapacitor is the base image's VOLUME, owned by `kapacitor` (made by the .deb);
# the entrypoint writes the rendered kapacitor.conf under KAPACITOR_CONF_DIR there.
EXPOSE 9092

# The official image creates the system user `kapacitor` (the kapacitor .deb's pre-install
# runs useradd) and its /entrypoint.sh drops to it with setpriv; we replace that entrypoint,
# so we switch to the same user here and never run as root.
# DL3066 ignored because the uid of `kapacitor` is picked by `useradd --system` at package
# install and is not fixed across base image builds; the name is what the image guarantees
# (and what owns the /var/lib/kapacitor volume). Look it up with `id kapacitor` if a platform
# needs a numeric runAsUser.
# hadolint ignore=DL3066
USER kapacitor

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--output", "/dev/null", \
         "http://localhost:9092/kapacitor/v1/ping"]

# Renders the config, starts kapacitord and defines the tasks (package entrypoint/).
# Setting ENTRYPOINT resets the base image's CMD ["kapacitord"], so no arguments are passed.
ENTRYPOINT ["/opt/conda/envs/udfs/bin/python", "-m", "entrypoint"]
