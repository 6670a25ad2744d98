#!/usr/bin/env bash
# The test command of the README and of CI: set up, lint, type-check, check the import contract (pyproject.toml),
# scan the tracked files for secrets, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check agent tests bench
.venv/bin/ruff format --check agent tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
# The secret detectors of .pre-commit-config.yaml over every tracked file, whether or not the hook is installed.
git ls-files -z | xargs -0 .venv/bin/detect-private-key
git ls-files -z | xargs -0 .venv/bin/detect-aws-credentials --allow-missing-credentials
.venv/bin/vulture agent tests/support/vulture_whitelist.py --min-confidence 60 --exclude agent/sandbox
.venv/bin/python -m pytest "$@"
