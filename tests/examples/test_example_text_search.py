"""The text-search example on a slice (30 quotations from each of its 8 categories), with the
real offline MiniLM model, against a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from pymilvus import MilvusClient

NAME = "example_fortunes"


@pytest.fixture(scope="module")
def app(examples_uri: str, load_example: Callable[[str], ModuleType]) -> Iterator[dict[str, Any]]:
    module = load_example("text_search/fortunes_search.py")
    fortunes = module.read_fortunes(per_category=30)
    client = MilvusClient(uri=examples_uri)
    embed = module.Embedder()
    module.create_collection(client, NAME)
    module.ingest(client, embed, fortunes, NAME)
    yield {"module": module, "client": client, "embed": embed, "fortunes": fortunes}
    client.drop_collection(NAME)
    client.close()


def test_the_slice_is_real_text_in_every_category(app: dict[str, Any]) -> None:
    fortunes = app["fortunes"]
    assert len(fortunes) == 30 * len(app["module"].CATEGORIES)
    assert app["client"].query(NAME, filter="", output_fields=["count(*)"])[0]["count(*)"] == len(fortunes)


def test_a_quotation_finds_itself_by_meaning(app: dict[str, Any]) -> None:
    module, client, embed = app["module"], app["client"], app["embed"]
    for fortune in app["fortunes"][::53]:
        hits = module.semantic(client, embed, fortune.text, limit=1, name=NAME)
        assert hits[0]["id"] == fortune.id
        assert hits[0]["distance"] == pytest.approx(1.0, abs=1e-3)


def test_the_demo_searches(app: dict[str, Any]) -> None:
    module, client, embed = app["module"], app["client"], app["embed"]
    results = module.demo(client, embed, name=NAME)
    texts = {f.id: f.text for f in app["fortunes"]}

    semantic = results["semantic"]
    assert len(semantic) == 3
    query = embed(["my program crashed and I cannot find the bug"])[0]
    for hit in semantic:  # the server's cosine is the model's
        assert hit["distance"] == pytest.approx(float(np.dot(query, embed([texts[hit["id"]]])[0])), abs=2e-3)
    assert [h["distance"] for h in semantic] == sorted((h["distance"] for h in semantic), reverse=True)

    assert results["filtered"] and {h["entity"]["category"] for h in results["filtered"]} <= {"law", "work"}
    assert results["keyword"] and all("lawyer" in h["entity"]["text"].lower() for h in results["keyword"])
    assert results["keyword_gated"] and all("coffee" in h["entity"]["text"].lower() for h in results["keyword_gated"])

    hybrid = results["hybrid"]
    dense = module.semantic(client, embed, "lawyers and the truth", limit=20, name=NAME)
    sparse = module.keyword(client, "lawyers and the truth", limit=20, name=NAME)
    assert hybrid and {h["id"] for h in hybrid} <= {h["id"] for h in dense} | {h["id"] for h in sparse}
