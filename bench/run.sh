#!/usr/bin/env bash
# The one command: install wrk and the exporters if missing, then run every phase and write bench/RESULTS.md.
# Arguments go to the bench: --quick (a smoke run of every phase, ~3 min), --only footprint,latency, --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec .venv/bin/python -m bench "$@"
