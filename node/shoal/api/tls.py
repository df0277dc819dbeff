"""TLS for both listeners, from `tls_mode` 1 (server TLS) or 2 (mutual TLS) and PEM files.

`grpc_credentials(cfg)` gives the gRPC server credentials (None: plaintext), the shape
pymilvus connects to with `secure=True` and `server_pem_path` (mode 1) or
`client_pem_path`/`client_key_path`/`ca_pem_path` (mode 2). `http_context(cfg)` gives
the management port's `ssl.SSLContext`: the same certificate; under mode 2 a client
certificate is verified when one is sent but not demanded, because Kubernetes probes
(kubelet) cannot present one and /healthz and /metrics carry no data.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from shoal.config import Config


def _read(path: str) -> bytes:
    return Path(path).expanduser().read_bytes()


def grpc_credentials(cfg: Config) -> grpc.ServerCredentials | None:
    if not cfg.tls_mode:
        return None
    http_context(cfg)  # gRPC would only say "cannot bind" about a bad PEM; ssl names the problem
    mutual = cfg.tls_mode == 2
    return grpc.ssl_server_credentials(
        [(_read(cfg.tls_key), _read(cfg.tls_cert))],
        root_certificates=_read(cfg.tls_ca) if cfg.tls_ca else None,
        require_client_auth=mutual,
    )


def http_context(cfg: Config) -> ssl.SSLContext | None:
    if not cfg.tls_mode:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(Path(cfg.tls_cert).expanduser()), str(Path(cfg.tls_key).expanduser()))
    except (ssl.SSLError, OSError) as e:
        raise OSError(f"tls_cert {cfg.tls_cert} / tls_key {cfg.tls_key} cannot be used: {e}") from None
    if cfg.tls_mode == 2:
        try:
            ctx.load_verify_locations(str(Path(cfg.tls_ca).expanduser()))
        except (ssl.SSLError, OSError) as e:
            raise OSError(f"tls_ca {cfg.tls_ca} cannot be used: {e}") from None
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
