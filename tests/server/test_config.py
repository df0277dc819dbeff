"""Configuration layering (YAML < SHOAL_* env < flags) and the CLI's process behaviour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, ShoalProcess

from shoal.config import ConfigError, load_config


def test_yaml_env_and_flags_layer(tmp_path: Path) -> None:
    cfg_file = tmp_path / "shoal.yaml"
    cfg_file.write_text(
        "data_dir: /var/lib/shoal\nport: 19600\nhttp_port: 9100\nwal_fsync: always\n"
        "etcd:\n  endpoints: [http://e1:2379, http://e2:2379]\n"
        "s3:\n  endpoint: http://s3:8333\n  bucket: vectors\n  secure: true\n"
    )
    cfg = load_config(cfg_file, env={})
    assert cfg.port == 19600 and cfg.http_port == 9100 and cfg.wal_fsync == "always"
    assert cfg.data_dir == Path("/var/lib/shoal")
    assert cfg.etcd_endpoints == ["http://e1:2379", "http://e2:2379"]
    assert cfg.s3.endpoint == "http://s3:8333" and cfg.s3.bucket == "vectors" and cfg.s3.secure
    env = {"SHOAL_PORT": "19700", "SHOAL_WAL_FSYNC": "never", "SHOAL_DATA_DIR": "/data",
           "SHOAL_ETCD_ENDPOINTS": "a:1,b:2", "SHOAL_S3_BUCKET": "other", "HOME": "/x",
           "SHOAL_FILTER_CACHE_MB": "8"}
    cfg = load_config(cfg_file, env=env)
    assert cfg.port == 19700 and cfg.wal_fsync == "never" and cfg.data_dir == Path("/data")
    assert cfg.etcd_endpoints == ["a:1", "b:2"] and cfg.s3.bucket == "other" and cfg.http_port == 9100
    cfg = load_config(cfg_file, env=env, overrides={"port": 0, "role": None})
    assert cfg.port == 0 and cfg.role == "standalone"
    assert cfg.engine_options() == {"wal_fsync": "never", "segment_max_rows": cfg.segment_max_rows,
                                    "segment_max_bytes": cfg.segment_max_bytes,
                                    "index_build_threads": cfg.index_build_threads,
                                    "filter_cache_bytes": 8 << 20, "max_collections_per_db": 65536}


@pytest.mark.parametrize(
    ("text", "message"),
    [("port: lots\n", "port must be an integer"), ("role: king\n", "role must be one of"),
     ("wal_fsync: sometimes\n", "wal_fsync"), ("colour: blue\n", "unknown setting"),
     ("filter_cache_mb: -1\n", "filter_cache_mb must be 0"), ("- a\n", "mapping"),
     ("index_build_threads: -2\n", "index_build_threads must be 0"), ("log_level: LOUD\n", "log_level must be one of"),
     ("max_message_bytes: 0\n", "max_message_bytes must be positive")],
)
def test_bad_config_is_reported(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(f, env={})


def test_cli_rejects_bad_config_with_status_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("port: lots\n")
    out = subprocess.run([sys.executable, "-m", "shoal.cli", "run", "--config", str(f)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "node")})
    assert out.returncode == 2 and "port must be an integer" in out.stderr


def test_sigterm_stops_cleanly_and_data_survives(shoal_process: ShoalProcess) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=shoal_process.uri)
    client.create_collection("term", dimension=2, consistency_level="Strong")
    client.insert("term", [{"id": i, "vector": [1.0, float(i)]} for i in range(10)])
    client.close()
    assert shoal_process.proc is not None
    start = time.monotonic()
    shoal_process.proc.send_signal(signal.SIGTERM)
    assert shoal_process.proc.wait(30) == 0
    assert time.monotonic() - start < 20
    assert "Shoal stopped" in shoal_process.tail()
    shoal_process.start()
    client = MilvusClient(uri=shoal_process.uri)
    assert client.query("term", filter="", output_fields=["count(*)"])[0]["count(*)"] == 10
    client.close()


def test_env_port_is_used_when_no_flag(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "node"), "SHOAL_PORT": "0", "SHOAL_HTTP_PORT": "0",
           "SHOAL_DATA_DIR": str(tmp_path / "d"), "SHOAL_HOST": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "shoal.cli", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("Shoal listening on 127.0.0.1:") and not line.startswith("Shoal listening on 127.0.0.1:19530")
        assert (tmp_path / "d").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "shoal.cli", "run", "--host", "127.0.0.1", "--port", str(port), "--http-port", "0",
             "--data", str(tmp_path)],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "node")},
        )
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr
