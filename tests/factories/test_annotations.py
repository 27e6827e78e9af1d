"""Every experiment's assets carry owners, code references, and its registered datasets the catalog's schema and freshness."""

import datetime as dt

import dagster as dg
import pytest

from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.lifecycle.annotations import owner
from ok_ml_assets.settings import load_settings


@pytest.fixture(scope="module")
def graph():
    return build_definitions(load_settings()).resolve_asset_graph()


def test_a_registered_dataset_shows_the_catalogs_owner_schema_and_daily_freshness(graph):
    node = graph.get(dg.AssetKey(["prod_discovery", "interactions"]))
    assert node.owners == ["team:data_platform"]
    columns = {c.name: c for c in node.metadata["dagster/column_schema"].columns}
    assert list(columns) == ["user_id", "source_id", "event", "ts"]
    assert columns["user_id"].type == "int64" and not columns["user_id"].constraints.nullable
    assert "allowed: ['view', 'click', 'like', 'comment']" in columns["event"].constraints.other
    assert node.freshness_policy.fail_window.to_timedelta() == dt.timedelta(hours=48)


def test_every_other_asset_is_owned_by_its_experiment_and_points_at_its_code(graph):
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        references = node.metadata["dagster/code_references"].code_references
        assert references and references[0].file_path.endswith(".py"), key
    assert graph.get(dg.AssetKey(["antispam_bots", "trained_model"])).owners == ["team:antispam_team"]


def test_owners_are_spelled_as_dagster_wants_them():
    assert owner("data-platform") == "team:data_platform" and owner("ml@ok.example") == "ml@ok.example"
