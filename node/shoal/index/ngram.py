"""The NGRAM index of a VARCHAR column: `like` with a literal anywhere in the pattern
(`%abc%`, `%abc`, `a%bc_d`) without matching every row.

The column is dictionary-encoded (distinct values, a code per row), and each n-gram of
length `min_gram`..`max_gram` maps to the sorted ids of the distinct values containing
it. A pattern's literal runs must all occur in a match, so the values holding every
n-gram of every run are the candidates; only those few values are then matched against
the pattern, and the rows whose code is a match are the answer. A run shorter than
`min_gram` says nothing, so a pattern with no run that long is scanned (None).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

import numpy as np

from shoal.index import dictionary
from shoal.schema import Column


class LikeQuery(Protocol):
    """What an index needs of a LIKE pattern (`shoal.expr.like.LikePattern`)."""

    kind: str  # exact, prefix, suffix, infix, regex
    literal: str
    runs: tuple[str, ...]  # the literal text between wildcards

    def match_one(self, s: str) -> bool: ...


class NGramIndex:
    def __init__(self, column: Column, min_gram: int, max_gram: int) -> None:
        values = np.asarray(column.values)
        self.n = len(values)
        self.min_gram, self.max_gram = min_gram, max_gram
        self.uniques, self.codes = dictionary.encode(values, column.valid)
        postings: dict[str, list[int]] = defaultdict(list)
        for value_id, value in enumerate(self.uniques.tolist()):
            grams = {value[i : i + g] for g in range(min_gram, max_gram + 1) for i in range(len(value) - g + 1)}
            for gram in grams:
                postings[gram].append(value_id)
        self.postings = {gram: np.asarray(ids, dtype=np.int32) for gram, ids in postings.items()}

    @property
    def memory_bytes(self) -> int:
        postings = sum(ids.nbytes + 48 for ids in self.postings.values())
        return dictionary.memory_bytes(self.uniques, self.codes) + postings

    def _grams(self, run: str) -> list[str]:
        """The n-grams a value containing `run` must hold: the longest length the index keeps."""
        g = min(len(run), self.max_gram)
        return [run[i : i + g] for i in range(len(run) - g + 1)]

    def candidates(self, pattern: LikeQuery) -> np.ndarray | None:
        """Ids of the distinct values that may match, or None when no run is long enough."""
        grams = [gram for run in pattern.runs if len(run) >= self.min_gram for gram in self._grams(run)]
        if not grams:
            return None
        found: np.ndarray | None = None
        for gram in sorted(set(grams), key=lambda g: len(self.postings.get(g, ()))):
            ids = self.postings.get(gram)
            if ids is None:
                return np.empty(0, dtype=np.int32)
            found = ids if found is None else np.intersect1d(found, ids, assume_unique=True)
            if len(found) == 0:
                break
        return found

    def like(self, pattern: LikeQuery) -> np.ndarray | None:
        """Rows whose value matches `pattern` (null rows never), or None to scan."""
        ids = self.candidates(pattern)
        if ids is None:
            return None
        matching = [i for i in ids.tolist() if pattern.match_one(self.uniques[i])]
        if not matching:
            return np.zeros(self.n, dtype=bool)
        return np.isin(self.codes, np.asarray(matching, dtype=np.int32))

    def compare(self, op: str, value: object) -> np.ndarray | None:
        return None  # Milvus's NGRAM answers `like` only; comparisons scan

    def isin(self, values: tuple[object, ...]) -> np.ndarray | None:
        return None
