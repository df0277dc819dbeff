#!/usr/bin/env bash
# Docker path, step 2: apply an example MilvusCluster from manifests/examples, wait until
# the operator reports it Ready, port-forward its Service and run a pymilvus smoke test.
# Usage: smoke.sh [EXAMPLE.yaml] (default manifests/examples/standalone.yaml).
# Env: SHOAL_KIND_NAME, PYTHON (a python with pymilvus; default the repo's .venv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
NAME="${SHOAL_KIND_NAME:-shoal-e2e}"
CTX="kind-$NAME"
EXAMPLE="${1:-$REPO/manifests/examples/standalone.yaml}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
NS="${SHOAL_SMOKE_NAMESPACE:-default}"
PORT="${SHOAL_SMOKE_PORT:-19530}"

log() { printf '[kind-smoke %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
kc() { kubectl --context "$CTX" -n "$NS" "$@"; }

log "applying $EXAMPLE"
kc apply -f "$EXAMPLE"
CLUSTER="$(kc get -f "$EXAMPLE" -o jsonpath='{range .items[?(@.kind=="MilvusCluster")]}{.metadata.name}{"\n"}{end}' | head -n 1)"
if [[ -z "$CLUSTER" ]]; then
  CLUSTER="$(kc get -f "$EXAMPLE" -o jsonpath='{.metadata.name}')"
fi
log "waiting for MilvusCluster/$CLUSTER to be Ready"
kc wait --for=condition=Ready "milvuscluster/$CLUSTER" --timeout=10m

log "port-forward svc/$CLUSTER-milvus $PORT:19530"
kc port-forward "svc/$CLUSTER-milvus" "$PORT:19530" >/dev/null 2>&1 &
PF=$!
trap 'kill "$PF" 2>/dev/null || true' EXIT
for _ in $(seq 1 30); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 1
done
"$PYTHON" "$HERE/smoke.py" "http://127.0.0.1:$PORT"
log "smoke test passed"
