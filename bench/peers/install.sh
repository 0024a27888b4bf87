#!/usr/bin/env bash
# Install the peers outside the repository (default /tmp/wattwatch-peers): Node-RED 4.1 with the
# pg 8 driver (npm), and mq-bridge 1.2 in a virtual environment of its own (PyPI).
set -euo pipefail
dir="${WATTWATCH_PEERS_DIR:-/tmp/wattwatch-peers}"
python="${PYTHON:-python3.11}"
mkdir -p "$dir/nodered"
(cd "$dir/nodered"; [ -f package.json ] || npm init -y >/dev/null)
(cd "$dir/nodered" && npm install --no-audit --no-fund node-red@4.1 pg@8)
[ -x "$dir/mqb-venv/bin/python" ] || "$python" -m venv "$dir/mqb-venv"
"$dir/mqb-venv/bin/pip" install mq-bridge==1.2.0
