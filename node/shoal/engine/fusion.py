"""How a hybrid search fuses its sub searches' ranked hits into one score per entity: Milvus's
RRF and weighted rerank strategies, or a decay function reranker's "best greater-is-better
score" (scaled afterwards by the caller). One rule for both readers of it: the engine's hybrid
search (hits keyed by segment position and row) and share mode's proxy, which fuses the sub
searches it gathered from the query nodes (hits keyed by primary key).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from shoal.engine.requests import RerankSpec, SearchRequest
from shoal.engine.rerank import fusion_params, normalize, to_greater
from shoal.errors import invalid


@dataclass(frozen=True)
class Fusion:
    strategy: str  # rrf | weighted | decay
    weights: tuple[float, ...]
    rrf_k: float
    norm: bool

    def add(self, fused: dict[Hashable, float], sub: int, metric: str, keys: Sequence[Hashable],
            scores: Sequence[float]) -> None:
        """Fold one sub search's ranked hits of one query (best first) into `fused`."""
        for rank, (key, score) in enumerate(zip(keys, scores, strict=True)):
            if self.strategy == "rrf":
                add = 1.0 / (self.rrf_k + rank + 1)
            elif self.strategy == "weighted":
                add = self.weights[sub] * (normalize(score, metric) if self.norm else score)
            else:  # decay: the best "greater is better" score of any sub search, scaled later
                greater = float(to_greater(np.array([score]), metric)[0])
                fused[key] = max(fused.get(key, -math.inf), greater)
                continue
            fused[key] = fused.get(key, 0.0) + add


def check_subs(requests: list[SearchRequest]) -> None:
    """A hybrid search has sub searches, all of the same number of queries."""
    if not requests:
        raise invalid("hybrid search needs at least one sub search request")
    if any(len(r.queries) != len(requests[0].queries) for r in requests):
        raise invalid("all sub search requests of a hybrid search must have the same nq")


def fusion_of(rerank: RerankSpec, subs: int) -> Fusion:
    """The rerank of a hybrid search of `subs` sub searches, checked as Milvus checks it."""
    strategy = rerank.strategy.lower()
    decay = strategy == "decay" and rerank.function is not None
    if strategy not in ("rrf", "weighted") and not decay:
        raise invalid(f"unsupported rerank function: [{rerank.strategy}] , only support [rrf weighted]")
    rrf_k, weights, norm = fusion_params(strategy, rerank.params, subs)
    return Fusion(strategy, tuple(float(w) for w in weights) if strategy == "weighted" else (), rrf_k, norm)
