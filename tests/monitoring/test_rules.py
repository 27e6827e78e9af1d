"""Monitoring rules parse from YAML into typed, frozen models with stable check names."""

from __future__ import annotations

import pydantic
import pytest
import yaml

from ok_ml_assets.monitoring import rules as r
from ok_ml_assets.monitoring.rules import RulesError, needed_assets, parse_monitoring
from tests.monitoring.replay import prod_rules

SECTION = """
user_source_features:
  - {rule: not_null, column: weight, severity: ERROR}
  - {rule: in_range, column: days_since_last, min: 0, max: 366}
  - {rule: in_set, column: kind, values: [group, author]}
  - {rule: mean_between, column: weight, min: 0.5, max: 20}
  - {rule: std_between, column: weight, max: 100, severity: WARN}
  - {rule: quantile_between, column: weight, quantile: 0.5, min: 0.1, max: 10}
  - {rule: row_count_change, max_relative_change: 0.5}
  - {rule: drift_psi, column: weight, max_psi: 0.2}
  - {rule: drift_ks, column: weight, max_ks: 0.1}
recommendations:
  - {rule: user_coverage, min: 0.9}
  - {rule: list_length, min: 10}
  - {rule: no_subscribed_items}
  - {rule: no_duplicates}
  - {rule: score_drift_psi, max_psi: 0.2}
  - {rule: top_sources_share, top_n: 10, max_share: 0.3}
  - {rule: gini, max: 0.98}
  - {rule: novelty, min: 0.05}
"""


def test_every_rule_type_parses_with_a_check_name_named_after_its_assertion():
    section = parse_monitoring(yaml.safe_load(SECTION))
    names = {asset: [rule.check_name for rule in rules] for asset, rules in section.items()}
    assert names == {
        "user_source_features": [
            "weight_not_null", "days_since_last_in_range", "kind_in_set", "weight_mean_between", "weight_std_between",
            "weight_p50_between", "row_count_change_within", "weight_psi_within", "weight_ks_within",
        ],
        "recommendations": [
            "user_coverage_at_least", "list_length_between", "no_subscribed_items", "no_duplicate_items",
            "score_psi_within", "top_10_sources_share_at_most", "exposure_gini_at_most", "novelty_at_least",
        ],
    }
    features = section["user_source_features"]
    assert isinstance(features[0], r.NotNull) and features[0].severity == "ERROR"
    assert features[4].severity == "WARN" and features[1].severity == "ERROR"
    assert features[1].thresholds() == {"min": 0.0, "max": 366.0, "mostly": 1.0}
    assert features[1].assertion == "every days_since_last is within [0, 366]"


def test_rules_are_frozen():
    rule = parse_monitoring({"a": [{"rule": "gini", "max": 0.9}]})["a"][0]
    with pytest.raises(pydantic.ValidationError):
        rule.max = 0.5


def test_an_unknown_rule_names_the_asset_position_and_the_known_rules():
    with pytest.raises(RulesError) as error:
        parse_monitoring({"recommendations": [{"rule": "no_duplicates"}, {"rule": "mean_betwen", "column": "w"}]},
                         "asset_configs/prod_discovery.yml")
    message = str(error.value)
    assert message.startswith("asset_configs/prod_discovery.yml: invalid monitoring rules")
    assert "recommendations.1" in message and "'mean_betwen'" in message and "'mean_between'" in message


@pytest.mark.parametrize("rule,fragment", [
    ({"rule": "not_null", "column": "w", "colour": "red"}, "colour"),
    ({"rule": "in_range", "column": "w"}, "give min, max or both"),
    ({"rule": "in_range", "column": "w", "min": 5, "max": 1}, "greater than max"),
    ({"rule": "quantile_between", "column": "w", "quantile": 1.5, "min": 0}, "quantile"),
    ({"rule": "drift_psi", "column": "w"}, "max_psi"),
    ({"rule": "not_null", "column": "w", "severity": "FATAL"}, "severity"),
    ({"column": "w"}, "rule"),
])
def test_bad_fields_are_named(rule, fragment):
    with pytest.raises(RulesError, match=fragment):
        parse_monitoring({"user_source_features": [rule]})


def test_two_rules_making_the_same_check_must_be_told_apart_by_name():
    twice = [{"rule": "drift_psi", "column": "w", "max_psi": 0.1},
             {"rule": "drift_psi", "column": "w", "max_psi": 0.3, "severity": "WARN"}]
    with pytest.raises(RulesError, match="both make the check 'w_psi_within'"):
        parse_monitoring({"a": twice})
    twice[1]["name"] = "w_psi_within_warn"
    assert [rule.check_name for rule in parse_monitoring({"a": twice})["a"]] == ["w_psi_within", "w_psi_within_warn"]


def test_column_names_become_valid_check_names():
    rule = parse_monitoring({"a": [{"rule": "not_null", "column": "Event Type"}]})["a"][0]
    assert rule.check_name == "event_type_not_null"


def test_needed_assets_are_the_other_assets_rules_read():
    section = parse_monitoring(yaml.safe_load(SECTION))
    assert needed_assets(section["recommendations"]) == {"user_source_features", "subscribed_pairs"}
    assert needed_assets(section["user_source_features"]) == set()
    gini = parse_monitoring({"a": [{"rule": "gini", "max": 0.9, "catalog_from": None}]})["a"]
    assert needed_assets(gini) == set()


def test_an_empty_section_is_allowed():
    assert parse_monitoring(None) == {}


def test_the_committed_prod_discovery_rules_parse():
    rules = prod_rules()
    assert set(rules) == {"user_source_features", "recommendations"}
    assert any(rule.severity == "WARN" for rule in rules["recommendations"])
