#!/usr/bin/env bash
# Join a real node to the e2e control plane (e2e/controlplane/up.sh): containerd with its own
# root, state and socket; kubelet and kube-proxy (iptables mode) built by
# `e2e/controlplane/build.sh --node`; CoreDNS as the cluster DNS; the bridge, host-local,
# portmap and loopback CNI plugins on a bridge and pod subnet of our own; metrics-server,
# registered as the metrics.k8s.io APIService (kubectl top, HPAs). The images from
# e2e/node/images.sh are imported into containerd's k8s.io namespace (nothing is pulled).
#
# Usage: up.sh RUN_DIR KUBECONFIG        (as root; stop it with down.sh RUN_DIR)
# Env:   SHOAL_E2E_BIN        the built binaries (default: build.sh --node)
#        SHOAL_E2E_IMAGES     the image archives (default: images.sh)
#        SHOAL_E2E_POD_CIDR   the pod subnet, a /24 (default 10.213.0.0/24)
# The node is `shoal-real-0`, labelled type=real and shoal.dev/pool=real and tainted
# shoal.dev/real=true:NoSchedule, so only pods that ask for it (nodeSelector + toleration)
# run here; the kwok nodes keep everything else.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
KUBECONFIG_PATH="$2"
NODE=shoal-real-0
POD_CIDR="${SHOAL_E2E_POD_CIDR:-10.213.0.0/24}"
PREFIX="${POD_CIDR%.*}"            # 10.213.0
GATEWAY="$PREFIX.1"
BRIDGE=shoal0
log() { printf '[node %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

[[ "$(id -u)" == 0 ]] || { log "needs root (containerd, kubelet, iptables)"; exit 1; }
for tool in containerd containerd-shim-runc-v2 runc ctr iptables ip; do
  command -v "$tool" >/dev/null || { log "missing $tool (run scripts/setup.sh --pods)"; exit 1; }
done
[[ -x /usr/lib/cni/bridge ]] || { log "missing the CNI plugins in /usr/lib/cni (scripts/setup.sh --pods)"; exit 1; }
ip link show "$BRIDGE" >/dev/null 2>&1 && { log "bridge $BRIDGE exists: another node is up (down.sh it first)"; exit 1; }

BIN="${SHOAL_E2E_BIN:-$("$HERE/../controlplane/build.sh" --node | tail -n 1)}"
IMAGES="${SHOAL_E2E_IMAGES:-$("$HERE/images.sh" | tail -n 1)}"
for b in kubelet kube-proxy coredns metrics-server kubectl; do
  [[ -x "$BIN/$b" ]] || { log "missing $BIN/$b (e2e/controlplane/build.sh --node)"; exit 1; }
done
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() {  # start NAME CMD...: a background process with its pid in RUN_DIR/NAME.pid
  local name="$1"; shift
  setsid "$@" >"$RUN_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/$name.pid"
}
NODE_IP="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
NODE_IP="${NODE_IP:-$(hostname -I | awk '{print $1}')}"
mkdir -p "$RUN_DIR"/{logs,cni/net.d,cni/ipam,containerd,kubelet,pod-logs}

# What down.sh restores: the sysctls that kubelet and the network change, and the network
# namespaces and pod log dirs present before (it removes only the ones made after).
for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory \
  kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  echo "$key=$(sysctl -n "$key" 2>/dev/null || echo)"
done > "$RUN_DIR/sysctl.before"
ls /var/run/netns 2>/dev/null > "$RUN_DIR/netns.before" || true

log "network: bridge $BRIDGE $GATEWAY, pods $POD_CIDR, node ip $NODE_IP"
ip link add "$BRIDGE" type bridge
ip addr add "$GATEWAY/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
sysctl -qw net.ipv4.ip_forward=1
# Pod -> ClusterIP -> pod on the same bridge needs bridged traffic to pass iptables.
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "no br_netfilter: kube-proxy masquerades all service traffic"
cat > "$RUN_DIR/cni/net.d/10-shoal.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "shoal-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUN_DIR/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

SOCK="$RUN_DIR/containerd/containerd.sock"
cat > "$RUN_DIR/containerd/config.toml" <<TOML
version = 2
root = "$RUN_DIR/containerd/root"
state = "$RUN_DIR/containerd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/shoal-e2e/pause:1"
  # This machine refuses negative OOM scores even to root; without this every sandbox fails.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
TOML
log "containerd ($SOCK)"
start containerd containerd --config "$RUN_DIR/containerd/config.toml"
ctrc() { ctr --address "$SOCK" --namespace k8s.io "$@"; }
for _ in $(seq 120); do ctrc version >/dev/null 2>&1 && break; sleep 0.5; done
ctrc version >/dev/null || { log "containerd did not start:"; tail -20 "$RUN_DIR/logs/containerd.log" >&2; exit 1; }
# containerd keeps each archive's content and unpacks it beside it, and the pods write on
# top: with less free than three times the archives, an import fails half-way with ENOSPC.
need_kb=$(( $(du -ck "$IMAGES"/*.tar | tail -1 | cut -f1) * 3 ))
free_kb="$(df -Pk "$RUN_DIR" | awk 'NR==2 {print $4}')"
if (( free_kb < need_kb )); then
  log "only $(( free_kb / 1024 )) MiB free under $RUN_DIR; the node needs about $(( need_kb / 1024 )) MiB"
  exit 1
fi
for archive in "$IMAGES"/*.tar; do
  log "import $(basename "$archive")"
  ctrc images import "$archive" >&2
done

log "coredns on $GATEWAY:53"
cat > "$RUN_DIR/Corefile" <<COREFILE
.:53 {
    bind $GATEWAY
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_PATH
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
}
COREFILE
start coredns "$BIN/coredns" -conf "$RUN_DIR/Corefile"
echo "nameserver $GATEWAY" > "$RUN_DIR/resolv.conf"

# Kubelet serves on the node address (metrics-server reads /metrics/resource at the node's
# InternalIP), so it authenticates callers: client certificates of the cluster's CA, tokens
# and permissions checked with kube-apiserver (webhook); no anonymous access.
KUBELET_PORT="$(free_port)"
CA_FILE="$(kc config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')"
if [[ ! -f "$CA_FILE" ]]; then
  CA_FILE="$RUN_DIR/kubelet/ca.crt"
  kc config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$CA_FILE"
fi
cat > "$RUN_DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CA_FILE}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
podCIDR: $POD_CIDR
clusterDNS: [$GATEWAY]
clusterDomain: cluster.local
resolvConf: $RUN_DIR/resolv.conf
podLogsDir: $RUN_DIR/pod-logs
registerWithTaints:
- {key: shoal.dev/real, value: "true", effect: NoSchedule}
# The images were imported, not pulled: never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
serializeImagePulls: false
YAML
log "kubelet (node $NODE)"
start kubelet "$BIN/kubelet" --config "$RUN_DIR/kubelet/config.yaml" --kubeconfig "$KUBECONFIG_PATH" \
  --root-dir "$RUN_DIR/kubelet" --cert-dir "$RUN_DIR/kubelet/pki" --hostname-override "$NODE" \
  --node-ip "$NODE_IP" --node-labels "type=real,shoal.dev/pool=real" --v=1

cat > "$RUN_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_PATH}
hostnameOverride: $NODE
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
clusterCIDR: $POD_CIDR
iptables: {masqueradeAll: true, localhostNodePorts: false, syncPeriod: 5s}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
log "kube-proxy (iptables)"
start kube-proxy "$BIN/kube-proxy" --config "$RUN_DIR/kube-proxy.yaml"

deadline=$(( SECONDS + 180 ))
until kc get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; do
  for p in containerd coredns kubelet kube-proxy; do
    kill -0 "$(cat "$RUN_DIR/$p.pid")" 2>/dev/null || { log "$p exited:"; tail -30 "$RUN_DIR/logs/$p.log" >&2; exit 1; }
  done
  (( SECONDS < deadline )) || { log "node $NODE not Ready in 180s:"; tail -30 "$RUN_DIR/logs/kubelet.log" >&2; exit 1; }
  sleep 1
done
echo "$NODE" > "$RUN_DIR/node.name"
log "node $NODE Ready"

# metrics-server as a host process (like CoreDNS: no image to build, and it reaches kubelet
# and kube-apiserver the way the node's own processes do). It scrapes kubelet at the node's
# InternalIP and status port, skipping the check of kubelet's self-signed serving
# certificate (--kubelet-insecure-tls: test clusters only). kube-apiserver reaches it through
# a selector-less Service whose Endpoints are this address; the APIService skips the check of
# metrics-server's self-signed certificate too. It scrapes every 15 s (its default: the
# resolution must exceed the 10 s kubelet request timeout).
MS_PORT="$(free_port)"
log "metrics-server on $NODE_IP:$MS_PORT"
mkdir -p "$RUN_DIR/metrics-server"
start metrics-server "$BIN/metrics-server" --kubeconfig "$KUBECONFIG_PATH" \
  --authentication-kubeconfig "$KUBECONFIG_PATH" --authorization-kubeconfig "$KUBECONFIG_PATH" \
  --bind-address "$NODE_IP" --secure-port "$MS_PORT" --cert-dir "$RUN_DIR/metrics-server" \
  --kubelet-insecure-tls --kubelet-use-node-status-port --kubelet-preferred-address-types InternalIP \
  --node-selector type=real
kc apply -f - >&2 <<YAML
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {app.kubernetes.io/part-of: shoal-e2e}}
spec:
  ports: [{name: https, port: 443, targetPort: $MS_PORT, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: metrics-server, namespace: kube-system, labels: {app.kubernetes.io/part-of: shoal-e2e}}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports: [{name: https, port: $MS_PORT, protocol: TCP}]
YAML
# kube-apiserver dials the Service's ClusterIP and keeps that connection alive. Before
# kube-proxy's DNAT rule exists the dial leaves by the default route, and a gateway that
# answers every port 443 (some sandboxes do, with 404) would hold the APIService at
# FailedDiscoveryCheck for good; so the APIService is registered only once the rule is in.
MS_IP="$(kc -n kube-system get service metrics-server -o jsonpath='{.spec.clusterIP}')"
deadline=$(( SECONDS + 60 ))
until iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -q -- "-d $MS_IP/32 .*--dport 443"; do
  (( SECONDS < deadline )) || { log "kube-proxy has no rule for $MS_IP:443 in 60s:"; tail -30 "$RUN_DIR/logs/kube-proxy.log" >&2; exit 1; }
  sleep 0.5
done
kc apply -f - >&2 <<YAML
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io, labels: {app.kubernetes.io/part-of: shoal-e2e}}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
deadline=$(( SECONDS + 120 ))
until kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null | grep -qx True; do
  kill -0 "$(cat "$RUN_DIR/metrics-server.pid")" 2>/dev/null || { log "metrics-server exited:"; tail -30 "$RUN_DIR/logs/metrics-server.log" >&2; exit 1; }
  (( SECONDS < deadline )) || { log "APIService v1beta1.metrics.k8s.io not Available in 120s:"; kc get apiservice v1beta1.metrics.k8s.io -o yaml >&2; tail -30 "$RUN_DIR/logs/metrics-server.log" >&2; exit 1; }
  sleep 1
done
log "metrics.k8s.io available"
echo "$NODE"
