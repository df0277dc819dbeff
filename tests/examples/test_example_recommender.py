"""The recommender example over all of MovieLens-100k (from the recbole wheel), its hit rate
measured on a slice of 200 users, against a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from pymilvus import MilvusClient


@pytest.fixture(scope="module")
def app(examples_uri: str, load_example: Callable[[str], ModuleType]) -> Iterator[dict[str, Any]]:
    module = load_example("recommender/movielens_recommend.py")
    data = module.read_movielens()
    split = module.leave_last_out(data)
    factors = module.factorise(data, split)
    client = MilvusClient(uri=examples_uri)
    module.create_collections(client)
    module.ingest(client, data, factors)
    results = module.demo(client, data, factors, split, eval_users=200)
    yield {"module": module, "client": client, "data": data, "split": split, "factors": factors,
           "results": results}
    for name in (module.MOVIES, module.USERS):
        client.drop_collection(name)
    client.close()


def test_the_packaged_data_is_movielens_100k(app: dict[str, Any]) -> None:
    data, split = app["data"], app["split"]
    assert len(data.ratings) == 100_000 and len(data.users) == 943 and len(data.titles) == 1682
    assert data.titles[50] == "Star Wars" and data.years[50] == 1977
    assert sum(len(s) for s in split.seen.values()) + len(split.held_out) == 100_000


def test_item_to_item_with_filters(app: dict[str, Any]) -> None:
    results = app["results"]
    assert len(results["similar"]) == 5 and 50 not in {h["movie_id"] for h in results["similar"]}
    assert {172, 181} & {h["movie_id"] for h in results["similar"]}  # The Empire Strikes Back, Return of the Jedi
    assert results["similar_comedy"] and all("Comedy" in h["entity"]["genres"] for h in results["similar_comedy"])
    assert results["similar_old"] and all(h["entity"]["year"] < 1970 for h in results["similar_old"])


def test_user_to_item_excludes_the_seen_and_matches_numpy(app: dict[str, Any]) -> None:
    f, split, results = app["factors"], app["split"], app["results"]
    hits = results["recommend"]
    seen = set(split.seen[1])
    assert len(hits) == 10 and not seen & {h["movie_id"] for h in hits}
    scores = f.taste @ f.users[list(f.user_ids).index(1)]
    scores[np.isin(f.movie_ids, list(seen))] = -np.inf
    tenth = np.sort(scores)[::-1][9]
    by_id = dict(zip(f.movie_ids.tolist(), scores.tolist(), strict=True))
    for h in hits:  # each answer is in numpy's top 10 (ids may swap only on a tie at the border)
        assert by_id[h["movie_id"]] >= tenth - 1e-4
        assert h["distance"] == pytest.approx(by_id[h["movie_id"]], abs=1e-3)
    grouped = results["recommend_grouped"]
    assert len(grouped) == 5 and len({h["entity"]["main_genre"] for h in grouped}) == 5
    assert all("Drama" in h["entity"]["genres"] and h["entity"]["year"] >= 1990 for h in results["recommend_drama"])


def test_svd_beats_most_popular(app: dict[str, Any]) -> None:
    rates = app["results"]["hit_rate"]
    assert rates["svd"] > rates["most_popular"]
