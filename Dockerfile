# syntax=docker/dockerfile:1
# ecs-health-agent: the sidecar image. Build: docker build -t ecs-health-agent .
#
# Two stages: the builder installs the locked dependencies (requirements/runtime.txt, written by scripts/lock.sh: the
# versions the tests ran with, every file checked against its hash) into a virtualenv, then the agent's own wheel
# without resolving anything again; the runtime stage copies only that virtualenv. No compiler, no pip cache, no pip
# or setuptools in the virtualenv, no source tree, no sandbox code (.dockerignore keeps agent/sandbox out of the
# build context, so the wheel lacks it), no moto and no curl in the final image: the container health check is the
# agent's own `ecs-health-agent healthcheck` (stdlib HTTP client).
#
# The base is pinned to a Python minor version and Debian release; for reproducible production builds pin it by
# digest as well (python:3.11-slim-bookworm@sha256:...) and let a bot such as Dependabot move the digest.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# AWS's RDS trust bundle: the CA certificates of every commercial region (GovCloud and China publish their own; point
# this at theirs). Fetched at build time, so the image can verify an RDS endpoint's certificate: AGENT_DB_SSLROOTCERT
# points at it, which makes sslmode=verify-full the default (README, "TLS"). The build prints the file's SHA-256;
# pin it with --build-arg RDS_CA_BUNDLE_SHA256=<digest> and a changed or substituted file then fails the build
# (AWS adds a CA to the bundle now and then: update the pin when that build fails).
ARG RDS_CA_BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem

# The bundle in a stage of its own: fetching it neither waits for nor invalidates the dependency layers.
FROM ${PYTHON_IMAGE} AS rds-ca
ARG RDS_CA_BUNDLE_URL
ARG RDS_CA_BUNDLE_SHA256=
ADD ${RDS_CA_BUNDLE_URL} /ca/rds-global-bundle.pem
COPY docker/check_ca_bundle.py /ca/
# Checks the pin when one is given (else prints the digest to pin), that Python's ssl loads the file as CA
# certificates (an HTML error page would not), and makes it readable by the agent's non-root user.
RUN python /ca/check_ca_bundle.py /ca/rds-global-bundle.pem "${RDS_CA_BUNDLE_SHA256}"

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The locks first: this layer is rebuilt only when they change, not on every source edit. build.txt holds the
# installer and the wheel's build backend, runtime.txt the agent's dependencies only (no moto: the `sandbox` extra is
# not installed). Wheels only: scripts/lock.sh checks that every pin has one for amd64 and arm64, so nothing is
# compiled here. --no-deps: the lock is the whole list, nothing is resolved here.
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN python -m pip install --require-hashes --only-binary=:all: --no-deps -r requirements/build.txt \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --require-hashes --only-binary=:all: --no-deps \
      -r requirements/runtime.txt
# pyproject.toml names README.md as the package's readme and LICENSE as its license file: the wheel build needs both.
COPY pyproject.toml README.md LICENSE ./
COPY agent ./agent
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && python -m pip --python /opt/venv/bin/python install --no-deps /wheels/ecs_health_agent-*.whl

FROM ${PYTHON_IMAGE}
# A fixed numeric UID/GID: Kubernetes-style runAsNonRoot checks and ECS `user` overrides can verify it without
# reading /etc/passwd, and files on mounted volumes keep a predictable owner.
RUN groupadd --system --gid 10001 agent \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin agent
COPY --from=build /opt/venv /opt/venv
COPY --from=rds-ca /ca/rds-global-bundle.pem /etc/ecs-health-agent/rds-global-bundle.pem
# AGENT_DB_SSLROOTCERT: the RDS bundle, so a DSN without sslmode gets verify-full. For a database whose certificate
# another CA signed, set it (or ?sslrootcert= in the DSN) to that CA; AGENT_DB_SSLROOTCERT= (empty) sets none.
# MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (the resolver's getaddrinfo pool, the log writer) an
# arena of its own, up to 8 per core; two are plenty for an agent whose work is on one event loop. Measured by the
# bench (every feature on, 60 s at a 1 s interval, two runs): 0.4-0.7 MiB less RSS; a PostgreSQL-only agent, with
# one pool thread, the same. More names resolved at once (RDS, STS, Secrets Manager endpoints) mean more threads.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    AGENT_DB_SSLROOTCERT=/etc/ecs-health-agent/rds-global-bundle.pem
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
