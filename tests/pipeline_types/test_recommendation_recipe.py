"""recommendation_als's recipe: the one step order, which the Dagster graph and run_recipe both follow."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.pipeline_types.recommendation_als import recipe
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

PROD = PROJECT_ROOT / "asset_configs" / "prod_discovery.yml"
# Recipe values that the graph stores under other asset names.
STORED_AS = {"embeddings": ("user_embeddings", "source_embeddings"), "holdout_report": ("trained_model",),
             "validation_split": ("trained_model",), "chosen_model": ("trained_model",),
             # The engine is the run's (its Spark resource or this machine), not a value of the graph.
             "engine": ()}
# One multi-asset computes these together: values passed between them never cross an asset boundary.
TRAIN_ALS = {"user_embeddings", "source_embeddings", "trained_model"}


def asset_names(value: str) -> tuple[str, ...]:
    """The assets that hold a recipe value."""
    return STORED_AS.get(value, (value,))


@pytest.mark.parametrize("with_search", [False, True])
def test_the_graph_follows_the_recipe(tmp_path, monkeypatch, with_search):
    data = yaml.safe_load(PROD.read_text())
    if with_search:
        data["search"] = {"trials": 2, "space": {"factors": {"low": 8, "high": 32}}}
    (tmp_path / PROD.name).write_text(yaml.safe_dump(data))
    monkeypatch.setenv("OK_ML_CONFIGS_DIR", str(tmp_path))
    graph = build_definitions(load_settings()).resolve_asset_graph()
    # Without a search, the validation split is not made, so nothing needs to read its days.
    stages = [s for s in recipe.STAGES if with_search or s.output != "validation_split"]
    for stage in stages:
        outputs = set(asset_names(stage.output))
        made = {dg.AssetKey(["prod_discovery", name]) for name in (TRAIN_ALS if outputs <= TRAIN_ALS else outputs)}
        needed = {dg.AssetKey(["prod_discovery", name]) for value in stage.inputs for name in asset_names(value)} - made
        for output in asset_names(stage.output):
            parents = graph.get(dg.AssetKey(["prod_discovery", output])).parent_keys
            assert needed <= parents, f"{output} must read {sorted(k.path[-1] for k in needed - parents)}"


def test_run_recipe_runs_only_the_stages_a_target_needs(monkeypatch):
    config = load_experiment_config(PROD)
    ran = []
    stages = tuple(recipe.Stage(s.output, lambda *args, _name=s.output: ran.append(_name) or _name, s.inputs, s.sections)
                   for s in recipe.STAGES)
    monkeypatch.setattr(recipe, "STAGES", stages)
    values = recipe.run_recipe(config, {"interactions": [], "subscriptions": []}, targets=["recommendations"])
    assert ran == ["user_source_features", "subscribed_pairs", "validation_split", "chosen_model", "embeddings", "recommendations"]
    assert values["recommendations"] == "recommendations" and "holdout_report" not in values


def test_run_recipe_names_a_missing_input():
    with pytest.raises(ValueError, match=r"needs \['subscriptions'\] to compute \['recommendations'\]"):
        recipe.run_recipe(load_experiment_config(PROD), {"interactions": []})


def test_each_stage_reads_only_sections_the_config_has():
    config = load_experiment_config(PROD)
    for stage in recipe.STAGES:
        assert all(hasattr(config, section) for section in stage.sections), stage.output
