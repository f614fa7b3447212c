# syntax=docker/dockerfile:1
# The Dagster image: the code location's gRPC code server (this CMD), and the same image runs the webserver,
# the daemon and every run task (the ECS run launcher starts `dagster api execute_run` in its container `run`),
# so the code that serves the definitions is the code that runs them. Build it from the repository root (the
# build context; /.dockerignore keeps the virtualenvs, data and .git out of it):
#
#   docker build -f deploy/docker/code-location.Dockerfile -t medallion-dagster:$(git rev-parse --short HEAD) .
#
# Other commands of the same image (ECS task definitions override CMD):
#   webserver  dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/dagster_home/workspace.yaml
#   daemon     dagster-daemon run -w /opt/dagster/dagster_home/workspace.yaml
# Nothing secret is in the image: DAGSTER_PG_*, MEDALLION_* and the PII key come from the task definitions
# (Secrets Manager), AWS credentials from the task role.

# An exact Python release on Debian bookworm, the last Debian with an OpenJDK 17 package. Not pinned by digest
# here (no registry is reachable where this file was written, and a made-up digest would be worse than none):
# the runbook's deploy step resolves this tag to its digest and pins FROM ...@sha256:<digest> in both stages.
FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY medallion_pipeline ./medallion_pipeline
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/dagster/venv \
    PATH=/opt/dagster/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home

# Java 17 for Spark: MEDALLION_SPARK_MODE=local or subprocess (and `medallion run`) start a JVM in this
# container; with emr-serverless the Spark driver runs on EMR and no JVM starts here.
# (/usr/share/man/man1 must exist for the JRE's postinst on slim images.)
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

# The locked dependencies first (a layer that changes only with the lock), then the project's wheel alone.
COPY deploy/docker/requirements-code-location.txt /opt/dagster/requirements.txt
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir -r /opt/dagster/requirements.txt
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && pip check

# A fixed uid (runAsNonRoot-style checks need a numeric user); it owns its home, DAGSTER_HOME and the working
# directory (local Spark writes scratch files there). The instance and workspace files stay root-owned, read-only.
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/dagster \
        --shell /usr/sbin/nologin dagster \
    && mkdir -p "$DAGSTER_HOME" /opt/dagster/work \
    && chown 10001:10001 "$DAGSTER_HOME" /opt/dagster/work
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/dagster_home/workspace.yaml
WORKDIR /opt/dagster/work
USER 10001:10001

# deploy/workspace.yaml: location medallion_pipeline.definitions at medallion-code:4000.
EXPOSE 4000
# For `docker run` and local checks; ECS ignores a Dockerfile HEALTHCHECK: the code server's task definition
# carries the same command as its container healthCheck.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
# `dagster code-server start` keeps serving if the definitions fail to load (the webserver shows the error) and
# reloads them on request; SIGTERM (ECS stopping the task) shuts it down.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "medallion_pipeline.definitions", "--location-name", "medallion_pipeline.definitions"]
