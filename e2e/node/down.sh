#!/usr/bin/env bash
# Remove everything e2e/node/up.sh RUN_DIR started or changed: the node's pods and their
# containers, kube-proxy's and kubelet's iptables chains, kubelet, kube-proxy, CoreDNS,
# metrics-server and its APIService, containerd and its shims, mounts under RUN_DIR, the pods' network namespaces, the bridge,
# and the sysctls it set. Safe to run twice or after a failed up.sh.
# Usage: down.sh RUN_DIR [KUBECONFIG]   (with KUBECONFIG the node's pods are deleted first,
# so that kubelet tears them down through CNI)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="$(cd "$1" 2>/dev/null && pwd)" || exit 0
KUBECONFIG_PATH="${2:-}"
BIN="${SHOAL_E2E_BIN:-$("$HERE/../controlplane/build.sh" --node 2>/dev/null | tail -n 1)}"
NODE="$(cat "$RUN_DIR/node.name" 2>/dev/null || echo shoal-real-0)"
SOCK="$RUN_DIR/containerd/containerd.sock"
log() { printf '[node-down %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
# up.sh writes netns.before only once it has passed its checks (no other node's bridge):
# without it this run dir set nothing up, and the bridge, chains and namespaces there are
# another node's.
[[ -f "$RUN_DIR/netns.before" ]] || { log "nothing was set up in $RUN_DIR"; exit 0; }
alive() { [[ -f "$RUN_DIR/$1.pid" ]] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }
stop() {  # stop NAME: SIGTERM, then SIGKILL after 20 s
  alive "$1" || return 0
  local pid; pid="$(cat "$RUN_DIR/$1.pid")"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null
  sleep 0.5
}
ctrc() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# 0. An APIService whose server is gone makes discovery fail, and with it namespace deletion.
if [[ -n "$KUBECONFIG_PATH" && -x "$BIN/kubectl" ]]; then
  timeout 60 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" delete apiservice v1beta1.metrics.k8s.io \
    --ignore-not-found >/dev/null 2>&1
  timeout 60 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" -n kube-system delete service,endpoints \
    metrics-server --ignore-not-found >/dev/null 2>&1
fi
stop metrics-server

# 1. Let kubelet stop the pods (CNI DEL releases their addresses and namespaces).
if [[ -n "$KUBECONFIG_PATH" ]] && alive kubelet && [[ -x "$BIN/kubectl" ]]; then
  kc() { timeout 60 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
  kc cordon "$NODE" >/dev/null 2>&1
  kc delete pods -A --field-selector "spec.nodeName=$NODE" --force --grace-period=0 --wait=false >/dev/null 2>&1
  for _ in $(seq 60); do
    [[ -z "$(ctrc tasks ls -q 2>/dev/null)" ]] && break
    sleep 1
  done
  kc delete node "$NODE" --wait=false >/dev/null 2>&1
fi
stop kubelet

# 2. Whatever still runs: kill the tasks through containerd, then stop it.
if alive containerd; then
  for task in $(ctrc tasks ls -q 2>/dev/null); do ctrc tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
  sleep 1
  for task in $(ctrc tasks ls -q 2>/dev/null); do ctrc tasks delete -f "$task" >/dev/null 2>&1; done
fi
stop containerd
# Shims serving our socket that outlived their tasks.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done

# 3. kube-proxy's rules, then any KUBE-/CNI- chain left (kubelet's canaries, portmap).
stop kube-proxy
[[ -x "$BIN/kube-proxy" ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    dump="$("$ipt"-save -t "$table" 2>/dev/null)" || continue
    while read -r rule; do
      [[ -n "$rule" ]] && eval "$ipt -t $table $rule" 2>/dev/null
    done < <(grep -E '^-A [A-Z]+ .*-j (KUBE|CNI)-' <<<"$dump" | grep -vE '^-A (KUBE|CNI)-' | sed 's/^-A /-D /')
    chains="$(sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p' <<<"$dump")"
    for chain in $chains; do "$ipt" -t "$table" -F "$chain" 2>/dev/null; done
    for chain in $chains; do "$ipt" -t "$table" -X "$chain" 2>/dev/null; done
  done
done
stop coredns

# 4. Mounts under RUN_DIR (rootfs, shm, volumes), deepest first; new netns; the bridge.
grep -F " $RUN_DIR/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
for ns in $(ls /var/run/netns 2>/dev/null); do
  grep -qx "$ns" "$RUN_DIR/netns.before" 2>/dev/null || ip netns delete "$ns" 2>/dev/null
done
ip link delete shoal0 2>/dev/null
# The unpacked images (GBs): the archives stay cached, the next up.sh imports them again.
if ! grep -qF " $RUN_DIR/" /proc/mounts; then
  rm -rf "$RUN_DIR/containerd/root" "$RUN_DIR/containerd/state"
fi
if [[ -f "$RUN_DIR/sysctl.before" ]]; then
  while IFS='=' read -r key value; do
    [[ -n "$value" ]] && sysctl -qw "$key=$value" 2>/dev/null
  done < "$RUN_DIR/sysctl.before"
  rm -f "$RUN_DIR/sysctl.before"
fi
log "node $NODE removed"
exit 0
