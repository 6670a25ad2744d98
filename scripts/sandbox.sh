#!/usr/bin/env bash
# The README's demo command: set up (venv, packages, local databases), then run the sandbox in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/ecs-health-agent sandbox "$@"
