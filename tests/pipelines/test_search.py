"""The search wrapper: a seeded budget of trials over the YAML's space, integers where the model needs them."""

from __future__ import annotations

from ok_ml_assets.pipeline_types.recommendation_als.config import Model, Search
from ok_ml_assets.pipeline_types.recommendation_als.search import ChosenModel, search

MODEL = Model(factors=64, regularization=0.05, iterations=12, alpha=10, seed=42)
SPACE = Search(trials=12, seed=3, space={"factors": {"low": 8, "high": 128, "log": True}, "alpha": {"low": 1, "high": 50}})


def peaked(candidate: Model) -> dict[str, float]:
    """A score that peaks at 32 factors and alpha 5."""
    return {"ndcg_at_10": 1.0 - abs(candidate.factors - 32) / 128 - abs(candidate.alpha - 5) / 50}


def test_the_best_trial_is_chosen_and_the_rest_of_the_model_kept():
    chosen = search(MODEL, SPACE, "ndcg_at_10", peaked)
    assert len(chosen.trials) == 12 and all(isinstance(t.params["factors"], int) for t in chosen.trials)
    best = max(chosen.trials, key=lambda t: t.metrics["ndcg_at_10"])
    assert (chosen.model.factors, chosen.model.alpha) == (best.params["factors"], best.params["alpha"])
    assert (chosen.model.iterations, chosen.model.seed) == (12, 42)
    assert chosen.metrics() == {"search_trials": 12.0, "search_best_validation_ndcg_at_10": best.metrics["ndcg_at_10"]}
    assert chosen.params() == {"factors": best.params["factors"], "alpha": best.params["alpha"]}


def test_a_seeded_search_repeats_itself():
    first, again = search(MODEL, SPACE, "ndcg_at_10", peaked), search(MODEL, SPACE, "ndcg_at_10", peaked)
    assert [t.params for t in first.trials] == [t.params for t in again.trials]


def test_without_a_search_the_yaml_model_is_used_as_is():
    chosen = ChosenModel(MODEL)
    assert chosen.model == MODEL and chosen.metrics() == {} and chosen.params() == {}
