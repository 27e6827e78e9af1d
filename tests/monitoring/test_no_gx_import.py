"""A run's monitoring never imports Great Expectations (seconds of import) unless a rule opts into it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ok_ml_assets.settings import PROJECT_ROOT

TINY_RUN = """
import json, sys, tempfile
from pathlib import Path
import ok_ml_assets.definitions  # the code location, as a run process loads it
from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.synthetic import generate_world
from tests.monitoring.replay import Replay, prod_rules

days = list(generate_world("tiny", seed=11, days=10).days())
with tempfile.TemporaryDirectory() as tmp:
    outcomes = Replay(Path(tmp)).run(ReferenceStore(Path(tmp) / "refs"), prod_rules(), days, accept=True)
print(json.dumps({"checks": {asset: len(items) for asset, items in outcomes.items()},
                  "engines": sorted({o.engine for items in outcomes.values() for o in items}),
                  "gx": "great_expectations" in sys.modules}))
"""

OPTED_IN = """
import json, sys
import pandas as pd
from ok_ml_assets.monitoring.evaluate import evaluate
from ok_ml_assets.monitoring.rules import parse_monitoring

rules = parse_monitoring({"a": [{"rule": "not_null", "column": "x", "engine": "great_expectations"}]})["a"]
outcome = evaluate("a", rules, pd.DataFrame({"x": [1.0, None]}))[0]
print(json.dumps({"engines": [outcome.engine], "observed": outcome.observed, "gx": "great_expectations" in sys.modules}))
"""


def run_python(script: str) -> dict:
    """The JSON a script prints on its last line, run in a fresh interpreter from the project root."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_monitoring_of_a_tiny_run_never_imports_great_expectations():
    result = run_python(TINY_RUN)
    assert result["checks"] == {"user_source_features": 25, "recommendations": 8}
    assert result["engines"] == ["numpy"] and result["gx"] is False


def test_a_rule_that_opts_into_great_expectations_imports_it():
    result = run_python(OPTED_IN)
    assert result == {"engines": ["great_expectations"], "observed": 1, "gx": True}
