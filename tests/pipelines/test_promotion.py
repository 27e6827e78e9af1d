"""The promotion gate's decisions."""

from __future__ import annotations

from ok_ml_assets.lifecycle.promotion import (
    REQUIRED_LINEAGE_TAGS,
    TRAINED_BY,
    PromotionPolicy,
    decide_promotion,
)

POLICY = PromotionPolicy(min_metrics={"precision_at_10": 0.05}, max_regression=0.05, min_lift_over_baseline=0.2,
                         primary_metric="ndcg_at_10")
TAGS = {**{name: "x" for name in REQUIRED_LINEAGE_TAGS}, "git_dirty": "false", "trained_by": TRAINED_BY}
GOOD = {"precision_at_10": 0.1, "ndcg_at_10": 0.30, "baseline_ndcg_at_10": 0.2}


def test_first_model_must_beat_the_baseline_by_the_margin():
    assert decide_promotion(TAGS, GOOD, None, POLICY).promote
    weak = {**GOOD, "ndcg_at_10": 0.23}
    decision = decide_promotion(TAGS, weak, None, POLICY)
    assert not decision.promote and "does not beat the best baseline" in decision.reason


def test_regression_against_the_champion_beyond_tolerance_is_refused():
    assert decide_promotion(TAGS, GOOD, {"ndcg_at_10": 0.31}, POLICY).promote
    decision = decide_promotion(TAGS, GOOD, {"ndcg_at_10": 0.33}, POLICY)
    assert not decision.promote and "regresses more than 5%" in decision.reason


def test_absolute_thresholds_are_enforced():
    decision = decide_promotion(TAGS, {**GOOD, "precision_at_10": 0.01}, None, POLICY)
    assert not decision.promote and "precision_at_10 0.0100 is below the minimum 0.05" in decision.reason


def test_dirty_tree_and_missing_lineage_are_refused():
    assert "dirty" in decide_promotion({**TAGS, "git_dirty": "true"}, GOOD, None, POLICY).reason
    relaxed = PromotionPolicy(**{**POLICY.__dict__, "require_clean_tree": False})
    assert decide_promotion({**TAGS, "git_dirty": "true"}, GOOD, None, relaxed).promote
    decision = decide_promotion({}, GOOD, None, relaxed)
    assert not decision.promote and all(f"'{name}' is missing" in decision.reason for name in REQUIRED_LINEAGE_TAGS)


def test_the_gate_refuses_to_decide_on_too_few_evaluated_users():
    policy = PromotionPolicy(**{**POLICY.__dict__, "min_evaluated": {"evaluated_users": 500}})
    decision = decide_promotion(TAGS, {**GOOD, "evaluated_users": 83.0}, None, policy)
    assert not decision.promote
    assert decision.reason == ("no decision on too small a sample: the metrics rest on 83 evaluated users, "
                               "fewer than the 500 promotion.min_evaluated requires")
    assert decide_promotion(TAGS, {**GOOD, "evaluated_users": 500.0}, None, policy).promote
    assert "evaluated_users was not recorded" in decide_promotion(TAGS, GOOD, None, policy).reason


def test_a_first_model_beats_the_baseline_the_yaml_names():
    metrics = {**GOOD, "popularity_ndcg_at_10": 0.2, "item_knn_ndcg_at_10": 0.29, "baseline_ndcg_at_10": 0.29}
    assert not decide_promotion(TAGS, metrics, None, POLICY).promote
    named = PromotionPolicy(**{**POLICY.__dict__, "baseline": "popularity"})
    decision = decide_promotion(TAGS, metrics, None, named)
    assert decision.promote and decision.reason.endswith("holds against the popularity baseline")
