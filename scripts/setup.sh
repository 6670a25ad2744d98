#!/usr/bin/env bash
# Prepares a fresh machine for the tests: the demo's set-up (scripts/setup-demo.sh) with the locked dev tools,
# promtool (Debian's prometheus package), Chromium, and the local PostgreSQL/MariaDB services started if installed.
# Any install that fails stops here, with the command to run by hand.
# Idempotent: safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# The demo's set-up first (venv, package, PostgreSQL binaries), then the dev tools at their locked versions.
EHA_REQUIREMENTS=requirements/dev.txt scripts/setup-demo.sh
fail() { echo "setup: $1 failed; run it by hand, then again: $2" >&2; exit 1; }
APT_WAIT=(-o DPkg::Lock::Timeout=300)  # another apt run (unattended upgrades) holds the lock: wait, not fail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
apt_install() {
  { as_root apt-get "${APT_WAIT[@]}" update -qq \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get "${APT_WAIT[@]}" install -y -qq --no-install-recommends \
        "$1" >/dev/null; } || fail "installing $1" "sudo apt-get install -y $1"
}

# promtool validates the /metrics output and the alert rules.
if ! command -v promtool >/dev/null 2>&1; then
  echo "setup: installing promtool (Debian package prometheus)"
  apt_install prometheus
fi

# Headless Chromium renders the status page in the browser test.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium (Debian package chromium)"
  apt_install chromium
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
