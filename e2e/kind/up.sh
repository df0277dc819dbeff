#!/usr/bin/env bash
# Docker path of the e2e: a kind cluster with Shoal's images loaded and the operator
# installed from charts/shoal-operator. Needs docker, kind, kubectl and helm on PATH.
# NOT RUN in Shoal's own CI (no Docker there): see docs/e2e.md.
#
# Env: SHOAL_KIND_NAME (shoal-e2e), SHOAL_VERSION (0.1.0: tag of the node image, which the
#      operator uses by default), SHOAL_OPERATOR_IMAGE (shoal/shoal-operator:e2e),
#      SHOAL_HELM_ARGS (extra `helm install` arguments), HELM (helm binary),
#      SHOAL_KIND_IMAGES (docker: `docker build` the Dockerfiles, the default; archives:
#      load the archives of e2e/node/images.sh, the very images the pods tier runs,
#      including shoal-node:<version>-next and -broken for the upgrade tests; needs root,
#      buildah, mmdebstrap and go, as that script says).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
NAME="${SHOAL_KIND_NAME:-shoal-e2e}"
VERSION="${SHOAL_VERSION:-0.1.0}"
NODE_IMAGE="shoal/shoal-node:$VERSION"
OPERATOR_IMAGE="${SHOAL_OPERATOR_IMAGE:-shoal/shoal-operator:e2e}"
HELM="${HELM:-helm}"
CTX="kind-$NAME"

log() { printf '[kind-up %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
for tool in docker kind kubectl "$HELM"; do
  command -v "$tool" >/dev/null || { log "missing $tool on PATH"; exit 1; }
done

if kind get clusters | grep -qx "$NAME"; then
  log "kind cluster $NAME exists; reusing it"
else
  log "creating kind cluster $NAME"
  kind create cluster --name "$NAME" --config "$HERE/kind-config.yaml" --wait 3m
fi

if [[ "${SHOAL_KIND_IMAGES:-docker}" == archives ]]; then
  archives="$("$REPO/e2e/node/images.sh" | tail -1)"
  log "loading $archives/node.tar and operator.tar (shoal/shoal-operator:e2e)"
  kind load image-archive --name "$NAME" "$archives/node.tar"
  kind load image-archive --name "$NAME" "$archives/operator.tar"
else
  log "building $NODE_IMAGE and $OPERATOR_IMAGE"
  docker build -f "$REPO/Dockerfile.node" -t "$NODE_IMAGE" "$REPO"
  docker build -f "$REPO/Dockerfile.operator" -t "$OPERATOR_IMAGE" "$REPO"
  kind load docker-image --name "$NAME" "$NODE_IMAGE" "$OPERATOR_IMAGE"
fi

# Advertise one fake GPU on the GPU worker (an extended resource the kubelet keeps).
for node in $(kubectl --context "$CTX" get nodes -l shoal.dev/pool=gpu -o name); do
  kubectl --context "$CTX" patch "$node" --subresource=status --type=json \
    -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]'
done

log "installing the operator chart"
# shellcheck disable=SC2086  # SHOAL_HELM_ARGS is a list of words on purpose
"$HELM" upgrade --install shoal-operator "$REPO/charts/shoal-operator" \
  --kube-context "$CTX" --namespace shoal-system --create-namespace \
  --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" \
  --set image.pullPolicy=Never ${SHOAL_HELM_ARGS:-} --wait --timeout 5m
log "ready: kubectl --context $CTX get pods -A"
