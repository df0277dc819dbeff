"""Search iterator V2's state between steps: per token, the bound the last step reported (a
float32 on the wire, maybe rounded by round_decimal), its unrounded score, and the keys
returned at exactly that score, so the next step (a range search from the bound, inclusive)
skips them and loses no row that ties with the bound. Kept by the engine's reader, and by
share mode's proxy, which runs each step over every query node (`cluster/gather.py`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

ITERATOR_STATES = 4096  # live search iterators whose tie state is kept


class IteratorStates:
    def __init__(self, size: int = ITERATOR_STATES) -> None:
        self._size = size
        self._states: OrderedDict[str, tuple[float, float, frozenset]] = OrderedDict()
        self._lock = threading.Lock()

    def resume(self, token: str, bound: float) -> tuple[float, set]:
        """The unrounded bound and the keys returned at it, for a step that resumes from the
        `bound` this token's last step reported; else `bound` as given and no keys. The bound is
        compared as the float32 it was sent as: pymilvus echoes the float64 it decoded, the Java
        SDK the float32's shortest decimal ("0.7968475")."""
        state = self._states.get(token)
        if state is not None and np.float32(state[0]) == np.float32(bound):
            return state[1], set(state[2])
        return bound, set()

    def remember(self, token: str, reported: float, ids: Any, raw: np.ndarray, step: tuple[float, set]) -> None:
        """After a step that returned `ids` with unrounded scores `raw` (best first), having
        resumed from `step` (unrounded bound, keys at it)."""
        if not len(raw):
            return
        last = float(raw[-1])
        at_bound = {hashable(x) for x in np.asarray(ids)[raw == raw[-1]].tolist()}
        real_bound, seen = step
        if real_bound == last:
            at_bound |= seen
        with self._lock:
            self._states[token] = (reported, last, frozenset(at_bound))
            self._states.move_to_end(token)
            while len(self._states) > self._size:
                self._states.popitem(last=False)


def window(params: dict, bound: float, desc: bool) -> dict:
    """Search params of one step: a range search from `bound` on (inclusive), within the
    user's own radius and range_filter."""
    params = dict(params)
    radius = params.get("radius")
    user_filter = params.get("range_filter")
    if desc:
        params["radius"] = -math.inf if radius is None else float(radius)
        params["range_filter"] = bound if user_filter is None else min(bound, float(user_filter))
    else:
        params["radius"] = math.inf if radius is None else float(radius)
        params["range_filter"] = bound if user_filter is None else max(bound, float(user_filter))
    return params


def hashable(value: object) -> object:
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value
