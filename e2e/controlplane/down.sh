#!/usr/bin/env bash
# Stop and delete the kwokctl cluster that up.sh started in RUN_DIR (all its processes
# and its etcd data). Usage: down.sh [RUN_DIR]. Set SHOAL_E2E_KEEP_LOGS=1 to copy the
# component logs to RUN_DIR/logs first. Safe to run when nothing is up.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${1:-${SHOAL_E2E_RUN_DIR:-/tmp/shoal-e2e}}"
NAME="${SHOAL_E2E_CLUSTER:-shoal-e2e}"
export KWOK_WORKDIR="$RUN_DIR/kwok"

log() { printf '[down %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ ! -d "$KWOK_WORKDIR/clusters/$NAME" ]]; then
  log "no cluster $NAME under $KWOK_WORKDIR"
  exit 0
fi
BIN="${SHOAL_E2E_BIN:-$("$HERE/build.sh" | tail -n 1)}"
if [[ "${SHOAL_E2E_KEEP_LOGS:-0}" == 1 && -d "$KWOK_WORKDIR/clusters/$NAME/logs" ]]; then
  mkdir -p "$RUN_DIR/logs"
  cp -r "$KWOK_WORKDIR/clusters/$NAME/logs/." "$RUN_DIR/logs/"
  log "component logs kept in $RUN_DIR/logs"
fi
"$BIN/kwokctl" delete cluster --name "$NAME" >&2
rm -f "$RUN_DIR/kubeconfig.path"
log "cluster $NAME deleted"
