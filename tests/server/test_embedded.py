"""`shoal.default_server` inside the test process, used the way Milvus Lite's is."""

from __future__ import annotations

import urllib.request

from pymilvus import MilvusClient, connections, utility

from shoal.server import EmbeddedServer


def test_default_server_start_use_stop() -> None:
    from shoal import default_server

    default_server.start()
    try:
        connections.connect(alias="embedded", host="127.0.0.1", port=default_server.listen_port)
        assert utility.get_server_version(using="embedded")
        connections.disconnect("embedded")
        client = MilvusClient(uri=f"http://127.0.0.1:{default_server.listen_port}")
        client.create_collection("embedded_demo", dimension=2)
        client.insert("embedded_demo", [{"id": 1, "vector": [0.0, 1.0]}])
        assert client.get("embedded_demo", ids=[1])[0]["id"] == 1
        client.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{default_server.http_port}/healthz", timeout=5) as r:
            assert r.read() == b"OK"
        assert default_server.data_dir.exists()
    finally:
        default_server.stop()
        default_server.cleanup()
    assert not default_server.running


def test_embedded_server_keeps_data_across_restarts(tmp_path) -> None:
    server = EmbeddedServer(data_dir=tmp_path / "d")
    with server:
        client = MilvusClient(uri=server.uri)
        client.create_collection("kept", dimension=2, consistency_level="Strong")
        client.insert("kept", [{"id": i, "vector": [float(i), 1.0]} for i in range(5)])
        client.close()
    assert not server.running
    with server:
        client = MilvusClient(uri=server.uri)
        assert client.query("kept", filter="", output_fields=["count(*)"])[0]["count(*)"] == 5
        client.close()
