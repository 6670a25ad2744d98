#!/usr/bin/env bash
# Installs what the bench compares against and drives load with: wrk and Debian's three Prometheus exporters.
# The exporters are run by the bench as its own processes on loopback ports; their system services are kept
# from starting (policy-rc.d) and stopped if a previous install started them. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/bin/prometheus-postgres-exporter ] || missing+=(prometheus-postgres-exporter)
[ -x /usr/bin/prometheus-mysqld-exporter ] || missing+=(prometheus-mysqld-exporter)
[ -x /usr/bin/prometheus-blackbox-exporter ] || missing+=(prometheus-blackbox-exporter)

if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/setup: installing ${missing[*]}"
  as_root apt-get update -qq >/dev/null
  # policy-rc.d exit 101 = "do not start services": the bench runs the exporters itself, with its own config.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && added_policy=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$added_policy" = 1 ]; then as_root rm -f "$policy"; fi
fi

# A system that started the packaged services anyway (systemd) would hold their default ports: stop them.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in prometheus-postgres-exporter prometheus-mysqld-exporter prometheus-blackbox-exporter; do
    as_root systemctl stop "$unit" >/dev/null 2>&1 || true
  done
fi

if [ ! -x .venv/bin/python ]; then
  echo "bench/setup: no .venv: run scripts/setup.sh first" >&2
  exit 1
fi
echo "bench/setup: ready"
