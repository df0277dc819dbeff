#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is needed, lints, runs the unit and
# server suites (real pymilvus against a real `shoal run`), the conformance suite, the
# operator's e2e on a real control plane, and the benchmark smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check node operator tests bench e2e

echo "== pytest"
pytest -q -p no:cacheprovider tests "$@"
