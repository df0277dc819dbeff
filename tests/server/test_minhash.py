"""The MinHash function and the MINHASH_LSH index through real pymilvus.

The signatures' MHJACCARD is checked against the exact Jaccard of the word-shingle sets,
computed here in plain Python: with 128 hashes one estimate's standard deviation is at most
sqrt(0.25 / 128) = 0.044, and the tolerance is 0.2 (4.5 of them; the hashing is seeded, so
the outcome is fixed). LSH candidates are checked against the exact (BIN_FLAT) answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from milvus_errors import fails
from pymilvus import DataType, Function, FunctionType, MilvusClient

HASHES = 128
SHINGLE = 3
VOCAB = [f"w{i}" for i in range(400)]


def shingles(text: str) -> set[str]:
    words = text.split()
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def corpus() -> tuple[list[str], list[str]]:
    """200 random 30-word documents, and for the first 40 a near-duplicate (2 words changed)."""
    rng = random.Random(7)
    docs = [" ".join(rng.choice(VOCAB) for _ in range(30)) for _ in range(200)]
    near = []
    for doc in docs[:40]:
        words = doc.split()
        for pos in rng.sample(range(30), 2):
            words[pos] = rng.choice(VOCAB)
        near.append(" ".join(words))
    return docs, near


def minhash_fn(name: str, out: str, **params: Any) -> Function:
    return Function(
        name=name, function_type=FunctionType.MINHASH, input_field_names=["text"], output_field_names=[out],
        params={"num_hashes": HASHES, "shingle_size": SHINGLE, **params},
    )


@pytest.fixture(scope="module")
def mh(shoal: Any) -> Iterator[tuple[MilvusClient, str, list[str], list[str]]]:
    client = MilvusClient(uri=shoal.uri)
    name = "minhash_docs"
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=2000)
    schema.add_field("flat", DataType.BINARY_VECTOR, dim=32 * HASHES)
    schema.add_field("lsh", DataType.BINARY_VECTOR, dim=32 * HASHES)
    schema.add_function(minhash_fn("to_flat", "flat"))
    schema.add_function(minhash_fn("to_lsh", "lsh"))
    index = client.prepare_index_params()
    index.add_index("flat", index_type="BIN_FLAT", metric_type="MHJACCARD")
    index.add_index("lsh", index_type="MINHASH_LSH", metric_type="MHJACCARD", params={"mh_lsh_band": 32})
    client.create_collection(name, schema=schema, index_params=index)
    docs, near = corpus()
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(docs[:120])])
    client.flush(name)  # a sealed, indexed segment and a growing one
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(docs) if i >= 120])
    client.load_collection(name)
    yield client, name, docs, near
    client.drop_collection(name)
    client.close()


def test_mhjaccard_estimates_the_shingle_jaccard(mh: Any) -> None:
    client, name, docs, near = mh
    res = client.search(name, near[:10], anns_field="flat", limit=20, output_fields=["text"],
                        search_params={"metric_type": "MHJACCARD"})
    checked = 0
    for query, hits in zip(near[:10], res, strict=True):
        assert hits[0]["distance"] >= hits[-1]["distance"]  # similarity: best first
        for hit in hits:
            assert abs(hit["distance"] - jaccard(query, hit["entity"]["text"])) <= 0.2, hit
            checked += 1
    assert checked == 200
    same = client.search(name, [docs[5]], anns_field="flat", limit=1, search_params={"metric_type": "MHJACCARD"})
    assert same[0][0]["id"] == 5 and same[0][0]["distance"] == 1.0


def test_lsh_finds_the_near_duplicates_exact_search_finds(mh: Any) -> None:
    client, name, docs, near = mh
    exact = client.search(name, near, anns_field="flat", limit=1)
    lsh = client.search(name, near, anns_field="lsh", limit=1,
                        search_params={"metric_type": "MHJACCARD", "params": {"mh_search_with_jaccard": True}})
    truth = [max(range(len(docs)), key=lambda i, q=q: jaccard(q, docs[i])) for q in near]
    assert sum(h[0]["id"] == t for h, t in zip(exact, truth, strict=True)) >= 38
    found = sum(bool(h) and h[0]["id"] == e[0]["id"] for h, e in zip(lsh, exact, strict=True))
    assert found >= 38, found  # P(candidate) = 1 - (1 - J^4)^32 > 0.99 at J ~ 0.65
    for h, e in zip(lsh, exact, strict=True):
        if h and h[0]["id"] == e[0]["id"]:
            assert h[0]["distance"] == pytest.approx(e[0]["distance"])


def test_lsh_search_with_a_filter_and_the_function_output_is_not_given(mh: Any) -> None:
    client, name, docs, near = mh
    hits = client.search(name, [docs[3]], anns_field="lsh", limit=5, filter="id > 100")
    assert all(h["id"] > 100 for h in hits[0])
    fails(lambda: client.insert(name, [{"id": 999, "text": "x", "lsh": b"\0" * 512, "flat": b"\0" * 512}]),
          1, "unexpected function output field")  # pymilvus refuses it before sending


def test_minhash_schema_errors(client: MilvusClient, name: str) -> None:
    def make(text_type: DataType = DataType.VARCHAR, out_type: DataType = DataType.BINARY_VECTOR,
             dim: int = 32 * 16, **params: Any) -> None:
        schema = client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", text_type, **({"max_length": 100} if text_type is DataType.VARCHAR else {}))
        schema.add_field("mh", out_type, dim=dim)
        schema.add_function(Function(
            name="f", function_type=FunctionType.MINHASH, input_field_names=["text"], output_field_names=["mh"],
            params={"num_hashes": 16, "shingle_size": 3, **params},
        ))
        client.create_collection(name, schema=schema)

    fails(lambda: make(text_type=DataType.INT64), 1100, "VARCHAR")
    fails(lambda: make(out_type=DataType.FLOAT_VECTOR), 1100, "BinaryVector")
    fails(lambda: make(dim=128), 1100, "does not match expected dim")
    fails(lambda: make(num_hashes="abc"), 1100, "num_hashes")
    fails(lambda: make(shingle_size=0), 1100, "shingle_size")
    fails(lambda: make(hash_function="md5"), 1100, "unknown hash function")
    fails(lambda: make(token_level="line"), 1100, "unknown token_level")
    fails(lambda: make(seed="abc"), 1100, "seed")
    make(token_level="char", hash_function="sha1", seed=99)
    client.insert(name, [{"id": 1, "text": "hello world"}, {"id": 2, "text": "hello world!"}])
    index = client.prepare_index_params()
    index.add_index("mh", index_type="MINHASH_LSH", metric_type="HAMMING")
    fails(lambda: client.create_index(name, index), 1100, "MHJACCARD")
    index = client.prepare_index_params()
    index.add_index("mh", index_type="MINHASH_LSH", params={"mh_lsh_band": 16})
    client.create_index(name, index)
    client.load_collection(name)
    hits = client.search(name, ["hello world"], anns_field="mh", limit=2)[0]
    assert hits[0]["id"] == 1 and hits[0]["distance"] == 1.0
    client.drop_collection(name)


def test_random_sample_keeps_its_share_of_the_matches(mh: Any) -> None:
    client, name, _docs, _near = mh
    # Milvus keeps max(1, floor(matches * factor)) per segment: 150 matches over one or two
    # segments give 75 +- 2, whatever rows are drawn
    got = client.query(name, filter="id >= 50 && random_sample(0.5)", output_fields=["id"])
    assert 73 <= len(got) <= 77 and all(r["id"] >= 50 for r in got)
    assert len({r["id"] for r in got}) == len(got)
    alone = client.query(name, filter="RANDOM_SAMPLE(0.1)", output_fields=["id"])
    assert 18 <= len(alone) <= 22
    hits = client.search(name, [_docs[0]], anns_field="flat", limit=50, filter="id < 100 and random_sample(0.3)")
    assert 0 < len(hits[0]) <= 32 and all(h["id"] < 100 for h in hits[0])
    for bad in ("id > 1 && random_sample(1)", "random_sample(0)", "random_sample(-9)"):
        fails(lambda bad=bad: client.query(name, filter=bad), 1100,
              "the sample factor should be between 0 and 1 and not too close to 0 or 1")
    fails(lambda: client.query(name, filter="id > 1 || random_sample(0.5)"), 1100, "random_sample")
    fails(lambda: client.delete(name, filter="id > 1 && random_sample(0.5)"), 1100, "random_sample")


def test_minhash_search_refusals_follow_milvus(mh: Any) -> None:
    client, name, docs, _near = mh
    fails(lambda: client.search(name, [docs[0]], anns_field="lsh", limit=3,
                                search_params={"metric_type": "MHJACCARD", "params": {"radius": 0.1}}),
          1100, "not support range search")
    fails(lambda: client.search(name, [docs[0]], anns_field="flat", limit=3, group_by_field="id"),
          1100, "not support search_group_by operation based on binary vector")


def test_weighted_hybrid_search_ranks_the_same_text_first(mh: Any) -> None:
    client, name, docs, _near = mh
    from pymilvus import AnnSearchRequest, WeightedRanker

    reqs = [AnnSearchRequest([docs[7]], "lsh", {"metric_type": "MHJACCARD"}, 5),
            AnnSearchRequest([docs[9]], "flat", {"metric_type": "MHJACCARD"}, 5)]
    hits = client.hybrid_search(name, reqs, WeightedRanker(0.8, 0.2), limit=3)[0]
    assert hits[0]["id"] == 7 and hits[0]["distance"] == pytest.approx(0.8, abs=0.05)


# ------------------------------------------------------------ Milvus's signatures, bit for bit

MERSENNE = (1 << 61) - 1


class _Mt64:
    """C++'s std::mt19937_64 (the generator Milvus seeds its permutations with)."""

    def __init__(self, seed: int) -> None:
        self.mt = [seed % (1 << 64)]
        for i in range(1, 312):
            self.mt.append((6364136223846793005 * (self.mt[-1] ^ (self.mt[-1] >> 62)) + i) % (1 << 64))
        self.i = 312

    def __call__(self) -> int:
        if self.i == 312:
            for k in range(312):
                y = (self.mt[k] & ~0x7FFFFFFF & ((1 << 64) - 1)) | (self.mt[(k + 1) % 312] & 0x7FFFFFFF)
                self.mt[k] = self.mt[(k + 156) % 312] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y % 2 else 0)
            self.i = 0
        y = self.mt[self.i]
        self.i += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        return (y ^ (y >> 43)) % (1 << 64)


