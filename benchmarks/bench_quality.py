"""Recommendation quality on a world the product does not know: repeat consumption, popularity drift, churn.

Run from the project root: `.venv/bin/python benchmarks/bench_quality.py [--users N]`. It generates its own
world (below; nothing of it is shared with the product's synthetic data), writes daily interactions and follows
as the registry would hold them, runs prod_discovery's recipe (its committed YAML) on a time split, and prints
precision@10, recall@10 and NDCG@10 of the model, popularity and item-kNN, under the shipped exclusions and
with repeat consumption allowed. A drop in quality shows here like a drop in speed shows in the other benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.pipeline_types.recommendation_als.recipe import DailyFile, run_recipe
from ok_ml_assets.settings import PROJECT_ROOT

START = dt.date(2025, 3, 1)
EVENTS = np.array(["view", "click", "like", "comment"])
EVENT_SHARES = np.array([0.70, 0.18, 0.09, 0.03])


class World:
    """Users with a few favourite genres, items whose popularity drifts, users who join, repeat themselves and churn."""

    def __init__(self, users: int, items: int, genres: int, days: int, seed: int):
        rng = self.rng = np.random.default_rng(seed)
        self.users, self.items, self.days = users, items, days
        self.item_genre = rng.integers(0, genres, items)
        self.base_popularity = rng.lognormal(0.0, 1.2, items)
        self.trend = rng.normal(0.0, 0.04, items)
        self.launch = np.where(rng.random(items) < 0.7, 0, rng.integers(0, days, items))
        self.taste = np.cumsum(rng.dirichlet(np.full(genres, 0.15), users), axis=1)
        self.activity = rng.lognormal(0.3, 0.8, users)
        self.repeat = rng.beta(4, 4, users)
        self.joins = np.where(rng.random(users) < 0.8, 0, rng.integers(0, days, users))
        self.leaves = self.joins + rng.exponential(60, users).astype(int) + 1
        self.history = sp.csr_matrix((users, items))
        self.genres = genres

    def day(self, d: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Day `d`'s events and new follows."""
        active = np.flatnonzero((self.joins <= d) & (self.leaves > d))
        counts = self.rng.poisson(self.activity[active])
        users = np.repeat(active, counts)
        has_history = np.asarray(self.history.sum(axis=1)).ravel()[users] > 0
        repeats = has_history & (self.rng.random(users.size) < self.repeat[users])
        items = np.empty(users.size, dtype=np.int64)
        items[repeats] = self._from_history(users[repeats])
        items[~repeats] = self._explore(users[~repeats], d)
        day = START + dt.timedelta(days=d)
        events = pd.DataFrame({
            "user_id": users + 1, "source_id": items + 1,
            "event": EVENTS[self.rng.choice(len(EVENTS), users.size, p=EVENT_SHARES)],
            "ts": pd.Timestamp(day, tz="UTC") + pd.to_timedelta(self.rng.integers(0, 86_400_000_000, users.size), unit="us"),
        }).drop_duplicates(["user_id", "source_id", "event", "ts"])
        follows = self._follows(users, items, day)
        self.history = (self.history * 0.9 + sp.csr_matrix((np.ones(users.size), (users, items)), shape=self.history.shape)).tocsr()
        return events, follows

    def _explore(self, users: np.ndarray, d: int) -> np.ndarray:
        """A favourite genre, then an item of it by today's popularity."""
        genre = (self.rng.random(users.size)[:, None] > self.taste[users]).sum(axis=1).clip(max=self.genres - 1)
        popularity = np.where(self.launch <= d, self.base_popularity * np.exp(self.trend * (d - self.launch)), 0.0)
        chosen = np.empty(users.size, dtype=np.int64)
        for g in np.unique(genre):
            members = np.flatnonzero(self.item_genre == g)
            weights = popularity[members]
            picked = genre == g
            share = weights / weights.sum() if weights.sum() else None
            chosen[picked] = self.rng.choice(members, picked.sum(), p=share)
        return chosen

    def _from_history(self, users: np.ndarray) -> np.ndarray:
        """An item from each user's own recency-weighted history."""
        history = self.history
        cumulative = np.cumsum(history.data)
        before = np.concatenate([[0.0], cumulative])[history.indptr[users]]
        totals = np.asarray(history.sum(axis=1)).ravel()[users]
        position = np.searchsorted(cumulative, before + self.rng.random(users.size) * totals, side="right")
        return history.indices[position.clip(max=len(history.indices) - 1)]

    def _follows(self, users: np.ndarray, items: np.ndarray, day: dt.date) -> pd.DataFrame:
        """Users follow a share of the items they keep coming back to."""
        seen = np.asarray(self.history[users, items]).ravel()
        follow = (seen > 1.5) & (self.rng.random(users.size) < 0.05)
        frame = pd.DataFrame({"user_id": users[follow] + 1, "source_id": items[follow] + 1}).drop_duplicates()
        return frame.assign(ts=pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=12))


