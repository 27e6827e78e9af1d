"""Values read from the model registry never reach a subprocess as options."""

from __future__ import annotations

from ok_ml_assets.configs import parse_experiment_text
from ok_ml_assets.lifecycle.lineage import config_hash
from ok_ml_assets.lifecycle.operations import recorded_config
from ok_ml_assets.settings import PROJECT_ROOT

CONFIG = (PROJECT_ROOT / "asset_configs" / "antispam_bots.yml").read_text()


class LoggedConfig:
    """The MLflow side of recorded_config: the config text logged with the run."""

    def load_text(self, run_id: str, artifact: str) -> str:
        return CONFIG


def test_a_crafted_git_commit_tag_is_not_passed_to_git(tmp_path):
    # `git show <tag>:asset_configs/antispam_bots.yml` would write this file if the tag were read as an option.
    (tmp_path / "x:asset_configs").mkdir()
    tags = {"git_commit": f"--output={tmp_path / 'x'}", "config_hash": config_hash(parse_experiment_text(CONFIG, "logged"))}
    config, notes = recorded_config(LoggedConfig(), "antispam_bots", tags, "run-1")
    assert not (tmp_path / "x:asset_configs" / "antispam_bots.yml").exists(), "git wrote a file"
    assert config.experiment_name == "antispam_bots"
    assert notes[0].startswith("the recorded git_commit '--output=") and "is not a commit id" in notes[0]


def test_a_real_commit_still_reads_the_config_at_that_commit():
    import subprocess

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    committed = subprocess.run(["git", "show", f"{head}:asset_configs/antispam_bots.yml"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True).stdout
    tags = {"git_commit": head, "config_hash": config_hash(parse_experiment_text(committed, "head"))}
    config, notes = recorded_config(LoggedConfig(), "antispam_bots", tags, "run-1")
    assert config.experiment_name == "antispam_bots" and notes == []
