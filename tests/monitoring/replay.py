"""Incident replay without Dagster: the prod_discovery computations over synthetic days, then its monitoring rules."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from ok_ml_assets.monitoring.evaluate import RuleOutcome, blocking, evaluate, monitor
from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.monitoring.rules import Rule, parse_monitoring
from ok_ml_assets.pipelines.features import build_user_source_features, read_pairs
from ok_ml_assets.pipelines.scoring import recommendation_table, top_k
from ok_ml_assets.pipelines.training import AlsParams, fit_als, interaction_matrix
from ok_ml_assets.settings import PROJECT_ROOT
from ok_ml_assets.synthetic.faults import Fault
from ok_ml_assets.synthetic.world import DailyData

PROD_CONFIG = PROJECT_ROOT / "asset_configs" / "prod_discovery.yml"
EXPERIMENT = "prod_discovery"
FEATURES, RECOMMENDATIONS = "user_source_features", "recommendations"


def prod_config() -> dict:
    """The committed prod_discovery config as plain data."""
    return yaml.safe_load(PROD_CONFIG.read_text())


def prod_rules() -> dict[str, list[Rule]]:
    """prod_discovery's monitoring rules, from the committed config."""
    return parse_monitoring(prod_config()["monitoring"], str(PROD_CONFIG))


class Replay:
    """Runs prod_discovery's pure computations on lists of synthetic days, writing each day's parquet once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.config = prod_config()
        # Keeps each frame alive next to its file, so an id is never reused for another frame.
        self._files: dict[int, tuple[pd.DataFrame, Path]] = {}
        self._counter = itertools.count()

    def _path(self, frame: pd.DataFrame, kind: str) -> Path:
        if id(frame) not in self._files:
            path = self.folder / f"{kind}-{next(self._counter)}.parquet"
            frame.to_parquet(path, index=False)
            self._files[id(frame)] = (frame, path)
        return self._files[id(frame)][1]

    def features(self, history: Sequence[DailyData]) -> pd.DataFrame:
        """user_source_features over the interactions window ending at the last day of `history`."""
        window = history[-self.config["datasets"]["interactions"]["window_days"]:]
        settings = self.config["features"]
        return build_user_source_features(
            [self._path(d.interactions, "interactions") for d in window], window[-1].date,
            settings["event_weights"], settings["half_life_days"], settings["min_user_interactions"],
        )

    def subscribed(self, history: Sequence[DailyData]) -> pd.DataFrame:
        """subscribed_pairs over the subscriptions window ending at the last day of `history`."""
        window = history[-self.config["datasets"]["subscriptions"]["window_days"]:]
        return read_pairs([self._path(d.subscriptions, "subscriptions") for d in window])

    def recommendations(self, features: pd.DataFrame, subscribed: pd.DataFrame) -> pd.DataFrame:
        """ALS top-K lists of unsubscribed sources, as the factory computes them."""
        embeddings = fit_als(features, AlsParams(**self.config["model"]))
        exclude = interaction_matrix(subscribed, embeddings.user_ids, embeddings.source_ids)
        items, scores = top_k(embeddings.user_factors, embeddings.source_factors, exclude, self.config["recommendations"]["top_k"])
        return recommendation_table(embeddings.user_ids, embeddings.source_ids, items, scores)

    def run(
        self, store: ReferenceStore, rules: dict[str, list[Rule]], history: Sequence[DailyData],
        fault: Fault | None = None, accept: bool = False,
    ) -> dict[str, list[RuleOutcome]]:
        """One run on the last day of `history`, gated like the pipeline: a blocked feature table trains nothing.

        With `accept`, passing materializations become the reference and passing lists count as published.
        """
        if fault is not None and fault.target == "days":
            history = fault.apply(history)
        features = self.features(history)
        if fault is not None and fault.target == "features":
            features = fault.apply(features)
        checked = self._check(store, rules, FEATURES, features, {}, accept)
        outcomes = {FEATURES: checked}
        if blocking(checked):
            return outcomes
        subscribed = self.subscribed(history)
        recommendations = self.recommendations(features, subscribed)
        if fault is not None and fault.target == "recommendations":
            recommendations = fault.apply(recommendations, subscribed)
        context = {FEATURES: features, "subscribed_pairs": subscribed}
        outcomes[RECOMMENDATIONS] = self._check(store, rules, RECOMMENDATIONS, recommendations, context, accept)
        if accept and not blocking(outcomes[RECOMMENDATIONS]):
            store.record_published(EXPERIMENT, RECOMMENDATIONS, recommendations)
        return outcomes

    @staticmethod
    def _check(store, rules, asset, frame, context, accept) -> list[RuleOutcome]:
        if accept:
            return monitor(store, EXPERIMENT, asset, rules[asset], frame, context).outcomes
        return evaluate(asset, rules[asset], frame, store.load(EXPERIMENT, asset), context)


def failed_errors(outcomes: dict[str, list[RuleOutcome]]) -> set[str]:
    """`asset:check` of every ERROR rule that failed."""
    return {f"{asset}:{o.check_name}" for asset, items in outcomes.items() for o in items if o.blocking}
