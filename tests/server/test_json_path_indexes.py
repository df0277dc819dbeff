"""Real JSON-path, ARRAY and NGRAM-on-JSON indexes through pymilvus: on mixed-type data (values of
the cast type, of other types, JSON null, missing keys, null rows; sealed and growing segments)
every filter answers the same before the indexes exist (a scan), once they are built, and after
they are dropped; describe_index reports them as Milvus does."""

from __future__ import annotations

import random
import time

import pytest
from pymilvus import DataType, MilvusClient

N = 600
PATHS = {  # index name -> (field, index type, params)
    "meta_n": ("meta", "INVERTED", {"json_path": "meta['n']", "json_cast_type": "double"}),
    "meta_s": ("meta", "STL_SORT", {"json_path": "meta['s']", "json_cast_type": "varchar"}),
    "meta_b": ("meta", "BITMAP", {"json_path": "meta['b']", "json_cast_type": "bool"}),
    "meta_l": ("meta", "INVERTED", {"json_path": "meta['l']", "json_cast_type": "array_double"}),
    "meta_t": ("meta", "NGRAM", {"json_path": "meta['t']", "json_cast_type": "varchar", "min_gram": 2, "max_gram": 3}),
    "meta_d_x": ("meta", "INVERTED", {"json_path": "meta['d']['x']", "json_cast_type": "double"}),
    "meta_p": ("meta", "INVERTED", {"json_path": "meta['p']", "json_cast_type": "double", "json_cast_function": "STRING_TO_DOUBLE"}),
    "arr": ("arr", "INVERTED", {}),
    "tags": ("tags", "BITMAP", {}),
    "k": ("k", "INVERTED", {"json_cast_type": "varchar"}),  # a dynamic-field key
}
EXPRESSIONS = [
    *(f"meta['n'] {op} 3" for op in ("==", "!=", "<", "<=", ">", ">=")),
    "meta['n'] == 2.5", "3 > meta['n']", "meta['n'] in [1, 2.5, 7]", "meta['n'] not in [1, 2]", "meta['n'] == 'x'",
    "not (meta['n'] < 3)", "meta['n'] is null", "meta['n'] is not null", "exists meta['n']", "not exists meta['n']",
    *(f"meta['s'] {op} 'b1'" for op in ("==", "!=", "<", "<=", ">", ">=")),
    "meta['s'] in ['a1', 'c3']", "meta['s'] not in ['a1']", "meta['s'] like 'a%'", "meta['s'] like '%2'",
    "meta['b'] == true", "meta['b'] != true", "meta['b'] in [false]",
    "json_contains(meta['l'], 2)", "json_contains_any(meta['l'], [1, 5])", "json_contains_all(meta['l'], [1, 2])",
    "not json_contains(meta['l'], 3)",
    "meta['t'] like '%bcd%'", "meta['t'] like '%x%'", "meta['t'] like 'q%'",
    "meta['d']['x'] >= 4", "meta['d']['x'] == 2",
    "meta['p'] > 3", "meta['p'] in [2, 5.5]", "meta['p'] == '4'",
    "array_contains(arr, 3)", "array_contains_any(arr, [1, 6])", "array_contains_all(arr, [0, 1])",
    "not array_contains(arr, 2)", "array_contains(tags, 'red')", "array_contains_any(tags, ['blue', 'x'])",
    "arr[0] == 3", "arr[1] < 2", "arr[0] in [1, 5]", "tags[0] == 'red'", "tags[1] != 'blue'",
    "k == 'v3'", "k like 'v1%'", "k in ['v2', 'v5']",
    "meta['n'] > 2 and meta['s'] like 'b%'", "meta['n'] < 1 or array_contains(arr, 4)",
]


