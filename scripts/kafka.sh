#!/usr/bin/env bash
# Installs a Kafka broker (Maven-resolved jars, KRaft, no ZooKeeper) for the cluster and the
# ingestion tests, cached outside the repo: ~/.cache/shoal/kafka-<version>/libs. Idempotent;
# prints the libs dir. Needs Java 17+ and Maven (Maven Central only). The one implementation
# is shoal.cluster.deps (standard library only, so any python3 runs it).
set -euo pipefail
exec python3 "$(dirname "$0")/../node/shoal/cluster/deps.py" kafka-libs
