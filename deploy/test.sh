#!/usr/bin/env bash
# The README's test command: install what is missing, then lint, type-check and run the tests
# against a real PostgreSQL+TimescaleDB and Mosquitto that the test suite starts itself.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash deploy/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
