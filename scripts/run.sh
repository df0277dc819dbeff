#!/usr/bin/env bash
# Installs Shoal into .venv on a fresh machine, then runs the standalone server:
# gRPC on :19530, HTTP (/healthz, /metrics) on :9091, data under ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/shoal run --data "${SHOAL_DATA:-./data}" --port "${SHOAL_PORT:-19530}" "$@"
