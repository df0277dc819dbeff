"""The coordinator's side of share mode (`cluster/shares.py`): the share documents.

Every round (`Coordinator._assign_loop`, 0.5 s) it reads the channel's checkpoint (which sealed
segments exist in S3, with their rows), the replica groups and what each live query node holds,
and for each replica group of each loaded collection:
- `target`: `shares.balance` over the group's live nodes (recomputed when segments appear or go,
  and when nodes join or leave);
- `serving`: `shares.serving` (a segment moves once its target holds it).
A changed document is written with version + 1; each move is logged and counted as a balance
decision (`shoal_balance_decisions_total{event="share",...}`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from shoal.cluster import placement, shares
from shoal.cluster.roles.checkpoint import checkpointed_collections
from shoal.cluster.roles.common import ClusterEnv
from shoal.cluster.rpc import RpcClient
from shoal.errors import ShoalError

log = logging.getLogger(__name__)


class ShareBalancer:
    def __init__(self, env: ClusterEnv, decide: Callable[[str, str, str], None]) -> None:
        self.env = env
        self.decide = decide
        self._clients: dict[str, RpcClient] = {}
        self.rows: dict[int, dict[int, int]] = {}  # collection id -> segment id -> rows (the last round's)

    def _held(self, addresses: dict[str, str]) -> dict[str, dict[str, set[int]]]:
        """node -> collection id -> segment ids it holds; a node that does not answer holds nothing."""
        out: dict[str, dict[str, set[int]]] = {}
        for node, address in addresses.items():
            client = self._clients.get(address)
            if client is None:
                client = self._clients[address] = RpcClient(address)
            try:
                held = client.call("share_held", timeout=2) or {}
            except ShoalError as e:
                log.info("share mode: query node %s did not say what it holds: %s", node, e.message)
                continue
            out[node] = {cid: set(ids) for cid, ids in held.items()}
        for address in set(self._clients) - set(addresses.values()):
            self._clients.pop(address).close()
        return out

    def step(self) -> None:
        groups_docs = {int(json.loads(v)["collection_id"]): json.loads(v)
                       for v in self.env.store.list_prefix(placement.PREFIX).values()}
        docs = {int(json.loads(v)["collection_id"]): json.loads(v)
                for v in self.env.store.list_prefix(shares.PREFIX).values()}
        for cid in set(docs) - set(groups_docs):  # released or dropped
            self.env.store.delete(shares.key(cid))
            self.rows.pop(cid, None)
        if not groups_docs:
            return
        ckpt = {"collections": checkpointed_collections(self.env)}  # every channel's
        live = self.env.live_nodes("query")
        # a node that left its registration but still serves (draining) keeps serving until the
        # new holder has loaded: it is asked too, at the address the document recorded
        addresses = {n: str(i["address"]) for n, i in live.items()}
        for doc in docs.values():
            for g in doc["groups"]:
                for n in set(g["serving"].values()) - set(addresses):
                    if doc["nodes"].get(n):
                        addresses[n] = doc["nodes"][n]
        held = self._held(addresses)
        for cid, gdoc in groups_docs.items():
            col = ckpt.get("collections", {}).get(str(cid), {})
            rows = {int(e["id"]): int(e["rows"]) for e in col.get("segments", [])}
            merged = {int(e["id"]): [int(s) for s in e["from"]] for e in col.get("segments", []) if e.get("from")}
            self.rows[cid] = rows
            before = docs.get(cid) or {"collection_id": cid, "version": 0, "groups": [], "nodes": {}}
            groups = []
            for i, members in enumerate(gdoc["groups"]):
                old = before["groups"][i] if i < len(before["groups"]) else {"members": [], "target": {}, "serving": {}}
                nodes = sorted(n for n in members if n in live)
                current = {int(s): n for s, n in old["target"].items()}
                target, reasons = shares.balance(rows, nodes, current)
                holds = {n: held[n].get(str(cid), set())  # this group's nodes only, the draining ones included
                         for n in {*nodes, *old["serving"].values()} if n in held}
                before_serving = {int(s): n for s, n in old["serving"].items()}
                serving = shares.serving(target, before_serving, holds, set(held))
                shares.keep_sources(serving, merged, before_serving, holds)
                for reason in reasons:
                    action = "assign" if reason.endswith("(new)") else "reload" if reason.endswith("left)") else "move"
                    self.decide("share", action, f"{gdoc['database']}.{gdoc['name']} group {i}: {reason}")
                groups.append({"members": nodes, "target": {str(s): n for s, n in sorted(target.items())},
                               "serving": {str(s): n for s, n in sorted(serving.items())}})
            named = {n for g in groups for n in [*g["target"].values(), *g["serving"].values()]}
            known = {n: str(live[n]["address"]) if n in live else before["nodes"].get(n, "") for n in sorted(named)}
            if groups != before["groups"] or known != before.get("nodes"):
                doc = {"collection_id": cid, "version": int(before["version"]) + 1, "groups": groups,
                       "nodes": known}
                self.env.put_json(shares.key(cid), doc)
                if [g["serving"] for g in groups] != [g.get("serving") for g in before["groups"]]:
                    log.info("share mode: %s.%s rows per node %s", gdoc["database"], gdoc["name"],
                             shares.rows_per_node(doc, rows))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
