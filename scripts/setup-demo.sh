#!/usr/bin/env bash
# What the demo (scripts/sandbox.sh) needs, and nothing more: a venv with the package and its `sandbox` extra (moto),
# at the locked versions, and the PostgreSQL server binaries the sandbox starts a throwaway cluster from. Needs no
# root when those binaries are already installed. Any install that fails stops here, with the command to run by hand.
# Idempotent: safe to run every time. scripts/setup.sh (the tests) runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
fail() { echo "setup: $1 failed; run it by hand, then again: $2" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || fail "creating the venv" "$PYTHON -m venv .venv  (Debian: apt-get install python3-venv)"
fi
# The locked versions (scripts/lock.sh writes them), each file checked against its hash; then the package itself,
# without resolving its dependencies again and built with the locked setuptools (no unpinned download).
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
# scripts/setup.sh sets EHA_REQUIREMENTS to the dev lock (a superset of the sandbox's).
for lock in requirements/build.txt "${EHA_REQUIREMENTS:-requirements/sandbox.txt}"; do
  pip_install --require-hashes -r "$lock" \
    || fail "installing $lock" ".venv/bin/python -m pip install --require-hashes -r $lock"
done
# The package itself, editable: once per pyproject.toml (a reinstall only repeats setuptools' warnings).
stamp=.venv/.eha-package-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || [ ! -x .venv/bin/ecs-health-agent ]; then
  pip_install --no-deps --no-build-isolation -e . 2>/dev/null \
    || fail "installing the package" ".venv/bin/python -m pip install --no-deps --no-build-isolation -e ."
  echo "$wanted" >"$stamp"
fi

APT_WAIT=(-o DPkg::Lock::Timeout=300)  # another apt run (unattended upgrades) holds the lock: wait, not fail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# The sandbox looks where agent/sandbox/postgres.py looks: `pg_config --bindir`, then /usr/lib/postgresql/*/bin.
has_pg_server() {
  local dir
  for dir in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && return 0
  done
  return 1
}
if ! has_pg_server; then
  echo "setup: installing the PostgreSQL server binaries (Debian package postgresql)"
  { as_root apt-get "${APT_WAIT[@]}" update -qq \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get "${APT_WAIT[@]}" install -y -qq --no-install-recommends \
        postgresql >/dev/null; } \
    || fail "installing PostgreSQL" "sudo apt-get install -y postgresql"
fi
echo "setup: the demo is ready"
