#!/usr/bin/env bash
# The chaos run of issue 19 and its report: a local cluster (2 coordinators, 2 streaming nodes
# sharing 2 WAL channels, 2 query nodes, 3 Kafka brokers) under the checkers and the scheduler's
# kills, pauses, restarts and scaling, then the auditor. Writes bench/results/<date>-chaos/report.md
# and report.json.
#   scripts/chaos.sh [--minutes 10] [--seed 19] [--replicas 2] [--wal-channels 2] [--out DIR]
# Needs what the cluster tests need (scripts/setup.sh --test). Exit 1: the issue's bar is not met.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
exec nice "$PY" tests/chaos/chaos_run.py "$@"
