"""Node configuration: one YAML file, overridden by `SHOAL_*` environment variables,
overridden by command-line flags (in that order of precedence, lowest first).

`load_config(path, env, overrides)` returns a validated `Config`. The server
(`shoal.server`) and the CLI (`shoal.cli`) are its only users; cluster settings (etcd,
Kafka, S3) are parsed here too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from shoal.logs import LOG_FORMATS
from shoal.storage.wal import DEFAULT_POLICY as WAL_FSYNC_DEFAULT
from shoal.storage.wal import POLICIES as WAL_FSYNC

ROLES = ("standalone", "proxy", "coord", "streaming", "query", "index")
SEGMENT_PLACEMENTS = ("copy", "share")
MAX_WAL_CHANNELS = 64
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A configuration value a human must fix; the message names the setting."""


@dataclass
class S3Config:
    endpoint: str = ""
    bucket: str = "shoal"
    access_key: str = ""
    secret_key: str = ""
    region: str = ""
    prefix: str = ""
    secure: bool = False


@dataclass
class Config:
    data_dir: Path = Path("./data")
    host: str = "0.0.0.0"
    port: int = 19530
    http_port: int = 9091
    role: str = "standalone"
    wal_fsync: str = WAL_FSYNC_DEFAULT
    segment_max_rows: int = 1_048_576
    segment_max_bytes: int = 1 << 30
    index_build_threads: int = 0  # 0: every CPU the process may use
    filter_cache_mb: int = 64
    grpc_workers: int = 16
    max_message_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"  # or "json" (shoal.logs)
    etcd_endpoints: list[str] = field(default_factory=list)
    s3: S3Config = field(default_factory=S3Config)
    # cluster roles (docs/architecture.md, "Cluster")
    kafka_bootstrap: str = ""  # host:port[,host:port]: the WAL's Kafka brokers
    kafka_username: str = ""  # SASL/PLAIN user for the brokers ("" = no authentication)
    kafka_password: str = ""
    cluster_prefix: str = "shoal/"  # etcd key prefix and Kafka topic/transactional-id prefix
    advertise_host: str = "127.0.0.1"  # the address other roles reach this one at
    node_lease_s: int = 5  # etcd lease of a role's registration: how soon a dead node is noticed
    checkpoint_interval_s: int = 300  # the WAL owner seals, writes to S3 and checkpoints at least this often
    reuse_port: bool = False  # SO_REUSEPORT on the proxy's ports: `shoal cluster` starts a replacement beside it
    drain_grace_s: int = 20  # SIGTERM: a role hands its work over and exits within this (Kubernetes waits 30 s)
    segment_placement: str = "copy"  # copy: every query node holds every sealed segment; share: divided (cluster/shares.py)
    wal_channels: int = 1  # WAL channels (Kafka partitions), set when the cluster's topic is made; collections spread over them
    # security (docs/security.md)
    authorization_enabled: bool = False
    root_password: str = ""  # used once, at the first start; empty: Milvus's default
    root_password_file: str = ""
    auth_max_failed_attempts: int = 5
    auth_failed_window_s: int = 60
    tls_mode: int = 0  # 0 plaintext, 1 server TLS, 2 mutual TLS
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # quotas, as Milvus's quotaAndLimits (0 or -1: no limit)
    max_collections_per_db: int = 65536
    max_insert_bytes: int = -1
    dml_rate_mb_per_collection: float = 0.0
    search_rate_vps_per_collection: float = 0.0
    disk_quota_mb: int = -1

    def engine_options(self) -> dict[str, Any]:
        return {
            "wal_fsync": self.wal_fsync,
            "segment_max_rows": self.segment_max_rows,
            "segment_max_bytes": self.segment_max_bytes,
            "index_build_threads": self.index_build_threads,
            "filter_cache_bytes": self.filter_cache_mb << 20,
            "max_collections_per_db": self.max_collections_per_db,
        }

    def root_password_value(self) -> str:
        """The first-start root password: the file wins over the plain setting."""
        if self.root_password_file:
            try:
                return Path(self.root_password_file).expanduser().read_text().strip()
            except OSError as e:
                raise ConfigError(f"cannot read root_password_file {self.root_password_file}: {e.strerror}") from None
        return self.root_password


_INT_KEYS = {
    "port", "http_port", "segment_max_rows", "segment_max_bytes", "index_build_threads", "filter_cache_mb",
    "grpc_workers", "max_message_bytes", "auth_max_failed_attempts", "auth_failed_window_s", "tls_mode",
    "max_collections_per_db", "max_insert_bytes", "disk_quota_mb", "node_lease_s",
    "checkpoint_interval_s", "drain_grace_s", "wal_channels",
}
_FLOAT_KEYS = {"dml_rate_mb_per_collection", "search_rate_vps_per_collection"}
_BOOL_KEYS = {"authorization_enabled", "reuse_port"}
_TOP_KEYS = {f.name for f in fields(Config)}
_S3_KEYS = {f.name for f in fields(S3Config)}


