#!/usr/bin/env bash
# Docker path: delete the kind cluster made by up.sh (images stay in the local Docker).
set -euo pipefail
kind delete cluster --name "${SHOAL_KIND_NAME:-shoal-e2e}"
