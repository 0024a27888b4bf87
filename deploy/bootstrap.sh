#!/usr/bin/env bash
# Install what wattwatch needs on Debian/Ubuntu, then a virtualenv at .venv/ with the project.
# Idempotent: every step checks first and does nothing when its part is already there.
# Never edits the system's apt sources; mirrors are read from the machine's own configuration.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root or install sudo"
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

# Install the named packages that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  apt_update_once
  log "installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# True when apt knows a candidate for this package.
apt_has() {
  local cand
  cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

# --- PostgreSQL, Mosquitto, build tools -------------------------------------------------------
apt_install ca-certificates postgresql postgresql-contrib mosquitto mosquitto-clients \
  build-essential cmake dpkg-dev libssl-dev pkg-config python3 python3-venv python3-dev \
  chromium fonts-dejavu-core

pg_major=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
[ -n "$pg_major" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
pg_config_bin=/usr/lib/postgresql/$pg_major/bin/pg_config
apt_install "postgresql-server-dev-$pg_major"

# The distribution's packages start system-wide services we do not use; leave them alone.

# --- TimescaleDB ------------------------------------------------------------------------------
ts_control="$($pg_config_bin --sharedir)/extension/timescaledb.control"
if [ ! -f "$ts_control" ]; then
  apt_update_once
  if apt_has "postgresql-$pg_major-timescaledb"; then
    apt_install "postgresql-$pg_major-timescaledb"
  else
    # Debian 12 has no TimescaleDB; Debian 13's source package builds against this PostgreSQL.
    # The mirror comes from the machine's own apt sources (deb822 or one-line format).
    mirror=$(
      { grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
        grep -h -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | sed -E 's/\[[^]]*\]//' | awk '{print $2}'; } \
        | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1
    ) || true
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; install TimescaleDB for PostgreSQL $pg_major by hand"
    work=$(mktemp -d /tmp/wattwatch-timescaledb.XXXXXX)
    chmod 755 "$work"  # apt downloads as the _apt user
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial"
    printf 'deb-src %s trixie main\n' "$mirror" >"$work/sources.list"
    aptopts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
             -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0")
    log "fetching the TimescaleDB source package (suite trixie)"
    $SUDO apt-get "${aptopts[@]}" update -qq
    (cd "$work" && $SUDO apt-get "${aptopts[@]}" source -qq timescaledb >/dev/null)
    src=$(find "$work" -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)
    [ -n "$src" ] || die "apt-get source timescaledb gave no source folder"
    log "building $(basename "$src") against PostgreSQL $pg_major"
    (cd "$src" && cmake -S . -B build -DPG_CONFIG="$pg_config_bin" -DCMAKE_BUILD_TYPE=Release \
        -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DUSE_TELEMETRY=OFF \
        -DSEND_TELEMETRY_DEFAULT=OFF -DWARNINGS_AS_ERRORS=OFF >/dev/null \
      && cmake --build build -j "$(nproc)" >/dev/null \
      && $SUDO cmake --install build >/dev/null)
    [ -f "$ts_control" ] || die "TimescaleDB build finished but $ts_control is missing"
  fi
fi
log "TimescaleDB: $(grep -E '^default_version' "$ts_control" | cut -d"'" -f2) for PostgreSQL $pg_major"

# --- Python virtualenv ------------------------------------------------------------------------
python=${WATTWATCH_PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$python is older than 3.11; set WATTWATCH_PYTHON to a newer interpreter"
if [ ! -x "$repo/.venv/bin/python" ]; then
  log "creating .venv"
  "$python" -m venv "$repo/.venv"
fi
stamp="$repo/.venv/.wattwatch-installed"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ]; then
  log "installing the project into .venv"
  "$repo/.venv/bin/python" -m pip install -q --upgrade pip
  "$repo/.venv/bin/python" -m pip install -q -e "$repo[dev]"
  touch "$stamp"
fi
log "ready: $repo/.venv/bin/wattwatch"
