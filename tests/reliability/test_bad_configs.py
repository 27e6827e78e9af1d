"""Bad experiment configs are refused by `ok-ml validate-configs` and by definitions load, naming the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ok_ml_assets.cli import main
from ok_ml_assets.configs import ConfigError
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

CONFIGS = PROJECT_ROOT / "asset_configs"


def prod_discovery() -> dict:
    """The committed prod_discovery config as data."""
    return yaml.safe_load((CONFIGS / "prod_discovery.yml").read_text())


def with_change(path: list[str], value) -> dict:
    """prod_discovery with one field replaced."""
    data = prod_discovery()
    section = data
    for part in path[:-1]:
        section = section[part]
    section[path[-1]] = value
    return data


def as_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


DUPLICATE_KEY = (CONFIGS / "prod_discovery.yml").read_text() + "\nowner: someone-else\n"

CASES = {
    "duplicate key": ({"prod_discovery.yml": DUPLICATE_KEY}, ["prod_discovery.yml", "duplicate key 'owner'"]),
    "non-finite number": ({"prod_discovery.yml": as_yaml(with_change(["promotion", "max_regression"], float("inf")))},
                          ["prod_discovery.yml", "promotion.max_regression", "finite"]),
    "dataset not in the catalog": (
        {"prod_discovery.yml": as_yaml(with_change(["datasets", "interactions", "dataset_name"], "clicks_v2"))},
        ["prod_discovery.yml", "datasets.interactions.dataset_name", "'clicks_v2' is not in the catalog"]),
    "all event weights zero": (
        {"prod_discovery.yml": as_yaml(with_change(["features", "event_weights"], {"view": 0.0, "click": 0.0}))},
        ["prod_discovery.yml", "features.event_weights", "at least one event weight must be positive"]),
    "two experiments on one topic": (
        {"prod_discovery.yml": as_yaml(prod_discovery()),
         "copy_discovery.yml": as_yaml({**prod_discovery(), "experiment_name": "copy_discovery"})},
        ["copy_discovery.yml, prod_discovery.yml all publish to 'prod_discovery.recommendations'"]),
    "invalid cron": ({"prod_discovery.yml": as_yaml(with_change(["publication", "cron"], "every monday"))},
                     ["prod_discovery.yml", "publication.cron", "'every monday' is not a cron schedule"]),
    "a directory named like a config": ({"prod_discovery.yml": as_yaml(prod_discovery()), "old.yml/": ""},
                                        ["old.yml: not a file"]),
    "not UTF-8": ({"prod_discovery.yml": b"experiment_name: prod_discovery\ndescription: caf\xe9\n"},
                  ["prod_discovery.yml: not UTF-8 text"]),
}


def write_configs(folder: Path, files: dict) -> Path:
    """A configs folder holding exactly `files` (a name ending in / is a directory)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, content in files.items():
        if name.endswith("/"):
            (folder / name.rstrip("/")).mkdir()
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_config_is_refused_with_its_file_and_field(case, tmp_path, monkeypatch):
    files, expected = CASES[case]
    monkeypatch.setenv("OK_ML_CONFIGS_DIR", str(write_configs(tmp_path / "configs", files)))
    result = CliRunner().invoke(main, ["validate-configs"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in result.output, result.output
    with pytest.raises(ConfigError) as raised:
        build_definitions(load_settings())
    assert all(text in str(raised.value) for text in expected)
