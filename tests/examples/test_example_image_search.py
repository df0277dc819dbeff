"""The image-search example on a slice (600 gallery and 200 query digits, the embedding fitted on
the gallery here), against a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from pymilvus import MilvusClient

NAME = "example_digits"


@pytest.fixture(scope="module")
def app(examples_uri: str, load_example: Callable[[str], ModuleType]) -> Iterator[dict[str, Any]]:
    module = load_example("image_search/digits_search.py")
    gallery, queries = module.load(gallery=600, queries=200)
    embed = module.Embedder(gallery)
    client = MilvusClient(uri=examples_uri)
    module.create_collection(client, NAME)
    module.ingest(client, gallery, embed, NAME)
    results = module.demo(client, gallery, queries, embed, name=NAME)
    yield {"module": module, "gallery": gallery, "queries": queries, "embed": embed, "results": results}
    client.drop_collection(NAME)
    client.close()


def test_the_learned_embedding_finds_the_same_digit_more_often_than_raw_pixels(app: dict[str, Any]) -> None:
    precision = app["results"]["precision"]
    assert precision["learned"] >= 0.85
    assert precision["learned"] > precision["pixels"]
    assert 0.0 < precision["hybrid"] <= 1.0


def test_exact_search_agrees_with_numpy(app: dict[str, Any]) -> None:
    gallery_learned = app["embed"](app["gallery"].images)
    scores = app["results"]["q_learned"] @ gallery_learned.T
    for row, hits in zip(scores, app["results"]["by_learned"], strict=True):
        best = np.sort(row)[::-1][:5]  # ids may swap on ties, scores may not
        assert [h["distance"] for h in hits] == pytest.approx(best.tolist(), abs=1e-4)


def test_group_by_filter_and_range(app: dict[str, Any]) -> None:
    results = app["results"]
    grouped = results["grouped"]
    assert len(grouped) == 3 and len({h["entity"]["label"] for h in grouped}) == 3
    assert results["heavy"] and all(h["entity"]["ink"] >= results["heavy_ink"] for h in results["heavy"])
    row = results["q_learned"][results["query"]] @ app["embed"](app["gallery"].images).T
    twins = results["twins"]
    assert all(h["distance"] >= 0.8 - 1e-6 for h in twins)
    assert int((row >= 0.8 + 1e-4).sum()) <= len(twins) <= int((row >= 0.8 - 1e-4).sum())
