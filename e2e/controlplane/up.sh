#!/usr/bin/env bash
# Start a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) plus the kwok controller as local processes via `kwokctl` (binary
# runtime, no Docker), then add simulated CPU and GPU nodes and a default StorageClass.
#
# Usage: up.sh [RUN_DIR]     (default: $SHOAL_E2E_RUN_DIR or /tmp/shoal-e2e)
# Env:   SHOAL_E2E_CLUSTER   cluster name (default shoal-e2e)
#        SHOAL_E2E_BIN       directory with prebuilt binaries (default: run build.sh)
#        SHOAL_E2E_ETCD      etcd binary (default: the one build.sh made)
# Writes RUN_DIR/kubeconfig.path and prints the kubeconfig path as the last stdout line.
# Stop it with down.sh RUN_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${1:-${SHOAL_E2E_RUN_DIR:-/tmp/shoal-e2e}}"
NAME="${SHOAL_E2E_CLUSTER:-shoal-e2e}"

log() { printf '[up %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BIN="${SHOAL_E2E_BIN:-$("$HERE/build.sh" | tail -n 1)}"
# Our etcd 3.5 by default: kube-apiserver needs watch-progress support (etcd >= 3.5.13)
# for the streaming watch-lists that kwok's client uses.
ETCD="${SHOAL_E2E_ETCD:-$BIN/etcd}"
[[ -x "$ETCD" ]] || { log "etcd not found at $ETCD"; exit 1; }
KUBE_VERSION="$("$BIN/kube-apiserver" --version | awk '{print $2}')"

mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
export KWOK_WORKDIR="$RUN_DIR/kwok"
# kwokctl looks kubectl up on PATH; make sure it finds ours and never downloads one.
export PATH="$BIN:$PATH"

# Extra kube-apiserver flags, as "- key: K\n    value: V" items of one components patch.
APISERVER_ARGS=""
apiserver_arg() { APISERVER_ARGS+="
  - key: $1
    value: \"$2\""; }

# kube-apiserver bound to loopback advertises the default-route address; without a
# default route it cannot pick one, so hand it this machine's first address.
if ! awk 'NR > 1 && $2 == "00000000" { found = 1 } END { exit !found }' /proc/net/route 2>/dev/null; then
  addr="$(hostname -I 2>/dev/null | awk '{print $1}')"
  addr="${addr:-10.254.254.254}"
  log "no default route; kube-apiserver --advertise-address=$addr"
  apiserver_arg advertise-address "$addr"
fi

# Pods on a real node (e2e/node/up.sh) reach kube-apiserver at the node's address, not on
# loopback: SHOAL_E2E_BIND_ALL=1 makes it listen on every address (client certs and RBAC
# still apply).
if [[ "${SHOAL_E2E_BIND_ALL:-0}" == 1 ]]; then
  apiserver_arg bind-address 0.0.0.0
fi

# The aggregation layer (metrics-server's metrics.k8s.io on the real node): kwokctl already
# gives kube-apiserver its admin certificate as the proxy client certificate; these flags
# let the aggregated server trust the user that kube-apiserver forwards in the headers.
PKI="$KWOK_WORKDIR/clusters/$NAME/pki"
apiserver_arg requestheader-client-ca-file "$PKI/ca.crt"
apiserver_arg requestheader-allowed-names kwok-admin
apiserver_arg requestheader-username-headers X-Remote-User
apiserver_arg requestheader-group-headers X-Remote-Group
apiserver_arg requestheader-extra-headers-prefix X-Remote-Extra-

cat > "$RUN_DIR/kwokctl.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $KUBE_VERSION
  bindAddress: 127.0.0.1
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  etcdBinary: $ETCD
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kubectlBinary: $BIN/kubectl
  kwokControllerBinary: $BIN/kwok
componentsPatches:
# kwok manages only the nodes annotated kwok.x-k8s.io/node=fake (manifests/nodes.yaml): a test may
# add a node of its own whose pods something else runs (tests/e2e/standin_kubelet.py).
- name: kwok-controller
  extraArgs:
  - key: manage-all-nodes
    value: "false"
  - key: manage-nodes-with-annotation-selector
    value: kwok.x-k8s.io/node=fake
- name: kube-controller-manager
  extraArgs:
  - key: enable-hostpath-provisioner
    value: "true"
- name: kube-apiserver
  extraArgs:$APISERVER_ARGS
YAML

start=$SECONDS
if "$BIN/kwokctl" get clusters 2>/dev/null | grep -qx "$NAME"; then
  log "cluster $NAME already exists in $KWOK_WORKDIR; starting it"
  "$BIN/kwokctl" start cluster --name "$NAME" --wait 2m >&2
else
  log "creating cluster $NAME ($KUBE_VERSION) in $KWOK_WORKDIR"
  "$BIN/kwokctl" create cluster --name "$NAME" --config "$RUN_DIR/kwokctl.yaml" --wait 2m >&2
fi
KUBECONFIG_PATH="$KWOK_WORKDIR/clusters/$NAME/kubeconfig.yaml"
[[ -f "$KUBECONFIG_PATH" ]] || { log "no kubeconfig at $KUBECONFIG_PATH"; exit 1; }
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

log "control plane up after $(( SECONDS - start ))s; adding nodes and storage"
kc apply -f "$HERE/manifests/nodes.yaml" -f "$HERE/manifests/storage.yaml" >&2
kc wait --for=condition=Ready node -l type=kwok --timeout=120s >&2

# Pods need the namespace's default ServiceAccount, created by the controller-manager.
deadline=$(( SECONDS + 120 ))
until kc get serviceaccount default -n default >/dev/null 2>&1; do
  (( SECONDS < deadline )) || { log "default ServiceAccount never appeared"; exit 1; }
  sleep 1
done

echo "$KUBECONFIG_PATH" > "$RUN_DIR/kubeconfig.path"
log "ready in $(( SECONDS - start ))s: KUBECONFIG=$KUBECONFIG_PATH"
echo "$KUBECONFIG_PATH"