def milvus_signature(pieces: list[bytes], num_hashes: int, seed: int, sha1: bool) -> list[int]:
    """Milvus's MinHash of a list of shingles, from its published algorithm, in plain ints."""
    import hashlib

    import xxhash

    rng = _Mt64(seed)
    perms = [((lambda a, b: (a % (MERSENNE - 1) + 1, b % MERSENNE))(rng(), rng())) for _ in range(num_hashes)]
    bases = [
        int.from_bytes(hashlib.sha1(p).digest()[:4], "little") if sha1 else xxhash.xxh3_64_intdigest(p) % (1 << 32)
        for p in pieces
    ]
    sig = []
    for a, b in perms:
        best = 0xFFFFFFFF
        for x in bases:
            t = (a * x + b) % (1 << 64)
            t = (t & MERSENNE) + (t >> 61)
            t = t - MERSENNE if t >= MERSENNE else t
            best = min(best, t % (1 << 32))
        sig.append(best)
    return sig


def test_mt19937_64_matches_the_cpp_standard() -> None:
    rng = _Mt64(5489)  # [rand.predef]: the 10000th output of a default-seeded mt19937_64
    for _ in range(9999):
        rng()
    assert rng() == 9981545732273789042


@pytest.mark.parametrize(
    ("params", "level"),
    [
        ({"token_level": "char", "seed": 42, "num_hashes": 16, "shingle_size": 3}, "char"),
        ({"token_level": "char", "seed": -7, "num_hashes": 8, "shingle_size": 4, "hash_function": "sha1"}, "char"),
        ({"seed": 1234, "num_hashes": 16, "shingle_size": 2}, "word"),
    ],
)
def test_signatures_are_milvus_bit_for_bit(shoal: Any, params: dict, level: str) -> None:
    """The stored signature equals Milvus's, computed here from its algorithm: char level over
    UTF-8 byte windows; word level over the standard analyzer's tokens (lower-cased words),
    joined without a separator."""
    client = MilvusClient(uri=shoal.uri)
    name = f"minhash_bits_{level}_{params['num_hashes']}"
    hashes, size = params["num_hashes"], params["shingle_size"]
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=2000)
    schema.add_field("sig", DataType.BINARY_VECTOR, dim=32 * hashes)
    schema.add_function(Function(name="mh", function_type=FunctionType.MINHASH, input_field_names=["text"],
                                 output_field_names=["sig"], params=params))
    index = client.prepare_index_params()
    index.add_index("sig", index_type="BIN_FLAT", metric_type="MHJACCARD")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    texts = ["hello world", "abcdefg", "ab", "", "Grüße aus Köln", "The quick brown Fox jumps over the lazy dog"]
    client.insert(name, [{"id": i, "text": t} for i, t in enumerate(texts)])
    client.load_collection(name)
    rows = sorted(client.query(name, filter="id >= 0", output_fields=["id", "sig"]), key=lambda r: r["id"])
    for text, row in zip(texts, rows, strict=True):
        raw = row["sig"][0] if isinstance(row["sig"], list) else row["sig"]
        got = [int.from_bytes(bytes(raw)[4 * i : 4 * i + 4], "little") for i in range(hashes)]
        if level == "char":
            data = text.encode("utf-8")
            pieces = [data] if 0 < len(data) < size else [data[i : i + size] for i in range(len(data) - size + 1)]
        else:
            words = [w.lower().encode("utf-8") for w in text.split()]
            pieces = [b"".join(words)] if 0 < len(words) < size else [
                b"".join(words[i : i + size]) for i in range(len(words) - size + 1)]
        assert got == milvus_signature(pieces, hashes, params["seed"], params.get("hash_function") == "sha1"), text
    client.drop_collection(name)
    client.close()