def write_world(world: World, folder: Path) -> dict[str, list[DailyFile]]:
    """Every day written as registered daily versions would be."""
    files: dict[str, list[DailyFile]] = {"interactions": [], "subscriptions": []}
    for d in range(world.days):
        events, follows = world.day(d)
        day = START + dt.timedelta(days=d)
        for role, frame in (("interactions", events), ("subscriptions", follows)):
            path = folder / f"{role}-{day}.parquet"
            frame.to_parquet(path, index=False)
            files[role].append(DailyFile(day, path))
    return files


def evaluate(config, files: dict[str, list[DailyFile]]) -> dict[str, float]:
    """The recipe's holdout report on the config's window, ending on the last day."""
    window = files["interactions"][-config.datasets.interactions.window_days:]
    return run_recipe(config, {"interactions": window, "subscriptions": files["subscriptions"]}, targets=("holdout_report",))[
        "holdout_report"].as_metrics()


def print_table(title: str, metrics: dict[str, float], k: int) -> None:
    """Model and baselines side by side, and the model's ratio to each baseline."""
    names = [f"precision_at_{k}", f"recall_at_{k}", f"ndcg_at_{k}"]
    print(f"\n{title} ({metrics['evaluated_users']:.0f} users evaluated)")
    print(f"  {'':12} " + " ".join(f"{n:>15}" for n in names))
    for label, prefix in (("model (ALS)", ""), ("popularity", "popularity_"), ("item-kNN", "item_knn_")):
        print(f"  {label:12} " + " ".join(f"{metrics[prefix + n]:15.4f}" for n in names))
    for label, prefix in (("x popularity", "popularity_"), ("x item-kNN", "item_knn_")):
        ratios = (metrics[n] / metrics[prefix + n] if metrics[prefix + n] else float("nan") for n in names)
        print(f"  {label:12} " + " ".join(f"{ratio:14.2f}x" for ratio in ratios))


def main() -> None:
    """Generate the world, then print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=3_000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    config = load_experiment_config(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml")
    repeats = config.model_copy(update={"exclusions": config.exclusions.model_copy(
        update={"serving": ["subscriptions"], "evaluation": ["subscriptions"]})})
    with tempfile.TemporaryDirectory(prefix="ok-ml-quality-") as tmp:
        start = time.perf_counter()
        files = write_world(World(args.users, args.items, 30, args.days, args.seed), Path(tmp))
        events = sum(len(pd.read_parquet(f.path, columns=["user_id"])) for f in files["interactions"])
        print(f"world: {args.users:,} users, {args.items:,} items, {args.days} days, {events:,} events, "
              f"generated in {time.perf_counter() - start:.1f} s; prod_discovery's YAML, window "
              f"{config.datasets.interactions.window_days} days, holdout {config.evaluation.holdout_days} days")
        k = config.evaluation.k
        print_table("shipped defaults: never what the user follows or engaged with in the window", evaluate(config, files), k)
        print_table("repeat consumption allowed: only follows excluded (relevant includes repeats)", evaluate(repeats, files), k)


if __name__ == "__main__":
    main()
