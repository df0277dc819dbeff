#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is needed, lints, then runs
#   tests/unit    pure functions (parser, codec, WAL, indexes, builders, bench harness --quick)
#   tests/server  real pymilvus against a real `shoal run`, and again through a local cluster's proxy
#   tests/compat  the conformance suite (pymilvus 3.0.x here, 2.6.x below), against standalone
#                 and through a local cluster's proxy (test_x[shoal], test_x[cluster])
#   tests/cluster a local cluster (`shoal cluster run`: etcd, 3 Kafka brokers, SeaweedFS, the roles),
#                 one per session, shared with tests/compat; its fault tests run last
#   tests/chaos   a short chaos schedule on that cluster (checkers, random kills/pauses/restarts/scaling,
#                 the auditor), after everything else (scripts/chaos.sh: the 10-minute run and its report)
#   tests/e2e     the operator on a real Kubernetes control plane (built once, cached in ~/.cache/shoal/e2e)
#                 and, marked `pods`, on a real node: kubelet + containerd running the images built
#                 from the Dockerfiles (root; SHOAL_PODS=0 skips that tier; docs/e2e.md)
#   clients/      other clients' scenarios against `shoal run`: LangChain, LlamaIndex, the Go, Node and Java
#                 SDKs (scripts/clients.sh; venvs, modules, packages and jars cached in ~/.cache/shoal)
# Extra arguments go to pytest (e.g. `-m "not e2e"` or `-k search`).
set -euo pipefail
cd "$(dirname "$0")/.."
# On a cold machine the e2e's Go builds and the client installs take tens of minutes of CPU
# and downloads (docs/e2e.md, "A cold CI"). They start here in the background, at the lowest
# priority, each in a process group of its own, beside setup and the Python tiers; warm, each
# only checks its cache. Whoever needs one waits for it: pytest's e2e conftest through the
# build scripts' locks, the client steps below with `wait`. Only the plain CI command
# (no pytest arguments) starts them.
e2e_cache="${SHOAL_E2E_CACHE:-$HOME/.cache/shoal/e2e}"
background=()
stop_background() {
  local pid
  for pid in ${background[@]+"${background[@]}"}; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_background EXIT
start_background() {  # start_background LOG COMMAND...: its pid goes to background[]
  local log=$1
  shift
  mkdir -p "$(dirname "$log")"
  setsid nice -n 19 "$@" >"$log" 2>&1 &
  background+=("$!")
}
if [ "$#" = 0 ] && [ -z "${SHOAL_E2E_KUBECONFIG:-}" ] && command -v go >/dev/null 2>&1; then
  start_background "$e2e_cache/prebuild-controlplane.log" ./e2e/controlplane/build.sh
fi
./scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
installs=""
if [ "$#" = 0 ]; then
  start_background "${SHOAL_CACHE:-$HOME/.cache/shoal}/prebuild-clients.log" \
    bash -c './scripts/clients.sh --install && ./scripts/compat-pymilvus26.sh --install'
  installs="${background[-1]}"
fi

echo "== ruff"
ruff check node operator tests bench e2e clients examples

# pytest imports a test module outside a package by its basename, so two such files with one
# name in different folders break the collection of the whole run.
dupes="$(for f in $(find tests -name 'test_*.py'); do [ -f "$(dirname "$f")/__init__.py" ] || basename "$f"; done | sort | uniq -d)"
if [ -n "$dupes" ]; then
  echo "test files must have unique basenames; these repeat: $dupes" >&2
  exit 1
fi

echo "== pytest (pymilvus 3.0.x)"
# tests/server runs against standalone and through the local cluster's proxy (docs/cluster-parity.md);
# SHOAL_SERVER_TARGET=shoal keeps it to standalone.
export SHOAL_SERVER_TARGET="${SHOAL_SERVER_TARGET:-shoal,cluster}"
pytest -q -p no:cacheprovider tests "$@"

if [ -n "$installs" ] && ! wait "$installs"; then
  echo "the background client installs failed (${SHOAL_CACHE:-$HOME/.cache/shoal}/prebuild-clients.log); the steps below retry them"
fi
echo "== client scenarios (clients/: LangChain, LlamaIndex, the Go, Node and Java SDKs)"
./scripts/clients.sh

echo "== conformance suite under pymilvus 2.6.x"
./scripts/compat-pymilvus26.sh
