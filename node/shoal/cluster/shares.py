"""Share mode (`segment_placement: share`): which query node of a replica group holds which sealed segment.

The coordinator (`roles/coord.py`) is the only writer of one etcd document per loaded
collection, `shares/<collection id>`:
    collection_id, version (grows on every change)
    groups   one per replica group (the order of `replicas/<collection id>`), each
             {"members": [its live nodes], "target": {segment id: node}, "serving": {segment id: node}}
    nodes    {node: address} of every node named, so a proxy still reaches a draining node
Only segments a committed checkpoint names are shared out (any node can load them from S3);
the rest (growing data, segments sealed since the checkpoint) every node holds, and one node
per group answers for them (`read_shares`). `target` is where a segment should be, balanced by
rows; `serving` is where reads go: a segment moves there only once its new node reports holding
it, and its old node releases it only after that, so a read never meets a gap or a duplicate.

Compaction: the owner merges only segments its committed checkpoint names, then checkpoints
(`from` in the merged segment's entry); query nodes do not repeat the merge, they keep the
sources. While no node holds a merged segment it is targeted but not served and its sources
stay served where they were (`keep_sources`); once its node holds it, one version serves it and
drops the sources, which their nodes then release. The node answering for the unnamed rest
leaves out merged segments and sources whose merged segment the read's document names.
"""

from __future__ import annotations

from typing import Any

PREFIX = "shares/"
SPREAD = 0.1  # segments move while a node is more than 10 % off the mean rows (so all end well within 20 %)


def key(collection_id: int) -> str:
    return f"{PREFIX}{collection_id}"


def balance(rows: dict[int, int], nodes: list[str], current: dict[int, str]) -> tuple[dict[int, str], list[str]]:
    """Assign every segment (id -> rows) to one of `nodes`: segments keep their node while it is in
    `nodes`; the others go, largest first, to the node with the fewest rows; then, while the
    fullest node is more than `SPREAD` above the mean (or the emptiest below it), its segment
    that best evens the two moves. Returns the assignment and why each move was made."""
    if not nodes:
        return {}, []
    out = {s: n for s, n in current.items() if s in rows and n in nodes}
    load = dict.fromkeys(nodes, 0)
    for s, n in out.items():
        load[n] += rows[s]
    reasons: list[str] = []
    for s in sorted((s for s in rows if s not in out), key=lambda s: (-rows[s], s)):
        n = min(nodes, key=lambda n: (load[n], n))
        out[s] = n
        load[n] += rows[s]
        gone = current.get(s)
        reasons.append(f"segment {s} ({rows[s]} rows) -> {n}" + (f" ({gone} left)" if gone else " (new)"))
    mean = sum(load.values()) / len(nodes)
    for _ in range(len(rows)):
        hi = max(nodes, key=lambda n: (load[n], n))
        lo = min(nodes, key=lambda n: (load[n], n))
        if load[hi] - mean <= SPREAD * mean and mean - load[lo] <= SPREAD * mean:
            break
        gap = load[hi] - load[lo]
        movable = [s for s, n in out.items() if n == hi and 0 < rows[s] < gap]
        if not movable:
            break
        s = min(movable, key=lambda s: (abs(gap - 2 * rows[s]), s))
        out[s] = lo
        load[hi] -= rows[s]
        load[lo] += rows[s]
        reasons.append(f"segment {s} ({rows[s]} rows) {hi} -> {lo} (rows {load[hi] + rows[s]} vs {load[lo] - rows[s]}, "
                       f"mean {mean:.0f})")
    return out, reasons


def serving(target: dict[int, str], before: dict[int, str], holds: dict[str, set[int]],
            live: set[str]) -> dict[int, str]:
    """Where reads of each segment go: its target once the target holds it; else the node that
    served it while that one still answers (`live`: a draining node too) and holds it; else any
    holder; else the target (its reads then retry until it has loaded)."""
    out: dict[int, str] = {}
    for s, t in target.items():
        old = before.get(s)
        if s in holds.get(t, ()):
            out[s] = t
        elif old is not None and old in live and s in holds.get(old, ()):
            out[s] = old
        else:
            out[s] = next((n for n in sorted(holds) if n in live and s in holds[n]), t)
    return out


def keep_sources(serving: dict[int, str], merged: dict[int, list[int]], before: dict[int, str],
                 holds: dict[str, set[int]]) -> None:
    """A compaction's target that no node holds yet is not served: its sources stay served (the
    owner merged them; query nodes do not repeat it), each where it was while that node still
    holds it, else by a node holding it, so no document version answers those rows twice or not
    at all. Once a node holds the target, one version serves it and drops the sources; a source
    no node holds any more leaves the target served at its node (reads retry until it loaded)."""
    for t, sources in merged.items():
        if t not in serving or any(t in h for h in holds.values()):
            continue
        kept: dict[int, str] = {}
        for s in sources:
            old = before.get(s)
            node = old if old is not None and s in holds.get(old, ()) else next(
                (n for n in sorted(holds) if s in holds[n]), None)
            if node is None:
                break
            kept[s] = node
        else:
            del serving[t]
            serving.update(kept)


def read_shares(group: dict[str, Any], nodes: list[str]) -> dict[str, dict[str, Any]]:
    """Per node of a group, what it answers for in one gathered read: `mine`, the segments it
    serves; `others`, those another node serves; `rest`, whether it also answers for every segment
    the document does not name (growing data, segments sealed since the checkpoint): the first
    node, by name, of the group, or of the nodes named in `serving` when the group has none."""
    serving_map = {int(s): n for s, n in group.get("serving", {}).items()}
    named = sorted(set(nodes) | set(serving_map.values()))
    if not named:
        return {}
    rest_node = sorted(nodes)[0] if nodes else named[0]
    out = {}
    for n in named:
        mine = sorted(s for s, m in serving_map.items() if m == n)
        if not mine and n != rest_node:
            continue
        out[n] = {"mine": mine, "others": sorted(s for s, m in serving_map.items() if m != n), "rest": n == rest_node}
    return out


def rows_per_node(doc: dict[str, Any], rows: dict[int, int]) -> list[dict[str, int]]:
    """Per group, the rows each node serves (for `shoal cluster status` and the logs)."""
    out = []
    for group in doc.get("groups", []):
        load: dict[str, int] = {}
        for s, n in group.get("serving", {}).items():
            load[n] = load.get(n, 0) + rows.get(int(s), 0)
        out.append(load)
    return out
