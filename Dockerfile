# syntax=docker/dockerfile:1
# ecs-health-agent: the sidecar image. Build: docker build -t ecs-health-agent .
#
# Two stages: the builder turns the source into a wheel and installs it (with the dependency ranges declared in
# pyproject.toml) into a virtualenv; the runtime stage copies only that virtualenv. No compiler, no pip cache, no
# source tree and no curl in the final image: the container health check is the agent's own
# `ecs-health-agent healthcheck` (stdlib HTTP client).
#
# The base is pinned to a Python minor version and Debian release; for reproducible production builds pin it by
# digest as well (python:3.11-slim-bookworm@sha256:...) and let a bot such as Dependabot move the digest.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# pyproject.toml names README.md as the package's readme and LICENSE as its license file: the wheel build needs both.
COPY pyproject.toml README.md LICENSE ./
COPY agent ./agent
# Every runtime dependency (aiohttp, aiobotocore, asyncpg, aiomysql, ...) ships manylinux wheels for CPython 3.11 on
# x86_64 and arm64, so nothing is compiled here. The `sandbox` extra (moto) is deliberately not installed.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/ecs_health_agent-*.whl

FROM ${PYTHON_IMAGE}
# A fixed numeric UID/GID: Kubernetes-style runAsNonRoot checks and ECS `user` overrides can verify it without
# reading /etc/passwd, and files on mounted volumes keep a predictable owner.
RUN groupadd --system --gid 10001 agent \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin agent
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
# The agent's default AGENT_PORT: /health /ready /status /metrics.
EXPOSE 8099
# For `docker run` and docker compose only: ECS ignores an image's HEALTHCHECK and uses the task definition's
# container healthCheck (ecs/task-definition.json has the same command). /health is liveness: it never depends on
# the database, so an outage does not get the sidecar restarted.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 CMD ["ecs-health-agent", "healthcheck"]
# Exec form: the agent is PID 1 and receives ECS's SIGTERM itself; it turns /ready into `draining` (503) for
# AGENT_SHUTDOWN_GRACE_SECONDS, then exits 0. The task definition's stopTimeout must exceed that grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ecs-health-agent"]
CMD ["serve"]
