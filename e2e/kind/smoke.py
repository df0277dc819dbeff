"""pymilvus smoke test against a Shoal endpoint (used by e2e/kind/smoke.sh): create a
collection, insert, index, load, search and query, then drop it. Exits non-zero on any
mismatch. Usage: python smoke.py http://127.0.0.1:19530"""

from __future__ import annotations

import random
import sys

from pymilvus import MilvusClient


def main(uri: str) -> None:
    client = MilvusClient(uri=uri)
    name = "e2e_smoke"
    if client.has_collection(name):
        client.drop_collection(name)
    client.create_collection(name, dimension=8, metric_type="L2")
    rng = random.Random(7)
    rows = [{"id": i, "vector": [rng.random() for _ in range(8)], "tag": f"t{i % 3}"} for i in range(200)]
    assert client.insert(name, rows)["insert_count"] == 200
    client.flush(name)
    hits = client.search(name, data=[rows[42]["vector"]], limit=3, output_fields=["tag"])[0]
    assert hits[0]["id"] == 42, hits
    got = client.query(name, filter="id in [1, 2]", output_fields=["tag"])
    assert sorted(r["tag"] for r in got) == ["t1", "t2"], got
    client.drop_collection(name)
    print(f"smoke ok: {uri}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:19530")
