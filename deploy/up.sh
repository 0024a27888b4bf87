#!/usr/bin/env bash
# The README's run command: install what is missing, then start the whole system on its
# embedded default (PostgreSQL+TimescaleDB, Mosquitto, the services) and show its status.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash deploy/bootstrap.sh
.venv/bin/wattwatch up
.venv/bin/wattwatch status
