"""`ok-ml --help` and every CLI start import only what they use: no pandas, DuckDB, Arrow, Kafka client or Dagster."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "duckdb", "pyarrow", "dagster", "mlflow", "great_expectations", "sklearn")


def test_the_cli_entry_point_leaves_the_heavy_libraries_unimported():
    probe = "import json, sys; import ok_ml_assets.cli; print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
