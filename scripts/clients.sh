#!/usr/bin/env bash
# Runs the client scenarios of clients/: each framework through its own API against a real
# `shoal run` (the project's .venv). Each framework gets its own venv, pinned by its
# requirements file and cached under ~/.cache/shoal/venv-<name>-<hash of that file>, because
# their pymilvus pins need not match ours. Usage: scripts/clients.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[ -x .venv/bin/shoal ] || ./scripts/setup.sh --test
cache="${SHOAL_CACHE:-$HOME/.cache/shoal}"
status=0
for reqs in clients/python/requirements-*.txt; do
  name="$(basename "$reqs" .txt)"; name="${name#requirements-}"
  venv="$cache/venv-$name-$(sha256sum "$reqs" | cut -c1-12)"
  if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r "$reqs"
    touch "$venv/.complete"
  fi
  echo "== client scenarios: $name"
  SHOAL_BIN="$root/.venv/bin/shoal" "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore \
    "clients/python/test_$name.py" "$@" || status=$?
done
exit $status
