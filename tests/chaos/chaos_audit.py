"""The auditor: after the chaos, reads the collection back (Strong) and checks every write the
checkers saw acknowledged.

- every acknowledged insert is there exactly once; a batch whose insert raised is all there
  (once) or absent;
- every acknowledged delete is gone; a row whose delete raised is gone or there once;
- every upserted key is there once, with the last acknowledged value or the value of an attempt
  that raised after it (a failed call may still have been applied);
- the fixed rows are there once each;
- replicas agree: when the collection has more than one replica, the same queries answered by
  each replica give the same rows (`replicas` below; skipped, and said so, with one replica).
"""

from __future__ import annotations

from typing import Any

from chaos_checkers import BASE, COLL, DELETE_LO, DIM, INSERT_LO, UPSERT_KEYS, UPSERT_LO, Checkers
from pymilvus import MilvusClient

TIMEOUT_S = 120.0
WINDOW = 10_000


def _rows(client: MilvusClient, lo: int, hi: int, fields: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(lo, hi, WINDOW):
        out += client.query(COLL, filter=f"id >= {start} and id < {min(hi, start + WINDOW)}", output_fields=fields,
                            consistency_level="Strong", timeout=TIMEOUT_S)
    return out


def _counts(rows: list[dict[str, Any]]) -> dict[int, int]:
    seen: dict[int, int] = {}
    for row in rows:
        seen[int(row["id"])] = seen.get(int(row["id"]), 0) + 1
    return seen


def audit(uri: str, checkers: Checkers) -> dict[str, Any]:
    """The verdict: `ok` and, per rule, the ids that break it (first 10) and the counts checked."""
    client = MilvusClient(uri, timeout=TIMEOUT_S)
    try:
        problems: dict[str, list[Any]] = {"lost": [], "duplicated": [], "half_failed_batch": [],
                                          "delete_not_applied": [], "upsert_wrong": [], "base_wrong": []}
        base = _counts(_rows(client, 0, BASE, ["id"]))
        problems["base_wrong"] = [i for i in range(BASE) if base.get(i) != 1]

        inserted_hi = max([INSERT_LO, *checkers.inserted, *(i for b in checkers.insert_failed for i in b)]) + 1
        seen = _counts(_rows(client, INSERT_LO, inserted_hi, ["id"]))
        deleted_hi = max([DELETE_LO, *(i for i in checkers.inserted if i < INSERT_LO),
                          *(i for b in checkers.insert_failed for i in b if i < INSERT_LO)]) + 1
        seen.update(_counts(_rows(client, DELETE_LO, deleted_hi, ["id"])))
        deleted, delete_failed = set(checkers.deleted), set(checkers.delete_failed)
        for i in checkers.inserted:
            n = seen.get(i, 0)
            if i in deleted:
                if n:
                    problems["delete_not_applied"].append(i)
            elif n == 0 and i not in delete_failed:
                problems["lost"].append(i)
            elif n > 1:
                problems["duplicated"].append(i)
        for batch in checkers.insert_failed:
            present = [i for i in batch if seen.get(i)]
            if batch[0] >= INSERT_LO and len(present) not in (0, len(batch)):
                problems["half_failed_batch"].append(batch[0])
            problems["duplicated"] += [i for i in present if seen[i] > 1]

        upserted = _rows(client, UPSERT_LO, UPSERT_LO + UPSERT_KEYS, ["id", "v"])
        values: dict[int, list[int]] = {}
        for row in upserted:
            values.setdefault(int(row["id"]), []).append(int(row["v"]))
        for pk in range(UPSERT_LO, UPSERT_LO + UPSERT_KEYS):
            attempts = checkers.upserts.get(pk, [])
            acked = [i for i, (_, ok) in enumerate(attempts) if ok]
            last = acked[-1] if acked else -1
            allowed = {v for v, _ in attempts[last + 1:]} | ({attempts[last][0]} if acked else {-1})
            got = values.get(pk, [])
            if len(got) != 1 or got[0] not in allowed:
                problems["upsert_wrong"].append({"id": pk, "seen": got, "allowed": sorted(allowed)[-3:]})

        replicas = _replicas_agree(client)
        checked = {"inserts_acknowledged": len(checkers.inserted) - len(deleted),
                   "insert_batches_failed": len(checkers.insert_failed),
                   "deletes_acknowledged": len(deleted), "deletes_failed": len(delete_failed),
                   "upserts_acknowledged": sum(ok for a in checkers.upserts.values() for _, ok in a),
                   "upsert_keys": UPSERT_KEYS, "base_rows": BASE,
                   "wrong_read_answers": len(checkers.wrong_answers)}
        ok = not any(problems.values()) and not checkers.wrong_answers and replicas.get("agree", True)
        return {"ok": ok, "checked": checked, "replicas": replicas,
                "problems": {k: v[:10] for k, v in problems.items()},
                "problem_counts": {k: len(v) for k, v in problems.items()},
                "wrong_answers": [str(a)[:200] for a in checkers.wrong_answers[:5]]}
    finally:
        client.close()


def _replicas_agree(client: MilvusClient) -> dict[str, Any]:
    """With several replicas of the collection, the same reads asked twice per replica: the
    proxy spreads reads across replica groups in turn, so every group answers; all answers must
    be equal. With one replica there is nothing to compare (said so)."""
    try:
        replicas = client.describe_replica(COLL, timeout=TIMEOUT_S)
    except Exception as e:
        return {"checked": False, "why": f"describe_replica: {type(e).__name__}: {e}"[:200]}
    if len(replicas) < 2:
        return {"checked": False, "why": f"{len(replicas)} replica(s) of {COLL}: nothing to compare"}
    answers = []
    for _ in range(2 * len(replicas)):
        count = client.query(COLL, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong",
                             timeout=TIMEOUT_S)
        upserted = client.query(COLL, filter=f"id >= {UPSERT_LO} and id < {UPSERT_LO + UPSERT_KEYS}",
                                output_fields=["id", "v"], consistency_level="Strong", timeout=TIMEOUT_S)
        hits = client.search(COLL, [[0.5] * DIM], limit=10, filter=f"id < {BASE}",
                             consistency_level="Strong", timeout=TIMEOUT_S)
        answers.append((count[0]["count(*)"], sorted((int(r["id"]), int(r["v"])) for r in upserted),
                        [int(h["id"]) for h in hits[0]]))
    agree = all(a == answers[0] for a in answers)
    return {"checked": True, "agree": agree, "replicas": len(replicas), "reads": len(answers),
            "why": f"{len(replicas)} replicas, {len(answers)} rounds of the same reads: "
                   + ("all equal" if agree else f"DIFFERENT: {[a[0] for a in answers]}")}