def _row(i: int, rng: random.Random) -> dict:
    pick = rng.random()
    if pick < 0.05:
        meta = None
    elif pick < 0.1:
        meta = {"other": 1}
    else:
        meta = {
            "n": rng.choice([rng.randint(-2, 8), rng.choice([2.5, 0.5]), "x", True, None, [1]]),
            "s": rng.choice([f"{rng.choice('abc')}{rng.randint(1, 3)}", 7, None]),
            "b": rng.choice([True, False, 1, "true"]),
            "l": rng.choice([[rng.randint(0, 5) for _ in range(rng.randint(0, 3))], "l", 2, [1.0, "a"]]),
            "t": rng.choice(["abcde", "xbcdx", "qrs", "bc", 5]),
            "d": rng.choice([{"x": rng.randint(0, 6)}, {"x": "4"}, {}, 3]),
            "p": rng.choice([rng.randint(0, 6), str(rng.randint(0, 6)), "5.5", 5.5, "n/a"]),
        }
        for key in rng.sample(sorted(meta), rng.randint(0, 2)):
            del meta[key]
    row = {
        "id": i, "meta": meta, "v": [rng.random(), rng.random()],
        "arr": None if rng.random() < 0.05 else [rng.randint(0, 6) for _ in range(rng.randint(0, 3))],
        "tags": rng.sample(["red", "green", "blue"], rng.randint(0, 2)),
    }
    if rng.random() < 0.8:
        row["k"] = rng.choice([f"v{rng.randint(1, 6)}", 1, None])
    return row


@pytest.fixture()
def coll(client: MilvusClient, name: str):  # noqa: ANN201
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("meta", DataType.JSON, nullable=True)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4, nullable=True)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection(name, schema=schema)
    rng = random.Random(23)
    rows = [_row(i, rng) for i in range(N)]
    client.insert(name, rows[:250])
    client.flush(name)
    client.insert(name, rows[250:500])
    client.flush(name)
    client.insert(name, rows[500:])  # growing: always scanned
    yield name
    client.drop_collection(name)


def _answers(client: MilvusClient, coll: str) -> dict[str, list[int]]:
    return {e: sorted(r["id"] for r in client.query(coll, filter=e, output_fields=["id"], limit=N)) for e in EXPRESSIONS}


def test_indexed_answers_equal_the_scan(client: MilvusClient, coll: str) -> None:
    vec = client.prepare_index_params()
    vec.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(coll, vec)
    client.load_collection(coll)
    scanned = _answers(client, coll)
    assert sum(map(len, scanned.values())) > 0 and all(len(v) < N for v in scanned.values())
    client.release_collection(coll)

    idx = client.prepare_index_params()
    for index_name, (field, index_type, params) in PATHS.items():
        idx.add_index(field, index_name=index_name, index_type=index_type, params=params)
    client.create_index(coll, idx)
    deadline = time.monotonic() + 120  # scalar indexes are built in the background
    for index_name in PATHS:
        while (desc := client.describe_index(coll, index_name))["indexed_rows"] < 500:
            assert time.monotonic() < deadline, desc
            time.sleep(0.2)
    n = client.describe_index(coll, "meta_n")
    assert (n["index_type"], n["json_path"], n["json_cast_type"]) == ("INVERTED", "meta['n']", "DOUBLE")
    t = client.describe_index(coll, "meta_t")
    assert (t["index_type"], t["json_cast_type"], t["min_gram"], t["max_gram"]) == ("NGRAM", "VARCHAR", "2", "3")
    assert client.describe_index(coll, "tags")["index_type"] == "BITMAP"
    assert client.describe_index(coll, "meta_p")["json_cast_function"] == "STRING_TO_DOUBLE"
    client.load_collection(coll)
    indexed = _answers(client, coll)
    for expr in EXPRESSIONS:
        assert indexed[expr] == scanned[expr], expr

    client.release_collection(coll)
    for index_name in PATHS:
        client.drop_index(coll, index_name)
    assert not set(PATHS) & set(client.list_indexes(coll))
    client.load_collection(coll)
    assert _answers(client, coll) == scanned
