#!/usr/bin/env bash
# Runs the conformance suite (tests/compat) with the last 2.x client, pymilvus 2.6.17, to prove
# the same user code works with pymilvus 2.6 and 3.0. The client venv is cached under
# ~/.cache/shoal/venv-pymilvus26; the servers (shoal, milvus-lite) still run from ./.venv.
# Usage: scripts/compat-pymilvus26.sh [--target milvus-lite|shoal] [pytest args...]
#        scripts/compat-pymilvus26.sh --install   (the client venv only, nothing runs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
install_only=0
[ "${1:-}" = "--install" ] && install_only=1
[ "$install_only" = 1 ] || [ -x .venv/bin/python ] || ./scripts/setup.sh --test
venv="${SHOAL_CACHE:-$HOME/.cache/shoal}/venv-pymilvus26"
stamp="$venv/.pymilvus-2.6.17-ml-dtypes-0.6.0"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "pymilvus==2.6.17" "pytest==9.2.0" "pytest-timeout==2.4.0" "numpy==2.4.6" "ml-dtypes==0.6.0"
  touch "$stamp"
fi
[ "$install_only" = 1 ] && exit 0
"$venv/bin/python" -c 'import pymilvus; assert pymilvus.__version__.startswith("2.6."), pymilvus.__version__; print("pymilvus", pymilvus.__version__)'
export SHOAL_BENCH_SHOAL="$root/.venv/bin/shoal"
export SHOAL_BENCH_SERVER_PYTHON="$root/.venv/bin/python"
export SHOAL_COMPAT_TARGET="${SHOAL_COMPAT_TARGET:-shoal}"  # the cluster target needs the project venv
exec "$venv/bin/python" -m pytest tests/compat -p no:cacheprovider -W ignore -q "$@"
