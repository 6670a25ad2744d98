#!/usr/bin/env bash
# Prepares a fresh machine for the tests and the sandbox: a venv with the package and its locked dev tools,
# promtool (Debian's prometheus package), and the local PostgreSQL/MariaDB services started if installed.
# Idempotent: safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The locked versions (scripts/lock.sh writes them), each file checked against its hash; then the package itself,
# without resolving its dependencies again and built with the locked setuptools (no unpinned download).
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install --require-hashes -r requirements/build.txt
pip_install --require-hashes -r requirements/dev.txt
pip_install --no-deps --no-build-isolation -e .

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# promtool validates the /metrics output and the alert rules.
if ! command -v promtool >/dev/null 2>&1; then
  echo "setup: installing promtool (Debian package prometheus)"
  as_root apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || echo "setup: could not install promtool; the metrics tests will say so" >&2
fi

# Headless Chromium renders the status page in the browser test.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium (Debian package chromium)"
  as_root apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || echo "setup: could not install chromium; the status page browser test will say so" >&2
fi

# Start the databases the tests use if they are installed but stopped (they run on this kind of machine).
if command -v pg_lsclusters >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "setup: starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi
if [ -x /usr/sbin/mariadbd ] && ! (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
  echo "setup: starting MariaDB"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null && break; sleep 0.5; done
fi
echo "setup: ready"
