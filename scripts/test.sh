#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is needed, lints, then runs
#   tests/unit    pure functions (parser, codec, WAL, indexes, builders, bench harness --quick)
#   tests/server  real pymilvus against a real `shoal run`, and again through a local cluster's proxy
#   tests/compat  the conformance suite (pymilvus 3.0.x here, 2.6.x below), against standalone
#                 and through a local cluster's proxy (test_x[shoal], test_x[cluster])
#   tests/cluster a local cluster (`shoal cluster run`: etcd, 3 Kafka brokers, SeaweedFS, the roles),
#                 one per session, shared with tests/compat; its fault tests run last
#   tests/e2e     the operator on a real Kubernetes control plane (built once, cached in ~/.cache/shoal/e2e)
#                 and, marked `pods`, on a real node: kubelet + containerd running the images built
#                 from the Dockerfiles (root; SHOAL_PODS=0 skips that tier; docs/e2e.md)
#   clients/      other clients' scenarios against `shoal run`: LangChain, LlamaIndex, the Go, Node and Java
#                 SDKs (scripts/clients.sh; venvs, modules, packages and jars cached in ~/.cache/shoal)
# Extra arguments go to pytest (e.g. `-m "not e2e"` or `-k search`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"

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

echo "== client scenarios (clients/: LangChain, LlamaIndex, the Go, Node and Java SDKs)"
./scripts/clients.sh

echo "== conformance suite under pymilvus 2.6.x"
./scripts/compat-pymilvus26.sh
