"""Install-level traps that only show in other processes."""

from __future__ import annotations

import subprocess
import sys


def test_great_expectations_imports_where_main_has_no_file():
    # Dagster's run workers have such a __main__; where pyspark is installed without its connect extra, it exits there.
    result = subprocess.run(
        [sys.executable, "-c", "import great_expectations; print('imported')"], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr
