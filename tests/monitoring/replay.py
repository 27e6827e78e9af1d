"""Incident replay without Dagster: the prod_discovery computations over synthetic days, then its monitoring rules."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config
from ok_ml_assets.monitoring.daily import window_frame
from ok_ml_assets.monitoring.evaluate import RuleOutcome, blocking, evaluate, monitor
from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.monitoring.rules import Rule
from ok_ml_assets.pipeline_types.recommendation_als.recipe import DailyFile, run_recipe
from ok_ml_assets.settings import PROJECT_ROOT
from ok_ml_assets.synthetic.faults import Fault
from ok_ml_assets.synthetic.world import DailyData

PROD_CONFIG = PROJECT_ROOT / "asset_configs" / "prod_discovery.yml"
EXPERIMENT = "prod_discovery"
FEATURES, RECOMMENDATIONS = "user_source_features", "recommendations"


def prod_experiment() -> ExperimentConfig:
    """The committed prod_discovery config."""
    return load_experiment_config(PROD_CONFIG)


def prod_rules() -> dict[str, list[Rule]]:
    """prod_discovery's monitoring rules, from the committed config."""
    return dict(prod_experiment().monitoring)


class Replay:
    """Runs prod_discovery's own recipe (`run_recipe`) on lists of synthetic days, writing each day once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.config = prod_experiment()
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
        window = history[-self.config.datasets.interactions.window_days:]
        files = [DailyFile(d.date, self._path(d.interactions, "interactions")) for d in window]
        return run_recipe(self.config, {"interactions": files}, targets=[FEATURES])[FEATURES]

    def daily(self, history: Sequence[DailyData]) -> dict[str, pd.DataFrame]:
        """The interactions window's daily versions, as the daily rules read them."""
        window = history[-self.config.datasets.interactions.window_days:]
        return {"interactions": window_frame((d.tag, d.interactions) for d in window)}

    def subscribed(self, history: Sequence[DailyData]) -> pd.DataFrame:
        """subscribed_pairs over every day of `history`, as the committed config reads them."""
        files = [DailyFile(d.date, self._path(d.subscriptions, "subscriptions")) for d in history]
        return run_recipe(self.config, {"subscriptions": files}, targets=["subscribed_pairs"])["subscribed_pairs"]

    def recommendations(self, features: pd.DataFrame, subscribed: pd.DataFrame) -> pd.DataFrame:
        """ALS top-K lists of unsubscribed sources, as the factory computes them."""
        # No search in replay: the committed model section, as a run without `search` trains it.
        values = {FEATURES: features, "subscribed_pairs": subscribed, "validation_split": None}
        return run_recipe(self.config, values, targets=[RECOMMENDATIONS])[RECOMMENDATIONS]

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
        checked = self._check(store, rules, FEATURES, features, self.daily(history), accept)
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
