#!/usr/bin/env bash
# Installs everything Shoal needs on a fresh Debian machine: a venv with pinned packages,
# and (with --test) the Debian packages the test suite uses (etcd-server).
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
want_pods=0
for arg in "$@"; do
  [ "$arg" = "--test" ] && want_test=1
  [ "$arg" = "--pods" ] && want_pods=1
done
# The tests' second e2e tier (real pods, tests/e2e -m pods) runs unless SHOAL_PODS=0.
[ "$want_test" = 1 ] && [ "${SHOAL_PODS:-1}" != 0 ] && want_pods=1

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.shoal-deps-$(sha256sum pyproject.toml | cut -c1-16)-$want_test
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  if [ "$want_test" = 1 ]; then
    .venv/bin/pip install -q -e ".[cluster,operator,bench,test,ingest,examples,cjk]"
  else
    .venv/bin/pip install -q -e .
  fi
  touch "$stamp"
fi

# MovieLens-100k for the recommender example ships inside the recbole wheel; only its data
# files are read, so it is installed without its dependencies (ray, tensorboard, ...).
recbole_version=1.2.1
if [ "$want_test" = 1 ] && ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('recbole') != '$recbole_version')" 2>/dev/null; then
  .venv/bin/pip install -q --no-deps "recbole==$recbole_version"
fi

# Debian packages the tests use: etcd (meta-store tests) and fortunes (the corpus of the
# benchmark's real-embedding workload).
if [ "$want_test" = 1 ] && { ! command -v etcd >/dev/null 2>&1 || [ ! -d /usr/share/games/fortunes ]; }; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server fortunes >/dev/null
  else
    echo "missing Debian packages; install them with: sudo apt-get install etcd-server fortunes" >&2
  fi
fi

# redis-server: the cache of Argo CD's controller and repo server in the GitOps e2e
# (tests/e2e/test_argocd.py; Argo CD itself is built from its Go module by e2e/argocd/build.sh).
if [ "$want_test" = 1 ] && ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  else
    echo "missing redis-server for the Argo CD e2e; install it with: sudo apt-get install redis-server" >&2
  fi
fi

# Java and Maven: scripts/kafka.sh resolves the Kafka broker of the ingestion test from Maven
# Central into ~/.cache/shoal/kafka-<version> (once; later runs only check the cache).
if [ "$want_test" = 1 ]; then
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless maven >/dev/null
    else
      echo "missing Java/Maven for the Kafka test; install them with: sudo apt-get install default-jre-headless maven" >&2
    fi
  fi
  ./scripts/kafka.sh >/dev/null
fi

# The real-pods tier (e2e/node): a container runtime, the CNI plugins, iptables for
# kube-proxy, and buildah + mmdebstrap to build the images without Docker or a registry.
if [ "$want_pods" = 1 ]; then
  pods_pkgs="containerd runc containernetworking-plugins iptables buildah mmdebstrap"
  missing=""
  for pkg in $pods_pkgs; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      # The tier runs a containerd of its own (own socket and state), whatever the service does.
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "missing Debian packages for the pods tier; install them with: sudo apt-get install$missing" >&2
    fi
  fi
fi