def _flatten_yaml(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept both flat keys and the nested `etcd: {endpoints: [...]}` form."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key).replace("-", "_")
        if key == "etcd" and isinstance(value, Mapping):
            if "endpoints" in value:
                out["etcd_endpoints"] = value["endpoints"]
        elif key == "s3" and isinstance(value, Mapping):
            out["s3"] = {str(k).replace("-", "_"): v for k, v in value.items()}
        else:
            out[key] = value
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    s3: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith("SHOAL_"):
            continue
        name = key[len("SHOAL_"):].lower()
        if name == "data":
            name = "data_dir"
        if name in ("etcd_endpoints", "etcd"):
            out["etcd_endpoints"] = value
        elif name.startswith("s3_") and name[3:] in _S3_KEYS:
            s3[name[3:]] = value
        elif name in _TOP_KEYS and name != "s3":
            out[name] = value
    if s3:
        out["s3"] = s3
    return out


def _coerce(cfg: Config, key: str, value: Any) -> None:
    if key not in _TOP_KEYS:
        raise ConfigError(f"unknown setting {key!r}")
    if key in _INT_KEYS:
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, got {value!r}") from None
    elif key in _FLOAT_KEYS:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    elif key in _BOOL_KEYS:
        text = str(value).strip().lower()
        if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        value = text in ("1", "true", "yes", "on")
    elif key == "data_dir":
        value = Path(str(value)).expanduser()
    elif key == "etcd_endpoints":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        value = [str(v) for v in value]
    elif key == "s3":
        if not isinstance(value, Mapping):
            raise ConfigError("s3 must be a mapping")
        s3 = cfg.s3
        for k, v in value.items():
            if k not in _S3_KEYS:
                raise ConfigError(f"unknown setting s3.{k}")
            setattr(s3, k, str(v).lower() in ("1", "true", "yes") if k == "secure" else str(v))
        return
    else:
        value = str(value)
    setattr(cfg, key, value)


def _validate(cfg: Config) -> None:
    if cfg.role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {cfg.role!r}")
    if cfg.wal_fsync not in WAL_FSYNC:
        raise ConfigError(f"wal_fsync must be one of {', '.join(WAL_FSYNC)}, got {cfg.wal_fsync!r}")
    for key in ("port", "http_port"):
        value = getattr(cfg, key)
        if not 0 <= value <= 65535:
            raise ConfigError(f"{key} must be in [0, 65535], got {value}")
    for key in ("segment_max_rows", "segment_max_bytes"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be positive, got {getattr(cfg, key)}")
    if cfg.grpc_workers < 1:
        raise ConfigError(f"grpc_workers must be positive, got {cfg.grpc_workers}")
    if cfg.max_message_bytes < 1 and cfg.max_message_bytes != -1:
        raise ConfigError(f"max_message_bytes must be positive (or -1: no limit), got {cfg.max_message_bytes}")
    if cfg.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {cfg.log_level!r}")
    if cfg.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}, got {cfg.log_format!r}")
    if cfg.index_build_threads < 0:
        raise ConfigError(f"index_build_threads must be 0 (every CPU) or more, got {cfg.index_build_threads}")
    _validate_security(cfg)
    if cfg.node_lease_s < 2:
        raise ConfigError(f"node_lease_s must be 2 or more, got {cfg.node_lease_s}")
    if cfg.checkpoint_interval_s < 1:
        raise ConfigError(f"checkpoint_interval_s must be 1 or more, got {cfg.checkpoint_interval_s}")
    if cfg.drain_grace_s < 2:
        raise ConfigError(f"drain_grace_s must be 2 or more, got {cfg.drain_grace_s}")
    if not 1 <= cfg.wal_channels <= MAX_WAL_CHANNELS:
        raise ConfigError(f"wal_channels must be 1 to {MAX_WAL_CHANNELS}, got {cfg.wal_channels}")
    if cfg.segment_placement not in SEGMENT_PLACEMENTS:
        raise ConfigError(f"segment_placement must be one of {', '.join(SEGMENT_PLACEMENTS)}, got {cfg.segment_placement!r}")
    if not cfg.cluster_prefix.endswith("/"):
        raise ConfigError(f"cluster_prefix must end with '/', got {cfg.cluster_prefix!r}")
    if cfg.filter_cache_mb < 0:
        raise ConfigError(f"filter_cache_mb must be 0 (off) or more, got {cfg.filter_cache_mb}")


def _validate_security(cfg: Config) -> None:
    if cfg.tls_mode not in (0, 1, 2):
        raise ConfigError(f"tls_mode must be 0 (off), 1 (server TLS) or 2 (mutual TLS), got {cfg.tls_mode}")
    if cfg.tls_mode and not (cfg.tls_cert and cfg.tls_key):
        raise ConfigError("tls_mode 1 and 2 need tls_cert and tls_key (PEM files)")
    if cfg.tls_mode == 2 and not cfg.tls_ca:
        raise ConfigError("tls_mode 2 (mutual TLS) needs tls_ca: the CA that signs client certificates")
    for key in ("tls_cert", "tls_key", "tls_ca"):
        path = getattr(cfg, key)
        if cfg.tls_mode and path and not Path(path).expanduser().is_file():
            raise ConfigError(f"{key} {path} is not a readable file")
    if cfg.auth_max_failed_attempts < 1 or cfg.auth_failed_window_s < 1:
        raise ConfigError("auth_max_failed_attempts and auth_failed_window_s must be positive")
    if cfg.max_collections_per_db < 1:
        raise ConfigError(f"max_collections_per_db must be positive, got {cfg.max_collections_per_db}")
    if cfg.dml_rate_mb_per_collection < 0 or cfg.search_rate_vps_per_collection < 0:
        raise ConfigError("rate limits must be 0 (off) or positive")


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """YAML file < `SHOAL_*` env < explicit overrides (CLI flags; None values ignored)."""
    cfg = Config()
    layers: list[Mapping[str, Any]] = []
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        layers.append(_flatten_yaml(raw))
    layers.append(_from_env(os.environ if env is None else env))
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    for layer in layers:
        for key, value in layer.items():
            _coerce(cfg, key, value)
    _validate(cfg)
    return cfg
