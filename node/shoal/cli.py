"""The `shoal` command line: `shoal run` starts a node and serves until SIGTERM/SIGINT.

    shoal run [--data DIR] [--port 19530] [--http-port 9091] [--config FILE]
              [--role standalone] [--host 0.0.0.0] [--wal-fsync always|batch|never]
              [--auth] [--tls-mode 0|1|2 --tls-cert F --tls-key F [--tls-ca F]]

    shoal backup create|restore|list|describe|delete|prune|verify ...   (see shoal.backup.command)
    shoal cluster run --data DIR [--port P] ...   a local cluster (see shoal.cluster.supervisor)
    shoal cluster status|scale|restart --data DIR ...   change a running local cluster

Settings come from `shoal.config` (YAML < SHOAL_* env < flags). Once serving, one line
`Shoal listening on HOST:PORT (http HOST:PORT)` goes to stdout, so `--port 0` users and
test harnesses learn the chosen ports. `--role coord|streaming|query|index|proxy` runs one
cluster role instead (`shoal.cluster.roles`; needs --etcd and --kafka); its line is
`Shoal <role> listening on HOST:PORT (http HOST:PORT)`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

# faiss's OpenMP threads must not busy-wait on a shared 2-core box; set before faiss loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from shoal import logs
from shoal.config import ROLES, WAL_FSYNC, ConfigError, load_config
from shoal.errors import ShoalError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shoal", description="Shoal: a Milvus-compatible vector database")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a node (standalone by default)")
    run.add_argument("--config", help="YAML configuration file")
    run.add_argument("--data", dest="data_dir", help="data directory")
    run.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    run.add_argument("--port", type=int, help="gRPC port (default 19530; 0 picks a free port)")
    run.add_argument("--http-port", dest="http_port", type=int, help="HTTP port for /healthz and /metrics (default 9091)")
    run.add_argument("--role", choices=ROLES, help="node role (default standalone)")
    run.add_argument("--etcd", dest="etcd_endpoints", help="cluster roles: etcd endpoints, host:port[,host:port]")
    run.add_argument("--kafka", dest="kafka_bootstrap", help="cluster roles: Kafka bootstrap servers, host:port[,...]")
    run.add_argument("--advertise-host", dest="advertise_host", help="cluster roles: the address other roles use")
    run.add_argument("--cluster-prefix", dest="cluster_prefix", help="cluster roles: etcd key / Kafka name prefix")
    run.add_argument("--wal-fsync", dest="wal_fsync", choices=WAL_FSYNC, help="WAL fsync policy")
    run.add_argument("--segment-max-rows", dest="segment_max_rows", type=int, help="rows at which a growing segment seals (default 1048576)")
    run.add_argument("--segment-max-bytes", dest="segment_max_bytes", type=int,
                     help="approximate bytes at which a growing segment seals (default 1 GiB)")
    run.add_argument("--filter-cache-mb", dest="filter_cache_mb", type=int,
                     help="memory for filter results on sealed segments, reused when a filter repeats (default 64; 0 = off)")
    run.add_argument("--index-build-threads", dest="index_build_threads", type=int,
                     help="threads one index build may use (default 0: every CPU the process may use)")
    run.add_argument("--grpc-workers", dest="grpc_workers", type=int, help="gRPC worker threads")
    run.add_argument("--log-level", dest="log_level", help="DEBUG, INFO, WARNING, ERROR")
    run.add_argument("--log-format", dest="log_format", help="text (default) or json: one JSON object per line")
    run.add_argument("--auth", dest="authorization_enabled", action="store_const", const=True,
                     help="require users and passwords (root's default password: Milvus)")
    run.add_argument("--root-password-file", dest="root_password_file",
                     help="file holding root's password, used at the first start")
    run.add_argument("--tls-mode", dest="tls_mode", type=int, choices=(0, 1, 2),
                     help="0 plaintext, 1 server TLS, 2 mutual TLS (both ports)")
    run.add_argument("--tls-cert", dest="tls_cert", help="server certificate (PEM)")
    run.add_argument("--tls-key", dest="tls_key", help="server private key (PEM)")
    run.add_argument("--tls-ca", dest="tls_ca", help="CA certificate that signs client certificates (PEM; mode 2)")
    ingest = sub.add_parser("ingest", help="feed a collection from a stream").add_subparsers(dest="source", required=True)
    kafka = ingest.add_parser("kafka", help="JSON rows from a Kafka topic, upserted by primary key")
    kafka.add_argument("--topic", required=True)
    kafka.add_argument("--collection", required=True)
    kafka.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    kafka.add_argument("--uri", default="http://127.0.0.1:19530", help="the Shoal (or Milvus) server")
    kafka.add_argument("--db", default="default")
    kafka.add_argument("--group", default="", help="consumer group (default shoal-ingest-<collection>)")
    kafka.add_argument("--batch-rows", type=int, default=5000)
    kafka.add_argument("--instance-id", default="",
                       help="static consumer-group membership: a restarted ingester resumes its partitions at once")
    kafka.add_argument("--metrics-port", type=int, default=9190, help="/metrics with the lag; -1 = off, 0 = any")
    from shoal.backup.command import add_parser as add_backup_parser

    add_backup_parser(sub)
    from shoal.cluster.supervisor import add_parser as add_cluster_parser

    add_cluster_parser(sub)
    return p


def _ingest_kafka(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from shoal.ingest.kafka import IngestConfig, KafkaIngester

    cfg = IngestConfig(
        topic=args.topic, collection=args.collection, bootstrap_servers=args.bootstrap_servers, uri=args.uri,
        database=args.db, group=args.group, batch_rows=args.batch_rows, metrics_port=args.metrics_port,
        instance_id=args.instance_id,
    )
    try:
        ingester = KafkaIngester(cfg)
    except Exception as e:
        print(f"shoal ingest: cannot start: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: ingester.stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: ingester.stop_requested.set())
    port = ingester.serve_metrics()
    print(f"Ingesting topic {cfg.topic} into {cfg.collection} (metrics port {port})", flush=True)
    ingester.run()
    return 0


def _run(args: argparse.Namespace) -> int:
    overrides = {
        k: getattr(args, k)
        for k in ("data_dir", "host", "port", "http_port", "role", "wal_fsync", "segment_max_rows",
                  "segment_max_bytes", "filter_cache_mb", "index_build_threads", "grpc_workers", "log_level", "log_format",
                  "authorization_enabled", "root_password_file", "tls_mode", "tls_cert", "tls_key", "tls_ca",
                  "etcd_endpoints", "kafka_bootstrap", "advertise_host", "cluster_prefix")
    }
    try:
        cfg = load_config(args.config, overrides=overrides)
    except ConfigError as e:
        print(f"shoal: {e}", file=sys.stderr)
        return 2
    logs.configure(cfg.log_level, cfg.log_format)
    from shoal.index import single_threaded_blas

    if cfg.role != "standalone":
        missing = [flag for flag, value in (("--etcd", cfg.etcd_endpoints), ("--kafka", cfg.kafka_bootstrap)) if not value]
        if missing and not (cfg.role == "index" and missing == ["--kafka"]):
            print(f"shoal: role {cfg.role} needs {' and '.join(missing)} (etcd_endpoints, kafka_bootstrap)", file=sys.stderr)
            return 2
        single_threaded_blas()
        from shoal.cluster.roles import run_role

        try:
            return run_role(cfg)
        except (OSError, ShoalError, ValueError) as e:
            print(f"shoal: cannot start the {cfg.role} role: {e}", file=sys.stderr)
            return 1
    from shoal.server import NodeServer

    single_threaded_blas()

    # handlers first: a SIGTERM that arrives while starting still means a clean stop
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node = NodeServer(cfg)
    try:
        node.start()
    except (OSError, ShoalError, ConfigError) as e:
        print(f"shoal: cannot start: {e}", file=sys.stderr)
        return 1
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
    print(f"Shoal listening on {shown}:{node.listen_port} (http {shown}:{node.http_port})", flush=True)

    while not stop_requested.wait(0.5):
        pass
    node.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "ingest":
        return _ingest_kafka(args)
    if args.command == "backup":
        from shoal.backup.command import run as run_backup

        return run_backup(args)
    if args.command == "cluster":
        from shoal.cluster.supervisor import run as run_cluster

        return run_cluster(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
