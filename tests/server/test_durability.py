"""SIGKILL mid-stream loses no acknowledged write and shows no half batch."""

from __future__ import annotations

import threading
import time

import numpy as np
from conftest import ShoalProcess
from pymilvus import MilvusClient

BATCH = 20


def test_sigkill_keeps_every_acknowledged_batch(shoal_process: ShoalProcess) -> None:
    client = MilvusClient(uri=shoal_process.uri, timeout=10)
    client.create_collection("dur", dimension=4, consistency_level="Strong")
    acked_inserts: list[int] = []  # batch numbers the server acknowledged
    acked_deletes: list[int] = []
    attempted: list[int] = []
    attempted_deletes: list[int] = []
    stop = threading.Event()
    rng = np.random.default_rng(0)

    def writer() -> None:
        b = 0
        while not stop.is_set():
            rows = [{"id": b * BATCH + i, "vector": rng.random(4).tolist(), "batch": b} for i in range(BATCH)]
            attempted.append(b)
            try:
                client.insert("dur", rows)
            except Exception:
                return  # the server is gone: this batch was never acknowledged
            acked_inserts.append(b)
            if b % 3 == 2:  # delete the first half of an earlier, acknowledged batch
                victim = b - 2
                attempted_deletes.append(victim)
                try:
                    client.delete("dur", filter=f"batch == {victim} and id < {victim * BATCH + BATCH // 2}")
                except Exception:
                    return
                acked_deletes.append(victim)
            b += 1

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(2.0)
    shoal_process.kill()
    stop.set()
    t.join(30)
    client.close()
    assert len(acked_inserts) > 5, "the writer did not get going before the kill"

    shoal_process.start()
    client = MilvusClient(uri=shoal_process.uri, timeout=30)
    rows = client.query("dur", filter="id >= 0", output_fields=["batch"], consistency_level="Strong")
    present: dict[int, set[int]] = {}
    for r in rows:
        present.setdefault(r["batch"], set()).add(r["id"])
    deleted = set(acked_deletes)
    for b in acked_inserts:
        full = set(range(b * BATCH, (b + 1) * BATCH))
        if b in deleted:
            assert present.get(b) == set(range(b * BATCH + BATCH // 2, (b + 1) * BATCH)), f"batch {b}"
        elif attempted_deletes and b == attempted_deletes[-1]:
            # the delete in flight at the kill may or may not have landed, but only as a whole
            assert present.get(b) in (full, set(range(b * BATCH + BATCH // 2, (b + 1) * BATCH))), f"batch {b}"
        else:
            assert present.get(b) == full, f"batch {b}"
    for b, ids in present.items():
        if b not in acked_inserts:
            assert b == attempted[-1] and ids == set(range(b * BATCH, (b + 1) * BATCH)), "half-visible batch"
    client.close()
