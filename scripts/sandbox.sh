#!/usr/bin/env bash
# The README's demo command: set up what the demo needs (scripts/setup-demo.sh), then run the sandbox in the
# foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-demo.sh
exec .venv/bin/ecs-health-agent sandbox "$@"
