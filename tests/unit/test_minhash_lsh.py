"""MinHash signatures, the MINHASH_LSH index and random_sample's mask, without a server."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from shoal.errors import ShoalError
from shoal.expr import compile_filter
from shoal.expr.compiled import sample_mask
from shoal.index import build_index, load_index, validate_index_params
from shoal.schema import CollectionSchema, DataType, FieldSchema
from shoal.text.minhash import mh_jaccard, parse_params, signatures

P = parse_params({"num_hashes": 256, "shingle_size": 2, "token_level": "word"}, 32 * 256)
FIELD = FieldSchema("mh", DataType.BINARY_VECTOR, dim=32 * 256)


def _sets(a: str, b: str) -> float:
    def sh(t: str) -> set[str]:
        w = t.split()
        return {" ".join(w[i : i + 2]) for i in range(len(w) - 1)}

    return len(sh(a) & sh(b)) / len(sh(a) | sh(b))


def test_signature_agreement_estimates_jaccard() -> None:
    rng = random.Random(3)
    for _ in range(20):
        a = [f"t{rng.randrange(60)}" for _ in range(40)]
        b = list(a)
        for pos in rng.sample(range(40), rng.randrange(1, 30)):
            b[pos] = f"t{rng.randrange(60)}"
        sig = signatures([" ".join(a), " ".join(b)], P, str.split)
        # 256 hashes: sd <= 0.031; 0.15 is about 5 of them (and the hashing is seeded)
        assert abs(mh_jaccard(sig[:1], sig[1:])[0, 0] - _sets(" ".join(a), " ".join(b))) <= 0.15
    assert signatures(["x y z"], P, str.split).tobytes() == signatures(["x y z"], P, str.split).tobytes()


def test_lsh_candidates_save_and_load(tmp_path: Path) -> None:
    texts = [" ".join(f"w{(i * 7 + j) % 300}" for j in range(20)) for i in range(300)]
    codes = signatures(texts, P, str.split)
    spec = validate_index_params(FIELD, {"index_type": "MINHASH_LSH", "metric_type": "MHJACCARD", "mh_lsh_band": 64})
    index = build_index(spec, codes)
    scores, rows = index.search(codes[:10], 3)
    assert (rows[:, 0] == np.arange(10)).all() and (scores[:, 0] == 1.0).all()
    index.save(tmp_path / "i")
    again = load_index(tmp_path / "i")
    assert np.array_equal(again.search(codes[:10], 3)[1], rows)
    allowed = np.zeros(300, bool)
    allowed[5] = True
    assert again.search(codes[:1], 3, allowed=allowed)[1][0, 0] in (5, -1)
    with pytest.raises(ShoalError):
        validate_index_params(FIELD, {"index_type": "MINHASH_LSH", "metric_type": "JACCARD"})
    with pytest.raises(ShoalError):
        validate_index_params(FIELD, {"index_type": "BIN_IVF_FLAT", "metric_type": "MHJACCARD"})


def test_random_sample_mask_and_rules() -> None:
    mask = np.zeros(1000, bool)
    mask[::2] = True
    out = sample_mask(mask, 0.3, np.random.default_rng(1))
    assert out.sum() == 150 and not (out & ~mask).any()
    assert sample_mask(np.zeros(5, bool), 0.5).sum() == 0
    assert sample_mask(np.ones(3, bool), 0.01).sum() == 1
    schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True)])
    assert compile_filter("id > 3 and random_sample(0.2) and id < 9", schema).sample == 0.2
    assert compile_filter("RANDOM_SAMPLE(0.5)", schema).root is None
    for bad in ("id > 3 or random_sample(0.2)", "not random_sample(0.2)", "random_sample(1.0)",
                "random_sample(0.1) and random_sample(0.2)", "random_sample('a')"):
        with pytest.raises(ShoalError):
            compile_filter(bad, schema)
